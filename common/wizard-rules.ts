// The checks and defaults of the console's wizards (Add Server, Pre-Extend / Extend, Unextend, Delete,
// In Service / Out of Service, Create / Delete Dependency), pure so they are unit tested and shared by
// the renderer (errors beside each field, step by step) and the backend (which checks again before it
// touches a node). Create Resource Hierarchy's rules are common/hierarchy-rules.ts, the agent's own.
import type { AuthMethod, ClusterView, CommPath, ExtendForm, ReplicationPairForm, ServerDefinitionInput } from './console-api.js';
import type { DiskCandidate } from './hierarchy.js';
import type { MirrorStatus } from './mirror-status.js';
import { MAX_PRIORITY, MIN_PRIORITY, type ResourceDatabase, type ResourceDefinition } from './resource-database.js';
import { posixIsAbsolute, posixJoin, posixNormalize } from './posix-path.js';

/** field → message; empty when the step may go on. */
export type Errors = Record<string, string>;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const HOST_RE = /^[A-Za-z0-9.:_-]{1,253}$/;
const USER_RE = /^[a-z_][a-z0-9_.-]{0,31}\$?$/i;
const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

// ---- Add Server ----

export interface SshForm {
  host: string;
  port: string;
  user: string;
  auth: AuthMethod[];
  keyFile: string;
}

export interface AddServerForm extends SshForm {
  name: string;
  useJumpHost: boolean;
  jump: SshForm;
}

export const emptySshForm = (): SshForm => ({ host: '', port: '22', user: 'root', auth: ['agent', 'key'], keyFile: '' });
export const emptyAddServerForm = (): AddServerForm => ({ name: '', ...emptySshForm(), useJumpHost: false, jump: emptySshForm() });

function checkSsh(f: SshForm, prefix: string, errors: Errors): void {
  if (!f.host.trim()) errors[`${prefix}host`] = 'enter the host: a DNS name or an IP address';
  else if (!HOST_RE.test(f.host.trim())) errors[`${prefix}host`] = `"${f.host}" is not a host name or IP address (letters, digits, ".", ":", "-")`;
  const port = Number(f.port);
  if (!/^\d+$/.test(f.port.trim()) || port < 1 || port > 65535) errors[`${prefix}port`] = `the SSH port is a number from 1 to 65535, not "${f.port}"`;
  if (!USER_RE.test(f.user.trim())) errors[`${prefix}user`] = `"${f.user}" is not a user name (letters, digits, "_", "." or "-")`;
  if (f.auth.length === 0) errors[`${prefix}auth`] = 'choose at least one way to log in';
  if (f.auth.includes('key') && f.keyFile.trim() && !posixIsAbsolute(f.keyFile.trim())) {
    errors[`${prefix}keyFile`] = `${f.keyFile} is not an absolute path; give the private key file's full path (for example /home/you/.ssh/id_ed25519), or leave it empty for ~/.ssh/id_ed25519 and id_rsa`;
  }
  if (f.keyFile.trim() && !f.auth.includes('key')) errors[`${prefix}keyFile`] = 'a key file is set but "key file" is not one of the ways to log in; tick it or clear the file';
}

/** The Add Server wizard's first step (name and SSH settings). */
export function validateAddServer(f: AddServerForm, existingServers: readonly string[]): Errors {
  const errors: Errors = {};
  const name = f.name.trim();
  if (!name) errors.name = 'enter the server name: the node name its agent runs as (usually its host name)';
  else if (!NAME_RE.test(name)) errors.name = `"${name}" is not a server name: 1–63 letters, digits, ".", "_" or "-", starting with a letter or digit`;
  else if (existingServers.includes(name)) errors.name = `a server named "${name}" is already in the cluster; choose another name`;
  checkSsh(f, '', errors);
  if (f.useJumpHost) checkSsh(f.jump, 'jump.', errors);
  return errors;
}

const sshEndpointOf = (f: SshForm) => ({
  host: f.host.trim(), port: Number(f.port), user: f.user.trim(), auth: f.auth,
  ...(f.keyFile.trim() ? { keyFile: f.keyFile.trim() } : {}),
});

/** The form as the console API's addServer takes it (call only when validateAddServer found nothing). */
export function addServerDefinition(f: AddServerForm): ServerDefinitionInput {
  return { name: f.name.trim(), ssh: { ...sshEndpointOf(f), jumpHost: f.useJumpHost ? sshEndpointOf(f.jump) : null } };
}

/** The comm path step: for each other server, the two addresses replication uses. */
export interface CommPathForm {
  other: string;
  /** This (new) server's address on the path, and the other server's. */
  localAddress: string;
  remoteAddress: string;
}

export function validateCommPaths(paths: CommPathForm[]): Errors {
  const errors: Errors = {};
  paths.forEach((p, i) => {
    for (const side of ['localAddress', 'remoteAddress'] as const) {
      const v = p[side].trim();
      if (!v) errors[`paths.${i}.${side}`] = `enter the address ${side === 'localAddress' ? 'of the new server' : `of ${p.other}`} on this path`;
      else if (!HOST_RE.test(v) || (v.match(/:/g) ?? []).length === 1) errors[`paths.${i}.${side}`] = `"${v}" is not an IP address or host name (no port: the agents' replication port is added)`;
    }
  });
  return errors;
}

/** A server's address as the cluster view shows it ("root@host:22", "[fd00::1]:22", "local 127.0.0.1:7501") → its host. */
export function hostOfAddress(address: string): string {
  const a = address.replace(/^local /, '').replace(/^[^@\s]*@/, '');
  const m = /^\[(.+)\]:\d+$/.exec(a) ?? /^([^:]+):\d+$/.exec(a);
  return m ? m[1]! : a;
}

export const commPathOf = (server: string, p: CommPathForm): CommPath => ({ servers: [server, p.other], addresses: [p.localAddress.trim(), p.remoteAddress.trim()] });

// ---- the cluster as the wizards see it ----

/** Where each copy of a mirror is: its source (in service or not) and targets. */
export interface MirrorPlacement {
  tag: string;
  source: string | null;
  /** The source's status (targets, asyncAllowed, fileSystem, size). */
  sourceStatus: MirrorStatus | null;
  inService: boolean;
  targets: string[];
}

export function mirrorPlacement(cluster: ClusterView, tag: string): MirrorPlacement {
  let source: string | null = null;
  let sourceStatus: MirrorStatus | null = null;
  const targets: string[] = [];
  for (const s of cluster.servers) {
    for (const m of s.mirrors) {
      if (m.tag !== tag) continue;
      if (m.role === 'source') {
        source = s.name;
        sourceStatus = m;
      } else targets.push(s.name);
    }
  }
  // The source's own list of targets counts too: a target's status may arrive a moment later.
  for (const t of sourceStatus?.targets ?? []) if (!targets.includes(t.node) && t.node !== source) targets.push(t.node);
  return { tag, source, sourceStatus, inService: sourceStatus?.state === 'in service', targets };
}

/** Every mirror tag in the cluster. */
export function mirrorTags(cluster: ClusterView): string[] {
  return [...new Set(cluster.servers.flatMap((s) => s.mirrors.map((m) => m.tag)))].sort();
}

/** The resource with `tag` and every resource that depends on it, directly or not (the hierarchy above it). */
export function resourcesAbove(db: ResourceDatabase, tag: string): ResourceDefinition[] {
  const out: ResourceDefinition[] = [];
  const seen = new Set<string>();
  const visit = (t: string) => {
    if (seen.has(t)) return;
    seen.add(t);
    const r = db.resources.find((x) => x.tag === t);
    if (r) out.push(r);
    for (const parent of db.resources.filter((x) => x.dependsOn.includes(t))) visit(parent.tag);
  };
  visit(tag);
  return out;
}

/** The DataKeeper resource a tag belongs to: itself, or the one a file system (or other) resource sits on. */
export function dataKeeperTagOf(db: ResourceDatabase, cluster: ClusterView, tag: string): string | null {
  if (mirrorTags(cluster).includes(tag)) return tag;
  const seen = new Set<string>();
  const down = (t: string): string | null => {
    if (seen.has(t)) return null;
    seen.add(t);
    const r = db.resources.find((x) => x.tag === t);
    if (!r) return null;
    if (r.kind === 'datakeeper') return r.tag;
    for (const c of r.dependsOn) {
      const found = down(c);
      if (found) return found;
    }
    return null;
  };
  return down(tag);
}

// ---- Pre-Extend and Extend ----


export type { ExtendForm, ReplicationPairForm } from './console-api.js';

/** What Extend knows about the cluster when it checks a step. */
export interface ExtendFacts {
  cluster: ClusterView;
  db: ResourceDatabase;
  /** resource.disks on the target server (filled once the target is chosen). */
  targetDisks: DiskCandidate[];
  /** agent.info's bitmapDir on the target server. */
  targetBitmapDir: string;
}

/** The address pairs the cluster's comm paths give for two servers (target side first). */
export function pathChoices(commPaths: CommPath[], target: string, other: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const p of commPaths) {
    if (p.servers[0] === target && p.servers[1] === other) out.push([p.addresses[0], p.addresses[1]]);
    else if (p.servers[1] === target && p.servers[0] === other) out.push([p.addresses[1], p.addresses[0]]);
  }
  return out;
}

/** The priorities already used by a resource's equivalencies. */
function usedPriorities(db: ResourceDatabase, tag: string): Map<number, string> {
  const r = db.resources.find((x) => x.tag === tag);
  return new Map((r?.instances ?? []).map((i) => [i.priority, i.server]));
}

/** Whether this is the hierarchy's first extend (the Template Priority is asked only then). */
export function isFirstExtend(cluster: ClusterView, tag: string): boolean {
  return mirrorPlacement(cluster, tag).targets.length === 0;
}

/** The Pre-Extend Wizard's defaults for a template, tag and target (the "Accept Defaults" values). */
export function extendDefaults(facts: ExtendFacts, templateServer: string, tag: string, targetServer: string): ExtendForm {
  const placement = mirrorPlacement(facts.cluster, tag);
  const used = usedPriorities(facts.db, tag);
  const first = placement.targets.length === 0;
  const templatePriority = first ? (used.size ? Math.min(...used.keys()) : 1) : null;
  const taken = new Set(used.keys());
  if (templatePriority !== null) taken.add(templatePriority);
  // The manual: priorities need not be consecutive; the default is the next free one after the highest in use.
  let targetPriority = Math.max(0, ...taken) + 1;
  while (taken.has(targetPriority) && targetPriority <= MAX_PRIORITY) targetPriority++;
  if (targetPriority > MAX_PRIORITY) targetPriority = [...Array(MAX_PRIORITY).keys()].map((i) => i + 1).find((p) => !taken.has(p)) ?? MAX_PRIORITY;
  const fs = placement.sourceStatus?.fileSystem ?? null;
  const size = placement.sourceStatus?.size ?? 0;
  const disk = facts.targetDisks.find((d) => d.eligible && d.size >= size);
  const existing = [placement.source, ...placement.targets].filter((s): s is string => !!s && s !== targetServer);
  const pairs = existing.map((other): ReplicationPairForm => {
    const choices = pathChoices(facts.cluster.commPaths, targetServer, other);
    return { other, addresses: choices[0] ?? ['', ''], mode: 'sync' };
  });
  return {
    templateServer, tag, targetServer, switchback: 'intelligent', templatePriority, targetPriority,
    mountPoint: fs?.mountPoint ?? '', rootTag: fs?.tag ?? '', targetDisk: disk?.path ?? '', dataKeeperTag: tag,
    bitmapFile: placement.sourceStatus?.bitmap.file === null ? 'none' : posixJoin(facts.targetBitmapDir || '/var/lib/tandem/bitmaps', `${tag}.bitmap`),
    pairs,
  };
}

function checkPriority(v: number | null, label: string): string {
  if (v === null || !Number.isInteger(v) || v < MIN_PRIORITY || v > MAX_PRIORITY) return `the ${label} is a whole number from ${MIN_PRIORITY} to ${MAX_PRIORITY} (1 = highest)`;
  return '';
}

/** Pre-Extend: template server, tag, target server, switchback and priorities. */
export function validatePreExtend(f: ExtendForm, facts: Pick<ExtendFacts, 'cluster' | 'db'>): Errors {
  const errors: Errors = {};
  const servers = facts.cluster.servers.map((s) => s.name);
  if (!f.templateServer) errors.templateServer = 'choose the Template Server: where the hierarchy is in service';
  else if (!servers.includes(f.templateServer)) errors.templateServer = `${f.templateServer} is not a server of this cluster`;
  const placement = f.tag ? mirrorPlacement(facts.cluster, f.tag) : null;
  if (!f.tag) errors.tag = 'choose the Tag to Extend';
  else if (!placement?.source && placement?.targets.length === 0) errors.tag = `there is no DataKeeper resource "${f.tag}" in the cluster`;
  else if (f.templateServer && (placement?.source !== f.templateServer || !placement.inService)) {
    errors.tag = `"${f.tag}" is not in service on ${f.templateServer}${placement?.source ? ` (it is ${placement.inService ? 'in service' : 'out of service'} on ${placement.source})` : ''}; choose the server where it is in service as the Template Server`;
  }
  if (!f.targetServer) errors.targetServer = 'choose the Target Server to extend to';
  else if (!servers.includes(f.targetServer)) errors.targetServer = `${f.targetServer} is not a server of this cluster`;
  else if (f.targetServer === f.templateServer) errors.targetServer = 'the Target Server must differ from the Template Server';
  else if (placement?.targets.includes(f.targetServer)) errors.targetServer = `"${f.tag}" is already extended to ${f.targetServer}`;
  else {
    const t = facts.cluster.servers.find((s) => s.name === f.targetServer);
    if (t && t.connection.state !== 'connected') errors.targetServer = `${f.targetServer} is ${t.connection.state}; connect it (and deploy its agent) first`;
    else if (t && t.mirrors.some((m) => m.tag === f.tag)) errors.targetServer = `${f.targetServer} already holds a copy of "${f.tag}"`;
  }
  if (f.switchback !== 'intelligent') errors.switchback = 'Automatic Switchback is not supported for DataKeeper resources (the manual\'s caution); choose intelligent';
  const used = usedPriorities(facts.db, f.tag);
  if (f.templatePriority !== null) {
    const e = checkPriority(f.templatePriority, 'Template Priority');
    if (e) errors.templatePriority = e;
    else if (used.has(f.templatePriority) && used.get(f.templatePriority) !== f.templateServer) errors.templatePriority = `priority ${f.templatePriority} is already used by ${used.get(f.templatePriority)} for "${f.tag}"; choose an unused one`;
  }
  const e = checkPriority(f.targetPriority, 'Target Priority');
  if (e) errors.targetPriority = e;
  else if (f.templatePriority !== null && f.targetPriority === f.templatePriority) errors.targetPriority = `priority ${f.targetPriority} is the Template Priority; no two servers may share a priority`;
  else if (used.has(f.targetPriority)) {
    const holder = used.get(f.targetPriority)!;
    // On the first extend the template's priority may be changed, freeing its old number.
    if (!(f.templatePriority !== null && holder === f.templateServer)) errors.targetPriority = `priority ${f.targetPriority} is already used by ${holder} for "${f.tag}"; choose an unused one`;
  }
  return errors;
}

/** Extend: mount point, root tag, target disk, DataKeeper tag, bitmap file, replication path and type per pair. */
export function validateExtend(f: ExtendForm, facts: ExtendFacts): Errors {
  const errors: Errors = {};
  const placement = mirrorPlacement(facts.cluster, f.tag);
  const src = placement.sourceStatus;
  const fs = src?.fileSystem ?? null;
  if (fs) {
    if (!f.mountPoint) errors.mountPoint = 'enter the Mount Point on the target server';
    else if (posixNormalize(f.mountPoint) !== fs.mountPoint) errors.mountPoint = `Tandem mounts "${fs.tag}" at the same place on every server: ${fs.mountPoint}`;
    if (!f.rootTag) errors.rootTag = 'enter the Root Tag';
    else if (f.rootTag !== fs.tag) errors.rootTag = `the file system resource keeps its tag on every server: ${fs.tag}`;
  }
  const disk = facts.targetDisks.find((d) => d.path === f.targetDisk);
  if (!f.targetDisk) errors.targetDisk = `choose the Target Disk or Partition on ${f.targetServer}`;
  else if (!disk) errors.targetDisk = `${f.targetDisk} is not a disk or partition of ${f.targetServer}`;
  else if (!disk.eligible) errors.targetDisk = `${disk.path} cannot be used: ${disk.reasons.join('; ')}`;
  else if (src && disk.size < src.size) errors.targetDisk = `${disk.path} (${disk.size} bytes) is smaller than the source disk (${src.size} bytes); the target must be at least as large`;
  if (!f.dataKeeperTag) errors.dataKeeperTag = 'enter the DataKeeper Resource Tag';
  else if (!TAG_RE.test(f.dataKeeperTag)) errors.dataKeeperTag = `"${f.dataKeeperTag}" may hold only letters, digits, ".", "_" and "-"`;
  else if (f.dataKeeperTag !== f.tag) errors.dataKeeperTag = `a mirror keeps its tag on every server: ${f.tag}`;
  if (!f.bitmapFile) errors.bitmapFile = 'choose a Bitmap File, or none (every resync is then a full resync)';
  else if (f.bitmapFile !== 'none' && !posixIsAbsolute(f.bitmapFile)) errors.bitmapFile = `${f.bitmapFile} is not an absolute path; enter one, or none`;
  const existing = [placement.source, ...placement.targets].filter((s): s is string => !!s && s !== f.targetServer);
  for (const other of existing) {
    const i = f.pairs.findIndex((p) => p.other === other);
    if (i < 0) {
      errors[`pairs.${other}`] = `choose the Replication Path and Type between ${f.targetServer} and ${other}`;
      continue;
    }
    const p = f.pairs[i]!;
    const choices = pathChoices(facts.cluster.commPaths, f.targetServer, other);
    if (choices.length === 0) errors[`pairs.${i}.addresses`] = `there is no comm path between ${f.targetServer} and ${other}; create one (Add Server's comm paths, or Edit → Server → Create Comm Path) first`;
    else if (!choices.some((c) => c[0] === p.addresses[0] && c[1] === p.addresses[1])) errors[`pairs.${i}.addresses`] = `choose one of the comm paths between ${f.targetServer} and ${other}`;
    if (p.mode === 'async' && src?.asyncAllowed === false) errors[`pairs.${i}.mode`] = `"${f.tag}" was created without asynchronous replication; choose synchronous (or recreate it with Enable Asynchronous Replication = Yes)`;
    else if (p.mode !== 'sync' && p.mode !== 'async') errors[`pairs.${i}.mode`] = 'choose synchronous or asynchronous';
    else if (other !== placement.source) {
      // The agents keep one mode per target, used by whichever server is in service (after a
      // switchover too): the pairs of one target cannot differ.
      const first = f.pairs.find((x) => x.other === placement.source);
      if (first && first.mode !== p.mode) errors[`pairs.${i}.mode`] = `Tandem replicates to ${f.targetServer} in one mode from whichever server is in service; choose ${first.mode === 'sync' ? 'synchronous' : 'asynchronous'} here too, as for ${placement.source}`;
    }
  }
  return errors;
}

// ---- Unextend, Delete, In Service / Out of Service ----

export function validateUnextend(cluster: ClusterView, tag: string, server: string): Errors {
  const errors: Errors = {};
  const p = mirrorPlacement(cluster, tag);
  if (!server) errors.server = 'choose the Target Server to unextend';
  if (!tag) errors.tag = 'choose the DataKeeper Hierarchy to Unextend';
  else if (!p.source && p.targets.length === 0) errors.tag = `there is no DataKeeper resource "${tag}" in the cluster`;
  else if (server && server === p.source) errors.server = `${server} is where "${tag}" is ${p.inService ? 'in service' : 'the source'}; it cannot be unextended there. Switch over to another server first (In Service there), or delete the hierarchy`;
  else if (server && !p.targets.includes(server)) errors.server = `"${tag}" is not extended to ${server}; its targets: ${p.targets.join(', ') || 'none'}`;
  return errors;
}

export function validateDelete(cluster: ClusterView, tag: string, db?: ResourceDatabase): Errors {
  const p = mirrorPlacement(cluster, tag);
  if (!tag) return { tag: 'choose the Hierarchy to Delete' };
  if (!p.source) return { tag: p.targets.length ? `"${tag}" has no source in the cluster (only targets on ${p.targets.join(', ')}); bring it in service first` : `there is no DataKeeper resource "${tag}" in the cluster` };
  // The resources above go with it, but another mirror is never deleted by the way.
  const other = db ? resourcesAbove(db, tag).find((r) => r.kind === 'datakeeper' && r.tag !== tag) : undefined;
  if (other) return { tag: `"${other.tag}" (a DataKeeper hierarchy of its own) depends on "${tag}"; delete that dependency first (Edit → Resource → Delete Dependency)` };
  return {};
}

/** Why In Service on `server` would be refused, in the manual's words, or '' (then it is allowed). */
export function inServiceRefusal(cluster: ClusterView, tag: string, server: string): string {
  const p = mirrorPlacement(cluster, tag);
  if (!p.source && p.targets.length === 0) return `there is no DataKeeper resource "${tag}" in the cluster`;
  if (server === p.source) return p.inService ? `"${tag}" is already in service on ${server}` : '';
  if (!p.targets.includes(server)) return `"${tag}" is not extended to ${server}; extend it there first`;
  const link = p.sourceStatus?.targets.find((t) => t.node === server);
  if (link && (link.status === 'Resyncing' || link.state === 'resyncing')) {
    return `${server} is being resynchronized from ${p.source} (${link.percentSynced}% synced): manual switchover is prevented for DataKeeper resources during resynchronization, to avoid data corruption. Wait until its state is Target`;
  }
  const copy = cluster.servers.find((s) => s.name === server)?.mirrors.find((m) => m.tag === tag);
  if (copy && copy.consistent === false) return `${server}'s copy of "${tag}" is incomplete (it was being resynchronized); bring the hierarchy in service on ${p.source ?? 'its source'} instead`;
  return '';
}

export function outOfServiceRefusal(cluster: ClusterView, tag: string, server: string): string {
  const p = mirrorPlacement(cluster, tag);
  if (p.source !== server) return `"${tag}" is not in service on ${server}${p.source ? `; it is on ${p.source}` : ''}`;
  if (!p.inService) return `"${tag}" is already out of service on ${server}`;
  return '';
}

// ---- Create / Delete Dependency ----

export function validateCreateDependency(db: ResourceDatabase, parent: string, child: string): Errors {
  const errors: Errors = {};
  const P = db.resources.find((r) => r.tag === parent);
  const C = db.resources.find((r) => r.tag === child);
  if (!parent) errors.parent = 'choose the Parent Resource Tag';
  else if (!P) errors.parent = `there is no resource "${parent}"`;
  if (!child) errors.child = 'choose the Child Resource Tag';
  else if (!C) errors.child = `there is no resource "${child}"`;
  else if (child === parent) errors.child = 'a resource cannot depend on itself';
  if (P && C && child !== parent) {
    if (P.dependsOn.includes(child)) errors.child = `"${parent}" already depends on "${child}"`;
    else if (resourcesAbove(db, parent).some((r) => r.tag === child)) errors.child = `"${child}" depends on "${parent}" already; the dependency would make a loop`;
    else {
      const ps = P.instances.map((i) => i.server).sort().join(', ');
      const cs = C.instances.map((i) => i.server).sort().join(', ');
      if (ps !== cs) errors.child = `"${child}" is defined on ${cs || 'no server'} but "${parent}" on ${ps || 'no server'}; a dependency joins resources on the same servers (extend them first)`;
    }
  }
  return errors;
}

export function validateDeleteDependency(db: ResourceDatabase, parent: string, child: string): Errors {
  const P = db.resources.find((r) => r.tag === parent);
  if (!parent) return { parent: 'choose the Parent Resource Tag' };
  if (!P) return { parent: `there is no resource "${parent}"` };
  if (!child) return { child: 'choose the Child Resource Tag' };
  if (!P.dependsOn.includes(child)) return { child: `"${parent}" does not depend on "${child}"; its children: ${P.dependsOn.join(', ') || 'none'}` };
  const C = db.resources.find((r) => r.tag === child);
  // The file system sits on its mirror by construction: that link goes only with the hierarchy.
  if (P.kind === 'filesystem' && C?.kind === 'datakeeper') return { child: `"${parent}" is the file system on "${child}"; delete the hierarchy instead` };
  return {};
}

// ---- Open Local Lab ----

export function validateLabNodes(v: string): Errors {
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < 2 || n > 8) return { nodes: `the lab has 2 to 8 nodes, not "${v}"` };
  return {};
}
