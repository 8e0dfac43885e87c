// What a manager round knows about each hierarchy this server holds a copy of, assembled from this
// server's copies, the peers' last heartbeats, membership and the resource database. Pure.
import type { ResourceDatabase } from '../../common/resource-database.js';
import type { HierarchyFacts } from './decide.js';
import type { MirrorBeat, Heartbeat } from './heartbeat-wire.js';
import type { ServerState } from './membership.js';
import type { CopyFacts } from './successor.js';

export interface FactsInput {
  self: string;
  copies: readonly MirrorBeat[];
  /** Each peer's last heartbeat (kept after it fails: what it last said). */
  beats: ReadonlyMap<string, Heartbeat>;
  states: ReadonlyMap<string, ServerState>;
  db: ResourceDatabase | null;
}

/** Priority of `server` for `tag`: the resource database's, else the mirror's member order (source first). */
function priorityOf(db: ResourceDatabase | null, tag: string, server: string, members: readonly string[]): number {
  const r = db?.resources.find((x) => x.tag === tag);
  const i = r?.instances.find((x) => x.server === server);
  if (i) return i.priority;
  const k = members.indexOf(server);
  return k >= 0 ? k + 1 : 999;
}

/**
 * The newest generation among the copies: one no other copy has in its history (the failed source's
 * last announced one first). A target that missed writes holds a generation others have moved past.
 */
export function newestGeneration(order: ReadonlyArray<{ generation: string; history: readonly string[] }>): string {
  for (const c of order) {
    if (c.generation === '') continue;
    if (!order.some((o) => o !== c && o.history.includes(c.generation))) return c.generation;
  }
  return order.find((c) => c.generation !== '')?.generation ?? '';
}

export function hierarchyFacts(i: FactsInput): HierarchyFacts[] {
  const out: HierarchyFacts[] = [];
  const flags = i.db?.flags.find((f) => f.server === i.self);
  for (const mine of i.copies) {
    // A source out of service here is not run by the manager (an administrator took it down).
    if (mine.role === 'source' && !mine.inService) continue;
    const source = mine.role === 'source' ? i.self : mine.connected ?? mine.source;
    if (!source) continue;
    const members = mine.role === 'source' ? [i.self, ...mine.targets.map((t) => t.node)] : mine.members.length ? mine.members : [source, i.self];
    const sourceBeat = i.beats.get(source)?.mirrors.find((m) => m.tag === mine.tag && m.role === 'source');
    const copyOf = (server: string): MirrorBeat | undefined => (server === i.self ? mine : i.beats.get(server)?.mirrors.find((m) => m.tag === mine.tag));
    const copies: CopyFacts[] = members.map((server): CopyFacts => {
      const c = copyOf(server);
      const state: ServerState = server === i.self ? 'alive' : i.states.get(server) ?? 'unknown';
      const priority = priorityOf(i.db, mine.tag, server, members);
      if (server === source) return { server, priority, state, role: 'source', inSync: true, generation: c?.generation ?? '', resyncing: false };
      if (!c || c.role !== 'target') return { server, priority, state, role: c ? 'source' : 'target', inSync: false, generation: c?.generation ?? '', resyncing: false };
      const pct = sourceBeat?.targets.find((t) => t.node === server)?.percentSynced;
      return {
        server, priority, state, role: 'target', generation: c.generation,
        inSync: c.consistent && (c.connected === source || c.lostSourceInSync),
        resyncing: !c.consistent, ...(pct !== undefined ? { percentSynced: Math.floor(pct) } : {}),
      };
    });
    const order = [sourceBeat, ...members.filter((m) => m !== source).map(copyOf)].filter((x): x is MirrorBeat => x !== undefined && (x.role === 'target' || x === sourceBeat));
    out.push({
      tag: mine.tag, source, copies, currentGeneration: newestGeneration(order),
      confirmFailover: flags?.confirmFailoverFrom.includes(source) ?? false,
      blockFailover: flags?.blockResourceFailover ?? false,
      ...(mine.role === 'target' && sourceBeat && !sourceBeat.inService ? { sourceOutOfService: true } : {}),
    });
  }
  return out;
}
