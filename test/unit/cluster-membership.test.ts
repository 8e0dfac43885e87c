// Membership and quorum with an injected clock: failed only when all paths are silent, one path down
// is a warning, a graceful stop never counts as a failure; majority / witness / none.
import { describe, expect, it } from 'vitest';
import { Membership } from '../../agent/cluster/membership.js';
import { quorum, WitnessVote } from '../../agent/cluster/quorum.js';

const BEAT = 1000;
const SILENCE = 3 * BEAT;

describe('membership', () => {
  it('a server is failed only when every comm path has been silent for LCMNUMHBEATS beats', () => {
    const m = new Membership(SILENCE, 0);
    m.setPeer('node2', ['10.0.0.2', '10.0.1.2']);
    expect(m.stateOf('node2', 0)).toBe('unknown');
    for (let t = 0; t <= 5000; t += BEAT) {
      m.heartbeat('node2', '10.0.0.2', t);
      m.heartbeat('node2', '10.0.1.2', t);
    }
    expect(m.stateOf('node2', 5500)).toBe('alive');
    // The second path goes silent: a warning, not a failure.
    for (let t = 6000; t <= 10_000; t += BEAT) m.heartbeat('node2', '10.0.0.2', t);
    const v = m.view(10_000)[0]!;
    expect(v.state).toBe('alive');
    expect(v.paths.map((p) => p.state)).toEqual(['up', 'down']);
    expect(v.warning).toBe('comm path 10.0.1.2 to node2 down (last heartbeat 5 s ago)');
    // Both silent: failed exactly at 3 beats after the last one.
    expect(m.stateOf('node2', 12_999)).toBe('alive');
    expect(m.stateOf('node2', 13_000)).toBe('failed');
    m.heartbeat('node2', '10.0.1.2', 14_000);
    expect(m.stateOf('node2', 14_000)).toBe('alive');
  });

  it('a server never heard from is unknown until the detection time has passed since this agent started, then failed', () => {
    const m = new Membership(SILENCE, 100);
    m.setPeer('node3', ['a']);
    expect(m.stateOf('node3', 3099)).toBe('unknown');
    expect(m.stateOf('node3', 3100)).toBe('failed');
  });

  it('a graceful stop is announced and is never a failure; a heartbeat afterwards makes it alive again', () => {
    const m = new Membership(SILENCE, 0);
    m.setPeer('node2', ['a']);
    m.heartbeat('node2', 'a', 0);
    m.announcedStop('node2', 500);
    expect(m.stateOf('node2', 60_000)).toBe('stopped');
    m.heartbeat('node2', 'a', 61_000);
    expect(m.stateOf('node2', 61_000)).toBe('alive');
  });

  it('heartbeats from unknown servers or on unknown paths are ignored', () => {
    const m = new Membership(SILENCE, 0);
    m.setPeer('node2', ['a']);
    m.heartbeat('intruder', 'a', 1000);
    m.heartbeat('node2', 'b', 1000);
    expect(m.view(3000).map((v) => [v.server, v.state])).toEqual([['node2', 'failed']]);
  });
});

describe('quorum', () => {
  const three = ['node1', 'node2', 'node3'];
  it('majority: 2 of 3 is quorate, 1 of 3 is not', () => {
    expect(quorum({ mode: 'majority', servers: three, alive: ['node2', 'node3'] })).toMatchObject({ quorate: true, votes: 2, needed: 2, reason: '2 of 3 servers, 2 needed' });
    expect(quorum({ mode: 'majority', servers: three, alive: ['node1'] })).toMatchObject({ quorate: false, votes: 1, needed: 2 });
  });

  it('majority with two servers: the survivor is not quorate, and status says why', () => {
    const q = quorum({ mode: 'majority', servers: ['a', 'b'], alive: ['b'] });
    expect(q.quorate).toBe(false);
    expect(q.warning).toContain('no automatic failover happens; add a witness');
  });

  it('witness: the side the witness votes for wins', () => {
    expect(quorum({ mode: 'witness', servers: ['a', 'b'], alive: ['b'], witnessVote: true })).toMatchObject({ quorate: true, votes: 2, needed: 2, witness: 'granted' });
    expect(quorum({ mode: 'witness', servers: ['a', 'b'], alive: ['a'], witnessVote: false })).toMatchObject({ quorate: false, witness: 'refused' });
  });

  it('none: always quorate, with a warning', () => {
    const q = quorum({ mode: 'none', servers: ['a', 'b'], alive: ['a'] });
    expect(q.quorate).toBe(true);
    expect(q.warning).toContain('relies on FENCE_CMD alone');
  });

  it('the witness votes for one side at a time; a holder that stops asking loses it after its lease', () => {
    const w = new WitnessVote(3000);
    expect(w.request('a', 0)).toBe(true);
    expect(w.request('b', 1000)).toBe(false);
    expect(w.request('a', 2000)).toBe(true); // renewed to 5000
    expect(w.request('b', 4999)).toBe(false);
    expect(w.request('b', 5000)).toBe(true);
    expect(w.current).toBe('b');
  });
});
