// The resource database: what the manual's LifeKeeper keeps on every server beyond the mirrors
// themselves — resource hierarchies (which resource depends on which), the servers each resource is
// defined on with their priorities (equivalencies), and the per-server failover flags. Every agent
// stores a copy (state/resource-db.json, atomic write); the copy with the highest version wins, and
// the console writes a change to every reachable node with version + 1.
// Pure types and checks: the agent, the console backend and the wizards share them.

/** datakeeper: a mirror (its tag is the mirror's tag); filesystem: a file system over a datakeeper
 * resource; generic: any other resource an administrator places in a hierarchy (an application). */
export type ResourceKind = 'datakeeper' | 'filesystem' | 'generic';

/** One server a resource is defined on (the manual's equivalency) and its priority there. */
export interface ResourceInstance {
  server: string;
  /** 1–999, unique per resource; lower is preferred (1 = highest, the server it was created on). */
  priority: number;
}

export interface ResourceDefinition {
  tag: string;
  kind: ResourceKind;
  /** filesystem: the mount point and type. */
  mountPoint?: string;
  fstype?: string;
  /** The tags this resource depends on (its children in the hierarchy tree). */
  dependsOn: string[];
  instances: ResourceInstance[];
  /** The manual: only intelligent switchback for DataKeeper hierarchies. */
  switchback: 'intelligent';
}

/** Per server: the manual's Confirm Failover On (per other server) and Block Resource Failover On. */
export interface ServerFlags {
  server: string;
  /** Servers from which a failover to this server needs the administrator's confirmation. */
  confirmFailoverFrom: string[];
  blockResourceFailover: boolean;
}

export interface ResourceDatabase {
  /** Increases by one with every change; the highest version seen on any node is the truth. */
  version: number;
  resources: ResourceDefinition[];
  flags: ServerFlags[];
}

export const EMPTY_RESOURCE_DATABASE: ResourceDatabase = { version: 0, resources: [], flags: [] };

export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 999;

// ---- checks ----

/** The agent's tag rule (control-handlers.ts): what `tandem create` accepts. */
export const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The console's server name rule (console-api.ts serverName). */
export const SERVER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const FSTYPE_PATTERN = /^[a-z0-9]{1,16}$/;
export const MAX_RESOURCES = 4096;
export const MAX_SERVERS = 64;

/** A resource database that breaks a rule; `field` is the path of the first offending value. */
export class ResourceDatabaseError extends Error {
  constructor(readonly field: string, readonly problem: string) {
    super(`resource database: ${field}: ${problem}`);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(v: Record<string, unknown>, where: string, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw new ResourceDatabaseError(`${where}.${k}`, `unknown field; allowed: ${allowed.join(', ')}`);
  }
}

function list(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new ResourceDatabaseError(where, 'must be a list');
  if (v.length > max) throw new ResourceDatabaseError(where, `at most ${max} entries, not ${v.length}`);
  return v;
}

function serverName(v: unknown, where: string): string {
  if (typeof v !== 'string' || !SERVER_PATTERN.test(v)) {
    throw new ResourceDatabaseError(where, `${JSON.stringify(v)} is not a server name (1–63 letters, digits, ".", "_" or "-", starting with a letter or digit)`);
  }
  return v;
}

function checkResource(v: unknown, where: string): ResourceDefinition {
  if (!isRecord(v)) throw new ResourceDatabaseError(where, 'must be an object (tag, kind, dependsOn, instances, switchback)');
  onlyKeys(v, where, ['tag', 'kind', 'mountPoint', 'fstype', 'dependsOn', 'instances', 'switchback']);
  if (typeof v.tag !== 'string' || !TAG_PATTERN.test(v.tag)) {
    throw new ResourceDatabaseError(`${where}.tag`, `${JSON.stringify(v.tag)} is not a valid tag: use letters, digits, dot, dash, underscore (up to 64, starting with a letter or digit)`);
  }
  const tag = v.tag;
  if (v.kind !== 'datakeeper' && v.kind !== 'filesystem' && v.kind !== 'generic') {
    throw new ResourceDatabaseError(`${where}.kind`, `must be datakeeper, filesystem or generic, not ${JSON.stringify(v.kind)}`);
  }
  const r: ResourceDefinition = { tag, kind: v.kind, dependsOn: [], instances: [], switchback: 'intelligent' };
  if (v.kind === 'filesystem') {
    if (typeof v.mountPoint !== 'string' || !v.mountPoint.startsWith('/') || v.mountPoint.length > 4096) {
      throw new ResourceDatabaseError(`${where}.mountPoint`, `a file system resource needs its mount point, an absolute path; got ${JSON.stringify(v.mountPoint)}`);
    }
    if (typeof v.fstype !== 'string' || !FSTYPE_PATTERN.test(v.fstype)) {
      throw new ResourceDatabaseError(`${where}.fstype`, `a file system resource needs its file system type (e.g. ext4, xfs); got ${JSON.stringify(v.fstype)}`);
    }
    r.mountPoint = v.mountPoint;
    r.fstype = v.fstype;
  } else if (v.mountPoint !== undefined || v.fstype !== undefined) {
    throw new ResourceDatabaseError(`${where}.mountPoint`, `only a filesystem resource has a mount point and type; "${tag}" is ${v.kind}`);
  }
  if (v.switchback !== 'intelligent') throw new ResourceDatabaseError(`${where}.switchback`, `must be "intelligent" (the only switchback type for DataKeeper hierarchies), not ${JSON.stringify(v.switchback)}`);
  list(v.dependsOn, `${where}.dependsOn`, MAX_RESOURCES).forEach((d, i) => {
    if (typeof d !== 'string' || !TAG_PATTERN.test(d)) throw new ResourceDatabaseError(`${where}.dependsOn.${i}`, `${JSON.stringify(d)} is not a tag`);
    if (d === tag) throw new ResourceDatabaseError(`${where}.dependsOn.${i}`, `"${tag}" cannot depend on itself`);
    if (r.dependsOn.includes(d)) throw new ResourceDatabaseError(`${where}.dependsOn.${i}`, `"${d}" is listed twice`);
    r.dependsOn.push(d);
  });
  const instances = list(v.instances, `${where}.instances`, MAX_SERVERS);
  if (instances.length === 0) throw new ResourceDatabaseError(`${where}.instances`, `"${tag}" must be defined on at least one server`);
  const priorities = new Map<number, string>();
  instances.forEach((inst, i) => {
    const at = `${where}.instances.${i}`;
    if (!isRecord(inst)) throw new ResourceDatabaseError(at, 'must be an object (server, priority)');
    onlyKeys(inst, at, ['server', 'priority']);
    const server = serverName(inst.server, `${at}.server`);
    if (r.instances.some((x) => x.server === server)) throw new ResourceDatabaseError(`${at}.server`, `"${tag}" is already defined on ${server}`);
    const p = inst.priority;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < MIN_PRIORITY || p > MAX_PRIORITY) {
      throw new ResourceDatabaseError(`${at}.priority`, `a priority is a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY}, not ${JSON.stringify(p)}`);
    }
    const taken = priorities.get(p);
    if (taken) throw new ResourceDatabaseError(`${at}.priority`, `priority ${p} of "${tag}" is already used on ${taken}; each server needs its own`);
    priorities.set(p, server);
    r.instances.push({ server, priority: p });
  });
  return r;
}

function checkFlags(v: unknown, where: string): ServerFlags {
  if (!isRecord(v)) throw new ResourceDatabaseError(where, 'must be an object (server, confirmFailoverFrom, blockResourceFailover)');
  onlyKeys(v, where, ['server', 'confirmFailoverFrom', 'blockResourceFailover']);
  const server = serverName(v.server, `${where}.server`);
  const from: string[] = [];
  list(v.confirmFailoverFrom, `${where}.confirmFailoverFrom`, MAX_SERVERS).forEach((s, i) => {
    const name = serverName(s, `${where}.confirmFailoverFrom.${i}`);
    if (name === server) throw new ResourceDatabaseError(`${where}.confirmFailoverFrom.${i}`, `Confirm Failover is set per other server; ${server} cannot name itself`);
    if (!from.includes(name)) from.push(name);
  });
  if (typeof v.blockResourceFailover !== 'boolean') throw new ResourceDatabaseError(`${where}.blockResourceFailover`, 'must be true or false');
  return { server, confirmFailoverFrom: from, blockResourceFailover: v.blockResourceFailover };
}

/** A tag on a dependency cycle, followed round to itself ("a → b → a"), or null. */
export function findCycle(resources: readonly ResourceDefinition[]): string[] | null {
  const byTag = new Map(resources.map((r) => [r.tag, r]));
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  // Iterative depth-first walk: a deep chain must not overflow the stack.
  for (const start of resources) {
    if (done.has(start.tag)) continue;
    const stack: Array<{ tag: string; next: number }> = [{ tag: start.tag, next: 0 }];
    path.push(start.tag);
    onPath.add(start.tag);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const deps = byTag.get(top.tag)?.dependsOn ?? [];
      if (top.next >= deps.length) {
        stack.pop();
        path.pop();
        onPath.delete(top.tag);
        done.add(top.tag);
        continue;
      }
      const child = deps[top.next++]!;
      if (onPath.has(child)) return [...path.slice(path.indexOf(child)), child];
      if (done.has(child) || !byTag.has(child)) continue;
      stack.push({ tag: child, next: 0 });
      path.push(child);
      onPath.add(child);
    }
  }
  return null;
}

/**
 * Checks a resource database from outside (a control call, a file, the console API) and returns it
 * normalised; throws ResourceDatabaseError naming the first offending field and how to fix it.
 */
export function checkResourceDatabase(v: unknown): ResourceDatabase {
  if (!isRecord(v)) throw new ResourceDatabaseError('database', 'must be an object (version, resources, flags)');
  onlyKeys(v, 'database', ['version', 'resources', 'flags']);
  if (typeof v.version !== 'number' || !Number.isSafeInteger(v.version) || v.version < 0) {
    throw new ResourceDatabaseError('version', `must be a whole number ≥ 0, not ${JSON.stringify(v.version)}`);
  }
  const resources = list(v.resources, 'resources', MAX_RESOURCES).map((r, i) => checkResource(r, `resources.${i}`));
  const tags = new Map<string, number>();
  resources.forEach((r, i) => {
    if (tags.has(r.tag)) throw new ResourceDatabaseError(`resources.${i}.tag`, `tag "${r.tag}" is used twice (also resources.${tags.get(r.tag)})`);
    tags.set(r.tag, i);
  });
  resources.forEach((r, i) => r.dependsOn.forEach((d, j) => {
    if (!tags.has(d)) throw new ResourceDatabaseError(`resources.${i}.dependsOn.${j}`, `"${r.tag}" depends on "${d}", which is not in the database; create "${d}" first or remove the dependency`);
  }));
  const cycle = findCycle(resources);
  if (cycle) throw new ResourceDatabaseError(`resources.${tags.get(cycle[0]!)}.dependsOn`, `dependency cycle ${cycle.join(' → ')}; a hierarchy is a tree, remove one of these dependencies`);
  const flags = list(v.flags, 'flags', MAX_SERVERS).map((f, i) => checkFlags(f, `flags.${i}`));
  const seen = new Set<string>();
  flags.forEach((f, i) => {
    if (seen.has(f.server)) throw new ResourceDatabaseError(`flags.${i}.server`, `${f.server} has two flag entries; keep one`);
    seen.add(f.server);
  });
  return { version: v.version, resources, flags };
}
