// What the hierarchy wizards do when the user clicks Create, Extend, Unextend, Delete, In Service, Out
// of Service or Create/Delete Dependency: the agent calls on the right nodes in the right order (each
// recorded in the Output Panel with its CLI equivalent by agentCall), an undo when a later step fails,
// and the resource database (equivalencies with priorities, dependencies) updated on every node.
// Every request is checked again here with the wizards' own rules before anything is touched.
import type { ClusterView } from '../../common/console-api.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import type { DiskCandidate, HierarchyRequest } from '../../common/hierarchy.js';
import type { ResourceDatabase, ResourceDefinition } from '../../common/resource-database.js';
import {
  dataKeeperTagOf, inServiceRefusal, mirrorPlacement, mirrorTags, outOfServiceRefusal, resourcesAbove, validateCreateDependency,
  validateDelete, validateDeleteDependency, validateExtend, validatePreExtend, validateUnextend, type Errors, type ExtendForm,
} from '../../common/wizard-rules.js';

/** Reads and writes the resource database held by every node (the highest version wins). */
export interface ResourceDbAccess {
  read(): Promise<ResourceDatabase>;
  /** Saves `db` (whose version is the one read) as version + 1 on every reachable node. */
  write(db: ResourceDatabase): Promise<unknown>;
}

export interface HierarchyActionDeps {
  cluster(): Promise<ClusterView>;
  /** One agent call, recorded in the Output Panel with its CLI equivalent. */
  call(server: string, method: string, params: Record<string, unknown>): Promise<unknown>;
  /** An Output Panel entry for the wizard's action as a whole. */
  record(server: string, action: string, command: string, ok: boolean, message: string): void;
  db: ResourceDbAccess;
}

/** A refused request: one message per field, worded for the wizard to show beside it. */
export class FieldErrors extends Error {
  constructor(readonly errors: Errors, what: string) {
    super(`${what}: ${Object.entries(errors).map(([f, m]) => `${f}: ${m}`).join('; ')}`);
  }
}

const hostPort = (host: string, port: string) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
const clone = (db: ResourceDatabase): ResourceDatabase => JSON.parse(JSON.stringify(db)) as ResourceDatabase;

export class HierarchyActions {
  constructor(private readonly d: HierarchyActionDeps) {}

  /** The cluster with every connected server's mirrors asked for now (the pushed status may lag a change just made). */
  private async freshCluster(): Promise<ClusterView> {
    const c = await this.d.cluster();
    const servers = await Promise.all(c.servers.map(async (s) => {
      if (s.connection.state !== 'connected') return s;
      const mirrors = (await this.d.call(s.name, 'mirror.status', {}).catch(() => s.mirrors)) as MirrorStatus[];
      return { ...s, mirrors };
    }));
    return { ...c, servers };
  }

  /** Saves the database; a failure after the nodes changed is reported, never hidden, and loses nothing done. */
  private async saveDb(db: ResourceDatabase, done: string): Promise<string> {
    try {
      await this.d.db.write(db);
      return '';
    } catch (err) {
      return ` — but the resource database could not be saved (${(err as Error).message}); ${done} on the nodes, so run the action's last step again or edit the hierarchy's properties`;
    }
  }

  private async step<T>(server: string, action: string, command: string, work: () => Promise<T>, ok: (r: T) => string): Promise<T> {
    try {
      const r = await work();
      this.d.record(server, action, command, true, ok(r));
      return r;
    } catch (err) {
      this.d.record(server, action, command, false, (err as Error).message);
      throw err;
    }
  }

  async createHierarchy(req: HierarchyRequest): Promise<{ tag: string; export: string; device: string | null; mountPoint: string | null; warning: string }> {
    const cluster = await this.freshCluster();
    const db = await this.d.db.read();
    const errors: Errors = {};
    const inUse = new Set([...mirrorTags(cluster), ...db.resources.map((r) => r.tag)]);
    if (inUse.has(req.dataKeeperTag)) errors.dataKeeperTag = `DataKeeper Resource Tag "${req.dataKeeperTag}" is already used in this cluster; choose a unique tag`;
    if (req.type !== 'device' && req.fileSystemTag && inUse.has(req.fileSystemTag)) errors.fileSystemTag = `File System Resource Tag "${req.fileSystemTag}" is already used in this cluster; choose a unique tag`;
    const server = cluster.servers.find((s) => s.name === req.server);
    if (!server) errors.server = `${req.server} is not a server of this cluster`;
    else if (server.connection.state !== 'connected') errors.server = `${req.server} is ${server.connection.state}; connect it first`;
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Create Resource Hierarchy');
    const command = `(Create Resource Hierarchy on ${req.server}: ${req.type} ${req.dataKeeperTag})`;
    return this.step(req.server, 'Create Resource Hierarchy', command, async () => {
      const r = (await this.d.call(req.server, 'resource.create', { request: req })) as { tag: string; export: string; device: string | null; mountPoint: string | null };
      const next = clone(db);
      next.resources.push({ tag: r.tag, kind: 'datakeeper', dependsOn: [], instances: [{ server: req.server, priority: 1 }], switchback: 'intelligent' });
      if (req.type !== 'device' && req.fileSystemTag) {
        next.resources.push({
          tag: req.fileSystemTag, kind: 'filesystem', mountPoint: r.mountPoint ?? req.mountPoint, fstype: req.fileSystemType,
          dependsOn: [r.tag], instances: [{ server: req.server, priority: 1 }], switchback: 'intelligent',
        });
      }
      const warning = await this.saveDb(next, `"${r.tag}" exists`);
      return { ...r, warning };
    }, (r) => `created ${r.tag} on ${req.server}${r.mountPoint ? `, mounted at ${r.mountPoint}` : ''}${r.warning}`);
  }

  async extendHierarchy(f: ExtendForm): Promise<{ tag: string; target: string; mode: string; warning: string }> {
    const cluster = await this.freshCluster();
    const db = await this.d.db.read();
    const pre = validatePreExtend(f, { cluster, db });
    if (Object.keys(pre).length) throw new FieldErrors(pre, 'Extend Resource Hierarchy');
    const placement = mirrorPlacement(cluster, f.tag);
    const source = placement.source!;
    const disks = (await this.d.call(f.targetServer, 'resource.disks', { minSize: Math.max(1, placement.sourceStatus?.size ?? 1) })) as { disks: DiskCandidate[] };
    const errors = validateExtend(f, { cluster, db, targetDisks: disks.disks, targetBitmapDir: '' });
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Extend Resource Hierarchy');
    const pair = f.pairs.find((p) => p.other === source)!;
    const info = (await this.d.call(f.targetServer, 'agent.info', {})) as { replication: string };
    const port = info.replication.slice(info.replication.lastIndexOf(':') + 1);
    const address = hostPort(pair.addresses[0], port);
    const command = `tandem accept ${f.tag} --disk ${f.targetDisk} (on ${f.targetServer}); tandem extend ${f.tag} --target ${f.targetServer} --address ${address} --mode ${pair.mode} (on ${source})`;
    return this.step(source, `Extend Resource Hierarchy to ${f.targetServer}`, command, async () => {
      await this.d.call(f.targetServer, 'mirror.accept', { tag: f.tag, disk: f.targetDisk, bitmap: f.bitmapFile });
      try {
        await this.d.call(source, 'mirror.extend', { tag: f.tag, node: f.targetServer, address, localAddress: pair.addresses[1], mode: pair.mode });
      } catch (err) {
        // Nothing half-made stays: the target gives its copy back.
        await this.d.call(f.targetServer, 'mirror.release', { tag: f.tag }).catch(() => undefined);
        throw err;
      }
      const next = clone(db);
      let chain = resourcesAbove(next, f.tag);
      if (chain.length === 0) {
        // A mirror made outside the wizards (tandem create): it enters the database now.
        const r: ResourceDefinition = { tag: f.tag, kind: 'datakeeper', dependsOn: [], instances: [{ server: source, priority: 1 }], switchback: 'intelligent' };
        next.resources.push(r);
        chain = [r];
      }
      for (const r of chain) {
        if (f.templatePriority !== null) {
          const mine = r.instances.find((i) => i.server === f.templateServer);
          if (mine) mine.priority = f.templatePriority;
          else r.instances.push({ server: f.templateServer, priority: f.templatePriority });
        }
        r.instances = r.instances.filter((i) => i.server !== f.targetServer);
        r.instances.push({ server: f.targetServer, priority: f.targetPriority });
      }
      const warning = await this.saveDb(next, `${f.targetServer} is a target of "${f.tag}"`);
      return { tag: f.tag, target: f.targetServer, mode: pair.mode, warning };
    }, (r) => `"${r.tag}" extended to ${r.target} (${r.mode === 'sync' ? 'synchronous' : 'asynchronous'}); the resynchronization has started${r.warning}`);
  }

  async unextendHierarchy(tag: string, server: string): Promise<{ tag: string; server: string; warning: string }> {
    const cluster = await this.freshCluster();
    const dk = dataKeeperTagOf(await this.d.db.read(), cluster, tag) ?? tag;
    const errors = validateUnextend(cluster, dk, server);
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Unextend Resource Hierarchy');
    const source = mirrorPlacement(cluster, dk).source!;
    return this.step(server, 'Unextend Resource Hierarchy', `tandem unextend ${dk} --target ${server} (on ${source}); tandem release ${dk} (on ${server})`, async () => {
      await this.d.call(source, 'mirror.unextend', { tag: dk, node: server });
      await this.d.call(server, 'mirror.release', { tag: dk });
      const db = clone(await this.d.db.read());
      for (const r of resourcesAbove(db, dk)) r.instances = r.instances.filter((i) => i.server !== server);
      const warning = await this.saveDb(db, `${server} no longer holds "${dk}"`);
      return { tag: dk, server, warning };
    }, (r) => `"${r.tag}" unextended from ${r.server}: its data is no longer replicated there${r.warning}`);
  }

  async deleteHierarchy(tag: string): Promise<{ tag: string; removed: string[]; warning: string }> {
    const cluster = await this.freshCluster();
    const db0 = await this.d.db.read();
    const dk = dataKeeperTagOf(db0, cluster, tag) ?? tag;
    const errors = validateDelete(cluster, dk, db0);
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Delete Resource Hierarchy');
    const p = mirrorPlacement(cluster, dk);
    const source = p.source!;
    return this.step(source, 'Delete Resource Hierarchy', `tandem unextend/release on each target, then tandem delete ${dk} (on ${source})`, async () => {
      for (const t of p.targets) {
        if (p.sourceStatus?.targets.some((x) => x.node === t)) await this.d.call(source, 'mirror.unextend', { tag: dk, node: t });
        await this.d.call(t, 'mirror.release', { tag: dk });
      }
      await this.d.call(source, 'mirror.delete', { tag: dk });
      const db = clone(await this.d.db.read());
      const gone = new Set(resourcesAbove(db, dk).map((r) => r.tag));
      db.resources = db.resources.filter((r) => !gone.has(r.tag));
      for (const r of db.resources) r.dependsOn = r.dependsOn.filter((c) => !gone.has(c));
      const warning = await this.saveDb(db, `"${dk}" is deleted`);
      return { tag: dk, removed: [...gone], warning };
    }, (r) => `deleted ${r.removed.join(', ') || r.tag} from every server${r.warning}`);
  }

  async inService(tag: string, server: string): Promise<{ message: string }> {
    const cluster = await this.freshCluster();
    const dk = dataKeeperTagOf(await this.d.db.read(), cluster, tag) ?? tag;
    const why = inServiceRefusal(cluster, dk, server);
    if (why) throw new FieldErrors({ server: why }, 'In Service');
    const was = mirrorPlacement(cluster, dk).source;
    const action = was && was !== server ? `In Service (switchover from ${was})` : 'In Service';
    return this.step(server, action, `tandem inservice ${dk}`, async () => (await this.d.call(server, 'mirror.inservice', { tag: dk })) as { message: string }, (r) => r.message);
  }

  async outOfService(tag: string, server: string): Promise<{ message: string }> {
    const cluster = await this.freshCluster();
    const dk = dataKeeperTagOf(await this.d.db.read(), cluster, tag) ?? tag;
    const why = outOfServiceRefusal(cluster, dk, server);
    if (why) throw new FieldErrors({ server: why }, 'Out of Service');
    return this.step(server, 'Out of Service', `tandem outofservice ${dk}`, async () => (await this.d.call(server, 'mirror.outofservice', { tag: dk })) as { message: string }, (r) => r.message);
  }

  async createDependency(parent: string, child: string): Promise<{ parent: string; child: string }> {
    const db = clone(await this.d.db.read());
    const errors = validateCreateDependency(db, parent, child);
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Create Dependency');
    db.resources.find((r) => r.tag === parent)!.dependsOn.push(child);
    return this.step('cluster', 'Create Dependency', `(resource database) ${parent} depends on ${child}`, async () => {
      await this.d.db.write(db);
      return { parent, child };
    }, () => `"${parent}" now depends on "${child}" on every server`);
  }

  async deleteDependency(parent: string, child: string): Promise<{ parent: string; child: string }> {
    const db = clone(await this.d.db.read());
    const errors = validateDeleteDependency(db, parent, child);
    if (Object.keys(errors).length) throw new FieldErrors(errors, 'Delete Dependency');
    const p = db.resources.find((r) => r.tag === parent)!;
    p.dependsOn = p.dependsOn.filter((c) => c !== child);
    return this.step('cluster', 'Delete Dependency', `(resource database) ${parent} no longer depends on ${child}`, async () => {
      await this.d.db.write(db);
      return { parent, child };
    }, () => `"${parent}" no longer depends on "${child}"`);
  }
}
