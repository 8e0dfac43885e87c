// The successor every survivor agrees on, with a reason per skipped server; and the Confirm Failover
// gate with injected timers (lk_confirmso -y / -n, CONFIRMSOTO expiry with CONFIRMSODEF 0 and 1).
import { describe, expect, it } from 'vitest';
import { chooseSuccessor, ConfirmGate, type CopyFacts, type Timers } from '../../agent/cluster/successor.js';

const copy = (server: string, priority: number, extra: Partial<CopyFacts> = {}): CopyFacts => ({
  server, priority, state: 'alive', role: 'target', inSync: true, generation: 'g1', resyncing: false, ...extra,
});

describe('successor choice', () => {
  it('the highest priority in-sync target takes over; the others follow it', () => {
    const s = chooseSuccessor('node1', [copy('node3', 3), copy('node1', 1, { state: 'failed', role: 'source' }), copy('node2', 2)], 'g1');
    expect(s).toEqual({ successor: 'node2', reasons: ['node2 (priority 2) chosen: highest priority with an in-sync copy', 'node3 (priority 3) follows node2 as a target'] });
  });

  it('a resyncing copy is skipped with its progress (manual, scenario 2); the next one is chosen', () => {
    const s = chooseSuccessor('node1', [copy('node2', 2, { inSync: false, resyncing: true, percentSynced: 41 }), copy('node3', 3)], 'g1');
    expect(s.successor).toBe('node3');
    expect(s.reasons[0]).toBe('node2 (priority 2) skipped: resyncing, 41 % done; its copy is incomplete (manual, scenario 2)');
  });

  it('the only other copy resyncing: no failover, and why', () => {
    const s = chooseSuccessor('node1', [copy('node2', 2, { inSync: false, resyncing: true, percentSynced: 41 })], 'g1');
    expect(s.successor).toBeNull();
    expect(s.reasons).toEqual([
      'node2 (priority 2) skipped: resyncing, 41 % done; its copy is incomplete (manual, scenario 2)',
      'no failover: no surviving server holds a usable copy of what node1 served',
    ]);
  });

  it('failed servers and older generations are skipped; equal priorities go by name, so every survivor agrees', () => {
    const facts = [copy('b', 2, { state: 'failed' }), copy('d', 3, { generation: 'g0' }), copy('c', 4), copy('e', 4)];
    const one = chooseSuccessor('a', facts, 'g1');
    const two = chooseSuccessor('a', [...facts].reverse(), 'g1');
    expect(one).toEqual(two);
    expect(one.reasons.slice(0, 2)).toEqual(['b (priority 2) skipped: failed', 'd (priority 3) skipped: holds an older generation than the one a last announced']);
    expect(one.successor).toBe('c');
  });
});

function fakeTimers() {
  let now = 0;
  const queue: Array<{ at: number; f: () => void; id: number }> = [];
  let id = 0;
  const timers: Timers = {
    now: () => now,
    setTimeout: (f, ms) => {
      queue.push({ at: now + ms, f, id: ++id });
      return id;
    },
    clearTimeout: (h) => {
      const i = queue.findIndex((q) => q.id === h);
      if (i >= 0) queue.splice(i, 1);
    },
  };
  const advance = (ms: number) => {
    now += ms;
    for (const q of queue.filter((x) => x.at <= now)) {
      queue.splice(queue.indexOf(q), 1);
      q.f();
    }
  };
  return { timers, advance, pending: () => queue.length };
}

describe('Confirm Failover gate', () => {
  it('waits; lk_confirmso -y proceeds, -n blocks; the pending confirmation shows its deadline', async () => {
    const { timers, advance, pending } = fakeTimers();
    const gate = new ConfirmGate(timers, 600, 'proceed');
    advance(1000);
    const yes = gate.wait('node1');
    expect(gate.list()).toEqual([{ failed: 'node1', deadline: 601_000 }]);
    expect(gate.answer('node9', 'proceed')).toBe(false);
    expect(gate.answer('node1', 'proceed')).toBe(true);
    expect(await yes).toEqual({ answer: 'proceed', by: 'lk_confirmso -y' });
    expect(pending()).toBe(0);
    const no = gate.wait('node1');
    gate.answer('node1', 'block');
    expect(await no).toEqual({ answer: 'block', by: 'lk_confirmso -n' });
    expect(gate.list()).toEqual([]);
  });

  it('CONFIRMSOTO expiry applies CONFIRMSODEF: 0 proceeds, 1 blocks', async () => {
    for (const [def, digit] of [['proceed', 0], ['block', 1]] as const) {
      const { timers, advance } = fakeTimers();
      const gate = new ConfirmGate(timers, 30, def);
      let done: unknown = null;
      void gate.wait('node1').then((r) => (done = r));
      advance(29_999);
      await Promise.resolve();
      expect(done).toBeNull();
      advance(1);
      await Promise.resolve();
      expect(done).toEqual({ answer: def, by: `no answer within CONFIRMSOTO=30 s, CONFIRMSODEF=${digit}` });
    }
  });

  it('CONFIRMSOTO=0 with CONFIRMSODEF=1 blocks failover completely', async () => {
    const gate = new ConfirmGate(fakeTimers().timers, 0, 'block');
    expect(await gate.wait('node1')).toEqual({ answer: 'block', by: 'CONFIRMSOTO=0, CONFIRMSODEF=1' });
  });
});
