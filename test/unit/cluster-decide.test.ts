// One cluster manager round: the chosen quorate successor brings the hierarchy in service; others
// wait and say why; a source without quorum goes out of service (the split-brain guard).
import { describe, expect, it } from 'vitest';
import { decide, type HierarchyFacts } from '../../agent/cluster/decide.js';
import { quorum } from '../../agent/cluster/quorum.js';
import type { CopyFacts } from '../../agent/cluster/successor.js';

const servers = ['node1', 'node2', 'node3'];
const c = (server: string, priority: number, extra: Partial<CopyFacts> = {}): CopyFacts => ({
  server, priority, state: 'alive', role: 'target', inSync: true, generation: 'g1', resyncing: false, ...extra,
});
const h = (copies: CopyFacts[], extra: Partial<HierarchyFacts> = {}): HierarchyFacts => ({
  tag: 'datarep-ext3', source: 'node1', copies, currentGeneration: 'g1', confirmFailover: false, blockFailover: false, ...extra,
});
const quorate = quorum({ mode: 'majority', servers, alive: ['node2', 'node3'] });
const failed1 = [c('node1', 1, { state: 'failed', role: 'source' }), c('node2', 2), c('node3', 3)];

describe('cluster manager round', () => {
  it('the source failed: node2 (priority 2) goes in service, node3 waits for it', () => {
    expect(decide('node2', quorate, [h(failed1)])).toEqual([{
      kind: 'in service', tag: 'datarep-ext3', failed: 'node1', confirm: false,
      reason: 'node1 failed; quorate (2 of 3 servers, 2 needed); node2 (priority 2) chosen: highest priority with an in-sync copy; node3 (priority 3) follows node2 as a target',
    }]);
    expect(decide('node3', quorate, [h(failed1)])[0]).toMatchObject({ kind: 'none', reason: expect.stringContaining('node1 failed; node2 takes over') });
  });

  it('Confirm Failover On for the failed server: the action carries it', () => {
    expect(decide('node2', quorate, [h(failed1, { confirmFailover: true })])[0]).toMatchObject({ kind: 'in service', confirm: true });
  });

  it('no quorum, Block Resource Failover, a source only stopped: no failover, each with its reason', () => {
    const alone = quorum({ mode: 'majority', servers, alive: ['node2'] });
    expect(decide('node2', alone, [h(failed1)])[0]).toEqual({ kind: 'none', tag: 'datarep-ext3', reason: 'node1 failed and node2 would take over, but it has no quorum (1 of 3 servers, 2 needed): no failover' });
    expect(decide('node2', quorate, [h(failed1, { blockFailover: true })])[0]!.reason).toContain('Block Resource Failover is set on node2');
    const stopped = [c('node1', 1, { state: 'stopped', role: 'source' }), c('node2', 2)];
    expect(decide('node2', quorate, [h(stopped)])[0]).toEqual({ kind: 'none', tag: 'datarep-ext3', reason: 'node1 is stopped: no failover' });
  });

  it('scenario 2: the only other copy resyncing: no failover, reason shown', () => {
    const copies = [c('node1', 1, { state: 'failed', role: 'source' }), c('node2', 2, { inSync: false, resyncing: true, percentSynced: 41 })];
    const two = quorum({ mode: 'witness', servers: ['node1', 'node2'], alive: ['node2'], witnessVote: true });
    expect(decide('node2', two, [h(copies)])[0]!.reason).toBe('node1 failed; nobody takes over: node2 (priority 2) skipped: resyncing, 41 % done; its copy is incomplete (manual, scenario 2); no failover: no surviving server holds a usable copy of what node1 served');
  });

  it('the source itself without quorum takes its hierarchy out of service (QUORUM_LOSS_ACTION=osu)', () => {
    const cut = quorum({ mode: 'majority', servers, alive: ['node1'] });
    const mine = h([c('node1', 1, { role: 'source' }), c('node2', 2, { state: 'failed' }), c('node3', 3, { state: 'failed' })]);
    expect(decide('node1', cut, [mine])[0]).toEqual({ kind: 'out of service', tag: 'datarep-ext3', reason: 'node1 lost quorum (1 of 3 servers, 2 needed); QUORUM_LOSS_ACTION=osu takes datarep-ext3 out of service' });
    expect(decide('node1', quorate, [mine])[0]!.kind).toBe('none');
  });
});
