// The daemon's side of the cluster manager: the one interface (ClusterActions) it calls. It reads this
// node's copies for the heartbeats and carries decisions out through the same in-service and
// out-of-service paths as `tandem inservice` / `tandem outofservice`.
import type { ClusterActions } from '../cluster/manager.js';
import type { MirrorBeat } from '../cluster/heartbeat-wire.js';
import type { ResourceDatabase } from '../../common/resource-database.js';
import type { Logger } from '../log.js';
import { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';

export interface ClusterHost {
  readonly node: string;
  readonly log: Logger;
  copies(): Array<SourceCopy | TargetCopy>;
  sourceCopy(tag: string): SourceCopy | undefined;
  targetCopy(tag: string): TargetCopy | undefined;
  resourceDatabase(): ResourceDatabase | null;
  /** Drops the replication connection of `tag`'s source (a cut link can leave a dead one open). */
  dropSource(tag: string): void;
  closeSource(copy: SourceCopy): Promise<void>;
  inService(tag: string, force: boolean): Promise<string>;
  outOfService(tag: string): Promise<string>;
}

/** This node's copies as its heartbeats announce them. */
export function heartbeatCopies(d: ClusterHost): MirrorBeat[] {
  return d.copies().map((c): MirrorBeat => {
    const r = c.record;
    const g = r.generations;
    if (c instanceof SourceCopy) {
      const links = c.mirror?.links ?? [];
      return {
        tag: c.tag, role: 'source', inService: c.phaseName === 'in service', generation: g.current, history: g.history,
        consistent: true, connected: null, lostSourceInSync: false, source: null,
        members: [d.node, ...c.targets().map((t) => t.node)],
        targets: links.map((l) => {
          const st = l.status();
          return { node: st.node, status: st.status, percentSynced: st.percentSynced };
        }),
      };
    }
    const t = c;
    return {
      tag: t.tag, role: 'target', inService: false, generation: g.current, history: g.history,
      consistent: t.record.consistent, connected: t.connected, lostSourceInSync: t.lostSourceInSync, source: t.record.source,
      members: t.record.members.map((m) => m.node), targets: [],
    };
  });
}

export function clusterActions(d: ClusterHost): ClusterActions {
  return {
    hierarchies: () => heartbeatCopies(d),
    resourceDatabase: () => d.resourceDatabase(),
    goInService: async (tag, failed, reason) => {
      const t = d.targetCopy(tag);
      if (!t) throw new Error(`no target copy of "${tag}" on ${d.node}`);
      // Every path to `failed` is silent: a connection a cut link left open is dead too.
      if (t.connected === failed) d.dropSource(tag);
      d.log.warn(`${tag}: automatic failover from ${failed}: ${reason}`);
      return d.inService(tag, false);
    },
    goOutOfService: async (tag) => {
      try {
        return await d.outOfService(tag);
      } catch (err) {
        // The split-brain guard does not wait for a busy file system: the export stops regardless.
        const s = d.sourceCopy(tag);
        if (!s || s.phaseName === 'out of service') throw err;
        await d.closeSource(s);
        s.takenOutOfService();
        return `${tag} out of service on ${d.node} (the file system could not be unmounted: ${(err as Error).message}; the export is stopped)`;
      }
    },
  };
}
