// What a manager round knows, from this server's copies and the peers' last heartbeats; and the
// heartbeat line's strict parsing (a peer's bytes are never trusted).
import { describe, expect, it } from 'vitest';
import { hierarchyFacts, newestGeneration } from '../../agent/cluster/facts.js';
import { decide } from '../../agent/cluster/decide.js';
import { quorum } from '../../agent/cluster/quorum.js';
import { decodeHeartbeat, encodeHeartbeat, HeartbeatFormatError, MAX_HEARTBEAT_BYTES, type Heartbeat, type MirrorBeat } from '../../agent/cluster/heartbeat-wire.js';
import type { ServerState } from '../../agent/cluster/membership.js';

const tag = 'datarep-ext3';
const target = (extra: Partial<MirrorBeat> = {}): MirrorBeat => ({
  tag, role: 'target', inService: false, generation: 'g2', history: ['g1'], consistent: true, connected: null, lostSourceInSync: true,
  source: 'n1', members: ['n1', 'n2', 'n3'], targets: [], ...extra,
});
const sourceBeat = (extra: Partial<MirrorBeat> = {}): MirrorBeat => ({
  tag, role: 'source', inService: true, generation: 'g2', history: ['g1'], consistent: true, connected: null, lostSourceInSync: false, source: null,
  members: ['n1', 'n2', 'n3'], targets: [{ node: 'n2', status: 'Fully Operational', percentSynced: 100 }, { node: 'n3', status: 'Fully Operational', percentSynced: 100 }], ...extra,
});
const beat = (node: string, mirrors: MirrorBeat[]): Heartbeat => ({ v: 1, node, seq: 1, stopping: false, mirrors });
const failed1 = new Map<string, ServerState>([['n1', 'failed'], ['n3', 'alive']]);
const q = quorum({ mode: 'majority', servers: ['n1', 'n2', 'n3'], alive: ['n2', 'n3'] });

describe('cluster facts from heartbeats', () => {
  it('both targets in sync with the generation n1 last announced: n2 (member order 2) takes over', () => {
    const beats = new Map([['n1', beat('n1', [sourceBeat()])], ['n3', beat('n3', [target()])]]);
    const facts = hierarchyFacts({ self: 'n2', copies: [target()], beats, states: failed1, db: null });
    expect(facts).toEqual([expect.objectContaining({ tag, source: 'n1', currentGeneration: 'g2' })]);
    expect(decide('n2', q, facts)[0]).toMatchObject({ kind: 'in service', failed: 'n1' });
  });

  it('n2 missed writes (older generation): n3, which holds the newest, takes over; the resource database priorities win over member order', () => {
    const beats = new Map([['n1', beat('n1', [sourceBeat({ generation: 'g3', history: ['g2', 'g1'] })])], ['n3', beat('n3', [target({ generation: 'g3', history: ['g2', 'g1'] })])]]);
    const facts = hierarchyFacts({ self: 'n2', copies: [target()], beats, states: failed1, db: null });
    expect(facts[0]!.currentGeneration).toBe('g3');
    expect(decide('n2', q, facts)[0]!.reason).toContain('n2 (priority 2) skipped: holds an older generation than the one n1 last announced; n3 (priority 3) chosen');
    const db = { version: 1, flags: [], resources: [{ tag, kind: 'datakeeper' as const, dependsOn: [], switchback: 'intelligent' as const, instances: [{ server: 'n1', priority: 1 }, { server: 'n3', priority: 5 }, { server: 'n2', priority: 10 }] }] };
    const same = new Map([['n1', beat('n1', [sourceBeat()])], ['n3', beat('n3', [target()])]]);
    expect(decide('n2', q, hierarchyFacts({ self: 'n2', copies: [target()], beats: same, states: failed1, db }))[0]!.reason).toContain('n3 takes over');
  });

  it('the resync\'s % done comes from the source\'s last heartbeat; Confirm Failover from the flags; a source that was out of service is not failed over', () => {
    const beats = new Map([['n1', beat('n1', [sourceBeat({ targets: [{ node: 'n2', status: 'Resyncing', percentSynced: 41.7 }] })])]]);
    const mine = target({ consistent: false, lostSourceInSync: false, members: ['n1', 'n2'] });
    const r = decide('n2', q, hierarchyFacts({ self: 'n2', copies: [mine], beats, states: failed1, db: null }))[0]!;
    expect(r.reason).toContain('n2 (priority 2) skipped: resyncing, 41 % done');
    const flags = { version: 1, resources: [], flags: [{ server: 'n2', confirmFailoverFrom: ['n1'], blockResourceFailover: false }] };
    const ok = new Map([['n1', beat('n1', [sourceBeat()])]]);
    expect(hierarchyFacts({ self: 'n2', copies: [target()], beats: ok, states: failed1, db: flags })[0]!.confirmFailover).toBe(true);
    const osu = new Map([['n1', beat('n1', [sourceBeat({ inService: false })])]]);
    expect(decide('n2', q, hierarchyFacts({ self: 'n2', copies: [target()], beats: osu, states: failed1, db: null }))[0]!.reason).toBe(`n1 failed, but ${tag} was out of service there: no failover`);
  });

  it('a source out of service here is left alone; an in-service one is decided (quorum loss → out of service)', () => {
    const alone = quorum({ mode: 'majority', servers: ['n1', 'n2', 'n3'], alive: ['n1'] });
    const states = new Map<string, ServerState>([['n2', 'failed'], ['n3', 'failed']]);
    expect(hierarchyFacts({ self: 'n1', copies: [sourceBeat({ inService: false })], beats: new Map(), states, db: null })).toEqual([]);
    expect(decide('n1', alone, hierarchyFacts({ self: 'n1', copies: [sourceBeat()], beats: new Map(), states, db: null }))[0]!.kind).toBe('out of service');
  });

  it('newest generation: the one no other copy has in its history', () => {
    expect(newestGeneration([{ generation: 'g1', history: [] }, { generation: 'g2', history: ['g1'] }])).toBe('g2');
    expect(newestGeneration([{ generation: '', history: [] }, { generation: 'g1', history: [] }])).toBe('g1');
  });
});

describe('heartbeat lines', () => {
  it('round-trips, and refuses what is not a heartbeat', () => {
    const h = beat('n1', [sourceBeat()]);
    expect(decodeHeartbeat(encodeHeartbeat(h).trimEnd())).toEqual(h);
    for (const bad of ['', 'null', '[]', '{"v":2}', JSON.stringify({ ...h, seq: -1 }), JSON.stringify({ ...h, mirrors: [{ ...sourceBeat(), role: 'x' }] }), JSON.stringify({ ...h, node: 'x'.repeat(300) }), 'x'.repeat(MAX_HEARTBEAT_BYTES + 1)]) {
      expect(() => decodeHeartbeat(bad), bad.slice(0, 40)).toThrow(HeartbeatFormatError);
    }
  });
});
