// What the status display shows: the resources in hierarchy order (from the resource database, plus
// mirrors found on the agents that the database does not list yet) and, for each server, the
// resource's state there — the manual's ISP/ISU/OSS/OSU/OSF and, for DataKeeper resources, the mirror
// role (Source, Target, Resyncing, Paused, Out Of Sync). Pure: derived from a ClusterView alone.
import type { ClusterView, ServerView } from './console-api.js';
import type { MirrorStatus, TargetStatus } from './mirror-status.js';
import type { ResourceDatabase, ResourceDefinition } from './resource-database.js';

/**
 * ISP in service, protected; ISU in service, unprotected (no target mirroring); OSS out of service,
 * standby (a usable copy, ready to take over); OSU out of service, unimpaired (not in service, not
 * ready: starting, resyncing, stopped); OSF out of service, failed (needs the administrator).
 */
export type InstanceState = 'ISP' | 'ISU' | 'OSS' | 'OSU' | 'OSF';
export type MirrorRole = 'Source' | 'Target' | 'Resyncing' | 'Paused' | 'Out Of Sync';
/** The colour family of a cell. */
export type Tone = 'active' | 'warning' | 'standby' | 'busy' | 'failed' | 'stopped' | 'unknown';

export const STATE_WORDS: Record<InstanceState, string> = {
  ISP: 'In Service', ISU: 'In Service, Unprotected', OSS: 'Standby', OSU: 'Out of Service', OSF: 'Failed',
};

export interface CellState {
  /** 'unknown' where the server cannot be asked (not connected). */
  state: InstanceState | 'unknown';
  role: MirrorRole | null;
  /** What the cell says. */
  text: string;
  tone: Tone;
  /** Resyncing target: % synced, speed in bytes/s and seconds left. */
  progress: { percent: number; speed: number; etaSeconds: number | null } | null;
  /** Why, in words (the tooltip). */
  detail: string;
}

export interface ResourceRow {
  /** Unique per row: the path of tags from the root ("fs/dk"), as a resource may sit in two hierarchies. */
  key: string;
  tag: string;
  kind: ResourceDefinition['kind'];
  depth: number;
  /** The hierarchy's top resource. */
  root: string;
  definition: ResourceDefinition;
  /** Found on the agents but not (yet) in the resource database. */
  discovered: boolean;
}

export interface StatusTable {
  rows: ResourceRow[];
  servers: ServerView[];
  /** cells[rowIndex][serverIndex]; null = not defined on that server (an empty cell). */
  cells: Array<Array<CellState | null>>;
  /** Per hierarchy root: its overall state and where. */
  overall: Map<string, CellState & { server: string | null }>;
}

const reachable = (s: ServerView) => s.connection.state === 'connected' && s.agent.running;

/** Each mirror's copies by server; `source` is the copy serving (in service) if any, else any source. */
interface MirrorCopies {
  byServer: Map<string, MirrorStatus>;
  source: MirrorStatus | null;
}

export function indexMirrors(servers: readonly ServerView[]): Map<string, MirrorCopies> {
  const index = new Map<string, MirrorCopies>();
  for (const s of servers) {
    if (!reachable(s)) continue;
    for (const m of s.mirrors) {
      let e = index.get(m.tag);
      if (!e) index.set(m.tag, (e = { byServer: new Map(), source: null }));
      e.byServer.set(s.name, m);
      if (m.role === 'source' && (!e.source || (e.source.state !== 'in service' && m.state === 'in service'))) e.source = m;
    }
  }
  return index;
}

/** The database's resources plus mirrors (and their file systems) the agents have that it lacks. */
export function withDiscovered(db: ResourceDatabase, mirrors: Map<string, MirrorCopies>): Array<{ def: ResourceDefinition; discovered: boolean }> {
  const out = db.resources.map((def) => ({ def, discovered: false }));
  const known = new Set(db.resources.map((r) => r.tag));
  for (const [tag, copies] of [...mirrors].sort(([a], [b]) => a.localeCompare(b))) {
    if (known.has(tag)) continue;
    // Priorities as the manual assigns them on create/extend: the source 1, each target after it.
    const servers = [...copies.byServer.values()].sort((a, b) => Number(b.role === 'source') - Number(a.role === 'source') || a.node.localeCompare(b.node));
    const instances = servers.map((m, i) => ({ server: m.node, priority: i === 0 ? 1 : 10 * i }));
    out.push({ def: { tag, kind: 'datakeeper', dependsOn: [], instances, switchback: 'intelligent' }, discovered: true });
    known.add(tag);
    const fs = copies.source?.fileSystem;
    if (fs && !known.has(fs.tag)) {
      out.push({ def: { tag: fs.tag, kind: 'filesystem', mountPoint: fs.mountPoint, fstype: fs.fstype, dependsOn: [tag], instances: instances.map((x) => ({ ...x })), switchback: 'intelligent' }, discovered: true });
      known.add(fs.tag);
    }
  }
  return out;
}

/** Hierarchy order: each top resource (nothing depends on it) followed by what it depends on, depth first. */
export function resourceRows(defs: Array<{ def: ResourceDefinition; discovered: boolean }>): ResourceRow[] {
  const byTag = new Map(defs.map((d) => [d.def.tag, d]));
  const dependedOn = new Set(defs.flatMap((d) => d.def.dependsOn));
  const roots = defs.filter((d) => !dependedOn.has(d.def.tag)).sort((a, b) => a.def.tag.localeCompare(b.def.tag));
  const rows: ResourceRow[] = [];
  for (const root of roots) {
    // Iterative walk; `path` guards against cycles in a database that skipped the checks.
    const stack: Array<{ tag: string; depth: number; path: string[] }> = [{ tag: root.def.tag, depth: 0, path: [] }];
    while (stack.length) {
      const { tag, depth, path } = stack.pop()!;
      const d = byTag.get(tag);
      if (!d || path.includes(tag)) continue;
      const here = [...path, tag];
      rows.push({ key: here.join('/'), tag, kind: d.def.kind, depth, root: root.def.tag, definition: d.def, discovered: d.discovered });
      const children = [...d.def.dependsOn].sort((a, b) => b.localeCompare(a));
      for (const c of children) stack.push({ tag: c, depth: depth + 1, path: here });
    }
  }
  return rows;
}

const cell = (state: CellState['state'], role: MirrorRole | null, text: string, tone: Tone, detail: string, progress: CellState['progress'] = null): CellState =>
  ({ state, role, text, tone, detail, progress });

/** The word a target copy gets when its source is not in view: from the target's own status. */
function targetWordAlone(m: MirrorStatus): TargetStatus['status'] | 'Target' {
  if (m.state === 'resyncing') return 'Resyncing';
  if (m.state === 'out of sync') return 'Out Of Sync';
  if (m.state === 'target') return 'Fully Operational';
  return m.consistent ? 'Target' : 'Out Of Sync';
}

/** A DataKeeper resource's state on one server (the server is reachable and holds a copy). */
export function mirrorCell(m: MirrorStatus, source: MirrorStatus | null): CellState {
  if (m.role === 'source') {
    if (m.state === 'starting') return cell('OSU', 'Source', 'Starting', 'busy', 'looking for its targets before serving');
    if (m.state !== 'in service') {
      return m.dataCorrupt
        ? cell('OSF', null, 'Out of Service', 'failed', 'data_corrupt is set: the last resync from here did not finish; use Force Mirror Online only if this copy is known good')
        : cell('OSU', null, 'Out of Service', 'stopped', 'out of service on this server');
    }
    const mirroring = m.targets.filter((t) => t.status !== 'Out Of Sync' && t.status !== 'Split Brain');
    if (mirroring.length === 0) {
      return cell('ISU', 'Source', 'Source', 'warning', m.targets.length === 0 ? 'in service with no target: unprotected' : 'in service; no target is mirroring: unprotected');
    }
    return cell('ISP', 'Source', 'Source', 'active', `in service, mirroring to ${mirroring.map((t) => t.node).join(', ')}`);
  }
  const t = source?.state === 'in service' ? source.targets.find((x) => x.node === m.node) : undefined;
  const word = t ? t.status : targetWordAlone(m);
  const from = t ? ` from ${source!.node}` : m.lastSource ? ` (last source ${m.lastSource}, not connected)` : '';
  switch (word) {
    case 'Fully Operational':
    case 'Target':
      return cell('OSS', 'Target', 'Target', 'standby', `in sync${from}; ready to take over`);
    case 'Resyncing':
      return cell('OSU', 'Resyncing', 'Resyncing', 'busy', `resyncing${from}; cannot take over until it finishes`,
        t ? { percent: t.percentSynced, speed: t.resyncSpeed, etaSeconds: t.etaSeconds } : null);
    case 'Paused':
      return cell('OSS', 'Paused', 'Paused', 'warning', `paused${from}: writes are not replicated until resumed`);
    default:
      return cell('OSF', 'Out Of Sync', 'Out Of Sync', 'failed', `${word === 'Split Brain' ? 'split brain' : 'out of sync'}${from}${t?.lastError ? `: ${t.lastError}` : ''}`);
  }
}

/** A resource's state on one server; null where it is not defined there. */
export function cellState(def: ResourceDefinition, server: ServerView, mirrors: Map<string, MirrorCopies>, byTag: Map<string, ResourceDefinition>, seen: string[] = []): CellState | null {
  const copies = mirrors.get(def.tag);
  const defined = def.instances.some((i) => i.server === server.name) || (def.kind === 'datakeeper' && copies?.byServer.has(server.name));
  if (!defined) return null;
  if (!reachable(server)) return cell('unknown', null, 'Unknown', 'unknown', `${server.name} is ${server.connection.state}${server.connection.message ? `: ${server.connection.message}` : ''}`);
  if (def.kind === 'datakeeper') {
    const m = copies?.byServer.get(server.name);
    if (!m) return cell('unknown', null, 'Not found', 'unknown', `the agent on ${server.name} has no mirror "${def.tag}"`);
    return mirrorCell(m, copies!.source);
  }
  // A file system or application: follows what it depends on (the first dependency decides).
  const childTag = def.dependsOn[0];
  const child = childTag ? byTag.get(childTag) : undefined;
  if (!child || seen.includes(def.tag)) return cell('unknown', null, 'No status', 'unknown', 'depends on nothing Tandem watches');
  const below = cellState(child, server, mirrors, byTag, [...seen, def.tag]);
  if (!below || below.state === 'unknown') return below && cell('unknown', null, below.text, 'unknown', below.detail);
  if (def.kind === 'filesystem' && child.kind === 'datakeeper' && below.state.startsWith('IS')) {
    const fs = mirrors.get(child.tag)?.byServer.get(server.name)?.fileSystem;
    if (fs?.error) return cell('OSF', null, STATE_WORDS.OSF, 'failed', `${def.mountPoint ?? fs.mountPoint}: ${fs.error}`);
    if (fs && !fs.mounted) return cell('OSU', null, 'Not mounted', 'busy', `${fs.mountPoint} is not mounted yet`);
  }
  const tone: Tone = { ISP: 'active', ISU: 'warning', OSS: 'standby', OSU: 'stopped', OSF: 'failed' }[below.state] as Tone;
  const where = def.kind === 'filesystem' && def.mountPoint ? `${def.mountPoint} ` : '';
  return cell(below.state, null, STATE_WORDS[below.state], below.state === 'OSU' && below.tone === 'busy' ? 'busy' : tone, `${where}follows ${child.tag}: ${below.detail}`);
}

const RANK: Array<CellState['state']> = ['ISP', 'ISU', 'OSF', 'OSS', 'OSU', 'unknown'];

/** The whole status display from one cluster view. */
export function statusTable(view: Pick<ClusterView, 'servers' | 'resources'>): StatusTable {
  const mirrors = indexMirrors(view.servers);
  const defs = withDiscovered(view.resources, mirrors);
  const byTag = new Map(defs.map((d) => [d.def.tag, d.def]));
  const rows = resourceRows(defs);
  const cache = new Map<string, Array<CellState | null>>();
  const cells = rows.map((r) => {
    let line = cache.get(r.tag); // a resource in two hierarchies has one state per server
    if (!line) cache.set(r.tag, (line = view.servers.map((s) => cellState(r.definition, s, mirrors, byTag))));
    return line;
  });
  const overall = new Map<string, CellState & { server: string | null }>();
  rows.forEach((r, i) => {
    if (r.depth !== 0) return;
    let best: (CellState & { server: string | null }) | null = null;
    cells[i]!.forEach((c, j) => {
      if (c && (!best || RANK.indexOf(c.state) < RANK.indexOf(best.state))) best = { ...c, server: view.servers[j]!.name };
    });
    overall.set(r.tag, best ?? { ...cell('unknown', null, 'Not defined', 'unknown', 'defined on no server'), server: null });
  });
  return { rows, servers: view.servers, cells, overall };
}

/** "12m 5s", "45s", "—". */
export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
