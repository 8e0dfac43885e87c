// The control socket's methods. Every parameter is checked before anything changes: a bad call gets an
// error naming the field, and the state file stays as it was.
import fs from 'node:fs';
import path from 'node:path';
import { MAX_TARGETS } from '../intent-log/bitmap.js';
import { splitAddress, type TargetLink } from '../mirror/target-link.js';
import { freshGenerations } from '../mirror/generations.js';
import { RpcError, type Handler } from '../control/json-rpc.js';
import type { ReplicationMode } from '../../common/mirror-status.js';
import { DEFAULT_ASYNC_LIMIT, DEFAULT_CHUNK_SIZE, freeSlot, type SourceRecord, type TargetRecord } from './mirror-record.js';
import { bringUpResource, gatherHierarchyContext, HierarchyValidationError, planResource } from '../resources/create-resource.js';
import { listDisks } from '../resources/eligible-disks.js';
import type { HierarchyRequest } from '../../common/hierarchy.js';
import type { DaemonActions } from './actions.js';
import type { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';
import { RewindError } from '../rewind/target-rewind.js';
import { JournalError } from '../rewind/journal.js';
import { MAX_BOOKMARK_NAME } from '../replication/wire.js';
import { ResourceDatabaseError } from '../../common/resource-database.js';
import { StaleResourceDatabase } from './resource-db-store.js';
import { CommPathError, CommPaths } from '../cluster/commpaths.js';

const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const INVALID = -32602;

/** Typed access to one call's parameters; unknown names are refused up front. */
class Params {
  constructor(private readonly p: Record<string, unknown>, method: string, allowed: readonly string[]) {
    for (const k of Object.keys(p)) {
      if (!allowed.includes(k)) throw new RpcError(`${method}: unknown parameter "${k}"; it takes ${allowed.map((a) => `"${a}"`).join(', ') || 'none'}`, INVALID);
    }
  }
  has(name: string): boolean {
    return this.p[name] !== undefined && this.p[name] !== null;
  }
  str(name: string): string {
    const v = this.p[name];
    if (v === undefined || v === null || v === '') throw new RpcError(`missing parameter "${name}"`, INVALID);
    if (typeof v !== 'string') throw new RpcError(`parameter "${name}" must be a string`, INVALID);
    return v;
  }
  optStr(name: string): string | undefined {
    const v = this.p[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new RpcError(`parameter "${name}" must be a string`, INVALID);
    return v;
  }
  tag(name = 'tag'): string {
    const tag = this.str(name);
    if (!TAG_PATTERN.test(tag)) throw new RpcError(`parameter "${name}": "${tag}" is not a valid tag: use letters, digits, dot, dash, underscore (up to 64, starting with a letter or digit)`, INVALID);
    return tag;
  }
  node(name: string): string {
    const n = this.str(name);
    if (!NODE_PATTERN.test(n)) throw new RpcError(`parameter "${name}": "${n}" is not a valid node name`, INVALID);
    return n;
  }
  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.p[name];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new RpcError(`parameter "${name}" must be an integer from ${min} to ${max}`, INVALID);
    return v;
  }
  bool(name: string): boolean {
    const v = this.p[name];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') throw new RpcError(`parameter "${name}" must be true or false`, INVALID);
    return v;
  }
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.optStr(name);
    if (v === undefined || v === '') return fallback;
    if (!(values as readonly string[]).includes(v)) throw new RpcError(`parameter "${name}" must be one of ${values.join(', ')}, not "${v}"`, INVALID);
    return v as T;
  }
  nodes(name: string): string[] {
    const v = this.p[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && NODE_PATTERN.test(x))) throw new RpcError(`parameter "${name}" must be a list of node names`, INVALID);
    return v as string[];
  }
  /** A time: milliseconds since the epoch (microseconds as the fraction). */
  time(name: string): number | undefined {
    const v = this.p[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RpcError(`parameter "${name}" must be a time in milliseconds since 1970 (a number)`, INVALID);
    return v;
  }
  path(name: string): string {
    const v = this.str(name);
    if (!path.isAbsolute(v)) throw new RpcError(`parameter "${name}": "${v}" must be an absolute path`, INVALID);
    return v;
  }
}

/** A bookmark's name: what the administrator reads in the list, so printable and not too long. */
function bookmarkName(name: string): string {
  const control = [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (control || Buffer.byteLength(name, 'utf8') > MAX_BOOKMARK_NAME || name.trim() === '') {
    throw new RpcError(`bookmark name ${JSON.stringify(name)} is not valid: use up to ${MAX_BOOKMARK_NAME} bytes of printable text`, INVALID);
  }
  return name;
}

/** Rewind errors are the administrator's to fix: reported as such, with their message. */
async function rewindErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof RewindError || err instanceof JournalError) throw new RpcError(err.message);
    throw err;
  }
}

type NewRecordFields = Pick<SourceRecord, 'tag' | 'disk' | 'bitmap' | 'chunkSize' | 'asyncLimit' | 'resyncRate' | 'compression'>;

/** A new mirror's source copy: the last owner, in service, data that is its own generation. */
function newSourceRecord(fields: NewRecordFields): SourceRecord {
  return { ...fields, role: 'source', size: 0, inService: true, targets: [], generations: freshGenerations(true), lastOwner: true, dataCorrupt: false, logdir: '', logmax: 0 };
}

/** A new target volume: no data yet (not consistent), no source heard from. */
function newTargetRecord(fields: NewRecordFields): TargetRecord {
  return { ...fields, role: 'target', size: 0, members: [], source: null, slots: {}, generations: freshGenerations(false), consistent: false, logdir: '', logmax: 0 };
}

export function controlHandlers(d: DaemonActions): Record<string, Handler> {
  const cluster = () => {
    if (!d.cluster) throw new RpcError('the cluster manager is not running on this node');
    return d.cluster;
  };
  const notHere = (tag: string) => new RpcError(`no mirror "${tag}" on this node (${d.node}); see: tandem status`);

  /** The source copy of `tag`, in service (or at least open) here. */
  const source = (tag: string, needOpen = true): SourceCopy => {
    const s = d.sourceCopy(tag);
    if (!s) {
      if (d.targetCopy(tag)) throw new RpcError(`this node (${d.node}) is a target of "${tag}", not its source; run this on the source node`);
      throw notHere(tag);
    }
    if (needOpen && !s.mirror) throw new RpcError(`"${tag}" is out of service on this node; bring it in service first (tandem inservice ${tag})`);
    return s;
  };

  /** The target copy of `tag` here; on the source, `onSource` says why this runs on a target. */
  const target = (tag: string, onSource = 'this runs on a target'): TargetCopy => {
    const t = d.targetCopy(tag);
    if (t) return t;
    const s = d.sourceCopy(tag);
    if (s) {
      const targets = s.targets().map((x) => x.node).join(', ') || 'none yet';
      throw new RpcError(`this node (${d.node}) is the source of "${tag}"; ${onSource} (targets: ${targets}): run this there`);
    }
    throw notHere(tag);
  };

  /** A time given directly or as a bookmark's name. */
  const rewindTime = (t: TargetCopy, time: number | undefined, bookmark: string | undefined): number => {
    if ((time === undefined) === (bookmark === undefined)) throw new RpcError('give the rewind point either as "time" or as "bookmark"', INVALID);
    if (time !== undefined) return time;
    const journal = t.rewind.journal;
    if (!journal) throw new RpcError(t.rewind.error || `this target keeps no rewind log for "${t.record.tag}"; set one with: mirror_settings ${t.record.tag} logdir DIR`);
    const b = journal.findBookmark(bookmark as string);
    if (!b) {
      const names = journal.bookmarks().map((x) => `"${x.name}"`);
      throw new RpcError(`no bookmark "${bookmark}" in the rewind log of "${t.record.tag}"; bookmarks: ${names.join(', ') || 'none'} (tandem bookmarks ${t.record.tag})`);
    }
    return b.time;
  };

  const selectLinks = (s: SourceCopy, nodes: string[]): TargetLink[] => {
    const links = s.mirror!.links;
    if (nodes.length === 0) return links.slice();
    return nodes.map((n) => {
      const l = links.find((x) => x.config.node === n);
      if (!l) throw new RpcError(`"${n}" is not a target of mirror "${s.record.tag}"; targets: ${links.map((x) => x.config.node).join(', ') || 'none'}`);
      return l;
    });
  };

  const protectedDevices = (): Set<string> => {
    const set = new Set<string>();
    const real = (x: string) => (fs.existsSync(x) ? fs.realpathSync(x) : x);
    for (const e of d.copies()) {
      set.add(real(e.record.disk));
      if (e.record.role === 'source' && (e as SourceCopy).resource) set.add((e as SourceCopy).resource!.device);
    }
    return set;
  };

  // The other targets learn the mirror's members only in the source's HELLO, and a target needs them
  // to replicate to everyone after a switchover or failover: a change of targets reconnects them
  // (what a pause and resume does), which resyncs only what the bitmap says changed meanwhile.
  const refreshMembers = (links: TargetLink[]) => {
    for (const l of links) if (!l.config.paused) l.restartResync();
  };

  const checkNewDisk = (tag: string, disk: string) => {
    if (d.sourceCopy(tag) || d.targetCopy(tag)) throw new RpcError(`mirror "${tag}" already exists on this node`);
    const used = d.diskInUse(disk);
    if (used) throw new RpcError(`${disk} is already protected by ${used}`);
  };

  const bitmapPath = (tag: string, given: string | undefined): string | null => {
    if (given === 'none') return null;
    const file = given || path.join(d.paths.bitmapDir, `${tag}.bitmap`);
    if (!path.isAbsolute(file)) throw new RpcError(`parameter "bitmap": "${file}" must be an absolute path or "none"`, INVALID);
    if (fs.existsSync(file)) throw new RpcError(`bitmap file ${file} already exists; remove it or name another with --bitmap`);
    return file;
  };

  return {
    'agent.info': (p) => {
      new Params(p, 'agent.info', []);
      return d.info();
    },

    // The console's event stream: the status of every mirror, pushed on this connection whenever it
    // changes (and at least every 15 s, so a silent link is noticed), until the caller disconnects.
    'agent.watch': (p, context) => {
      const a = new Params(p, 'agent.watch', ['intervalMs']);
      const interval = a.int('intervalMs', 1000, 100, 60_000);
      let last = '';
      let lastSent = 0;
      const push = () => {
        const body = JSON.stringify(d.status());
        // A new resource database version is news too (another console saved).
        const key = `${d.resourceDb.database.version} ${body}`;
        if (key === last && Date.now() - lastSent < 15_000) return;
        last = key;
        lastSent = Date.now();
        context.notify('agent.status', { info: d.info(), mirrors: JSON.parse(body) as unknown });
      };
      const timer = setInterval(push, interval);
      timer.unref();
      context.onClose(() => clearInterval(timer));
      setImmediate(push);
      return { watching: true, intervalMs: interval };
    },

    'mirror.status': (p) => {
      const a = new Params(p, 'mirror.status', ['tag']);
      return d.status(a.has('tag') ? a.tag() : undefined);
    },

    'mirror.create': async (p) => {
      const a = new Params(p, 'mirror.create', ['tag', 'disk', 'bitmap', 'chunkSize', 'asyncLimit', 'resyncRate', 'compression']);
      const tag = a.tag();
      const disk = a.path('disk');
      const chunkSize = a.int('chunkSize', DEFAULT_CHUNK_SIZE, 4096, 64 * 1024 * 1024);
      if (chunkSize & (chunkSize - 1)) throw new RpcError('parameter "chunkSize" must be a power of two', INVALID);
      const asyncLimit = a.int('asyncLimit', DEFAULT_ASYNC_LIMIT, 1, 65536);
      const resyncRate = a.int('resyncRate', 0, 0, 2 ** 40);
      const compression = a.int('compression', 0, 0, 9);
      checkNewDisk(tag, disk);
      const bitmap = bitmapPath(tag, a.optStr('bitmap'));
      const record = newSourceRecord({ tag, disk, bitmap, chunkSize, asyncLimit, resyncRate, compression });
      await d.createSource(record);
      return { tag, export: d.paths.exportSocket(tag), size: record.size };
    },

    'mirror.accept': async (p) => {
      const a = new Params(p, 'mirror.accept', ['tag', 'disk', 'bitmap']);
      const tag = a.tag();
      const disk = a.path('disk');
      checkNewDisk(tag, disk);
      const bitmap = bitmapPath(tag, a.optStr('bitmap'));
      const record = newTargetRecord({ tag, disk, bitmap, chunkSize: DEFAULT_CHUNK_SIZE, asyncLimit: DEFAULT_ASYNC_LIMIT, resyncRate: 0, compression: 0 });
      d.acceptTarget(record);
      return { tag, disk, replication: d.info().replication };
    },

    'mirror.extend': async (p) => {
      const a = new Params(p, 'mirror.extend', ['tag', 'node', 'address', 'mode', 'localAddress', 'initialSync']);
      const s = source(a.tag());
      const node = a.node('node');
      const address = a.str('address');
      try {
        splitAddress(address);
      } catch (err) {
        throw new RpcError(`parameter "address": ${(err as Error).message}`, INVALID);
      }
      const mode = a.oneOf<ReplicationMode>('mode', ['sync', 'async'], 'sync');
      if (mode === 'async' && s.record.asyncAllowed === false) {
        throw new RpcError(`hierarchy "${s.record.tag}" was created without asynchronous replication; extend it with --mode sync`);
      }
      const initialSync = a.oneOf('initialSync', ['full', 'none', 'checksum'], 'full');
      const localAddress = a.optStr('localAddress') || undefined;
      const mirror = s.mirror!;
      if (node === d.node) throw new RpcError('a mirror cannot target its own source node');
      if (mirror.links.some((l) => l.config.node === node)) throw new RpcError(`${node} is already a target of "${s.record.tag}"`);
      if (mirror.links.length >= MAX_TARGETS) throw new RpcError(`mirror "${s.record.tag}" already has ${MAX_TARGETS} targets, the maximum`);
      const slots = s.slotsInUse();
      const slot = freeSlot(slots, MAX_TARGETS);
      // A new target starts with every chunk dirty (full resync) unless told the data is new.
      if (initialSync === 'none') await mirror.log.clearAll(slot);
      else await mirror.log.setAll(slot);
      mirror.addTarget({ node, address, localAddress, mode, slot, paused: false }, initialSync === 'checksum');
      refreshMembers(mirror.links.filter((l) => l.config.node !== node));
      s.extended(node);
      return { tag: s.record.tag, node, slot };
    },

    'mirror.unextend': (p) => {
      const a = new Params(p, 'mirror.unextend', ['tag', 'node']);
      const s = source(a.tag());
      const node = a.node('node');
      const link = s.mirror!.removeTarget(node);
      if (!link) throw new RpcError(`"${node}" is not a target of "${s.record.tag}"`);
      refreshMembers(s.mirror!.links);
      s.unextended(node);
      return { tag: s.record.tag, node };
    },

    'mirror.release': async (p) => {
      const a = new Params(p, 'mirror.release', ['tag']);
      const tag = a.tag();
      const t = d.targetCopy(tag);
      if (!t) throw new RpcError(`this node (${d.node}) is not a target of "${tag}"`);
      await d.releaseTarget(t);
      return { tag };
    },

    'mirror.delete': async (p) => {
      const a = new Params(p, 'mirror.delete', ['tag']);
      const tag = a.tag();
      await d.deleteSource(source(tag, false));
      return { tag };
    },

    // The manual's mirror_settings: stored now, used from the next (re)connection of each target, i.e.
    // after a pause and resume, as the manual says. It may be run on targets too (they use the settings
    // when they become source).
    'mirror.settings': async (p) => {
      const a = new Params(p, 'mirror.settings', ['tag', 'setting', 'value']);
      const tag = a.tag();
      if (!a.has('setting')) throw new RpcError('missing parameter "setting"', INVALID);
      const setting = a.oneOf('setting', ['logdir', 'logmax', 'compress', 'resyncrate'], 'compress');
      const value = a.optStr('value');
      if (value === undefined) throw new RpcError('missing parameter "value"', INVALID);
      const entry = d.sourceCopy(tag) ?? d.targetCopy(tag);
      if (!entry) throw notHere(tag);
      const r = entry.record;
      const mirror = d.sourceCopy(tag)?.mirror ?? null;
      if (setting === 'compress') {
        if (!/^[0-9]$/.test(value)) throw new RpcError(`compress takes a level from 0 (off) to 9 (best), not "${value}"`, INVALID);
        r.compression = Number(value);
        if (mirror) mirror.compression = r.compression;
      } else if (setting === 'resyncrate') {
        // Tandem's own setting (not in the manual): resync bandwidth per target in bytes/s, 0 = unlimited.
        if (!/^\d+$/.test(value)) throw new RpcError(`resyncrate takes bytes per second (0 = unlimited), not "${value}"`, INVALID);
        r.resyncRate = Number(value);
        if (mirror) mirror.resyncRate = r.resyncRate;
      } else if (setting === 'logdir') {
        // "" disables rewind logging (manual: mirror_settings datarep-ext3 logdir "").
        const dir = value.replace(/^["“”]+|["“”]+$/g, '');
        if (dir !== '' && !path.isAbsolute(dir)) throw new RpcError(`logdir must be an absolute directory, or "" to disable rewind logging; not "${value}"`, INVALID);
        const refused = dir === '' ? null : d.refuseLogDir(dir);
        if (refused) throw new RpcError(refused, INVALID);
        r.logdir = dir;
      } else {
        if (!/^\d+$/.test(value)) throw new RpcError(`logmax takes a size in bytes (0 = no limit), not "${value}"`, INVALID);
        r.logmax = Number(value);
      }
      d.persist();
      // A target that no source replicates into (paused) takes the log settings now: they are in
      // effect when the mirror is resumed, as the manual says.
      const t = d.targetCopy(tag);
      if (t && !t.connected && (setting === 'logdir' || setting === 'logmax')) await t.syncRewindLog();
      return { tag, setting, value, takesEffect: 'at the next pause and resume' };
    },

    'mirror.pause': (p) => {
      const a = new Params(p, 'mirror.pause', ['tag', 'targets']);
      const s = source(a.tag());
      const links = selectLinks(s, a.nodes('targets'));
      for (const l of links) l.pause();
      d.persist();
      return { tag: s.record.tag, paused: links.map((l) => l.config.node) };
    },

    'mirror.resume': (p) => {
      const a = new Params(p, 'mirror.resume', ['tag', 'targets']);
      const s = source(a.tag());
      const links = selectLinks(s, a.nodes('targets'));
      for (const l of links) l.resume();
      d.persist();
      return { tag: s.record.tag, resumed: links.map((l) => l.config.node) };
    },

    'mirror.waitsync': async (p) => {
      const a = new Params(p, 'mirror.waitsync', ['tag', 'targets', 'timeout']);
      const s = source(a.tag());
      const links = selectLinks(s, a.nodes('targets'));
      const timeout = a.int('timeout', 600, 1, 86_400);
      const paused = links.filter((l) => l.status().status === 'Paused');
      if (paused.length > 0) {
        const nodes = paused.map((l) => l.config.node).join(' ');
        throw new RpcError(`${nodes} ${paused.length > 1 ? 'are' : 'is'} paused and will not resync until resumed: tandem resume ${s.record.tag} ${nodes}`);
      }
      const t0 = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<void>((r) => (timer = setTimeout(r, timeout * 1000)));
      await Promise.race([Promise.all(links.map((l) => l.whenInSync())), expired]);
      clearTimeout(timer);
      const behind = links.map((l) => l.status()).filter((t) => t.status !== 'Fully Operational');
      if (behind.length > 0) {
        const what = behind.map((t) => `${t.node} ${t.status}${t.status === 'Resyncing' ? ` ${t.percentSynced}%` : ''}${t.lastError ? ` (${t.lastError})` : ''}`).join('; ');
        throw new RpcError(`${s.record.tag} is not in sync after ${timeout} s: ${what}`);
      }
      return { tag: s.record.tag, inSync: links.map((l) => l.config.node), waitedMs: Math.round(performance.now() - t0) };
    },

    'mirror.fullresync': async (p) => {
      const a = new Params(p, 'mirror.fullresync', ['tag', 'targets', 'checksum']);
      const s = source(a.tag());
      const links = selectLinks(s, a.nodes('targets'));
      const checksum = a.bool('checksum');
      for (const l of links) {
        await s.mirror!.log.setAll(l.slot);
        if (checksum) l.useChecksumNextResync();
        if (l.config.paused) l.resume();
        else l.restartResync();
      }
      d.persist();
      return { tag: s.record.tag, fullresync: links.map((l) => l.config.node) };
    },

    // The manual's resource types on this node. Devices of mirrors and attached NetRAID devices are
    // "already protected".
    'resource.disks': async (p) => {
      const a = new Params(p, 'resource.disks', ['minSize']);
      return listDisks({ protectedDevices: protectedDevices(), minSize: a.has('minSize') ? a.int('minSize', 0, 1, 2 ** 53) : undefined });
    },

    'resource.create': async (p) => {
      new Params(p, 'resource.create', ['request']);
      const request = p.request as HierarchyRequest;
      if (!request || typeof request !== 'object' || Array.isArray(request)) throw new RpcError('missing parameter "request" (a hierarchy request: type, switchback, server, …)', INVALID);
      if (request.server !== d.node) throw new RpcError(`request.server: this node is ${d.node}, not "${String(request.server)}"; create the hierarchy on its source server`, INVALID);
      const tagsInUse = d.copies().flatMap((e) => [e.record.tag, e.record.fileSystem?.tag ?? '']).filter(Boolean);
      const ctx = await gatherHierarchyContext({ node: d.node, tagsInUse, protectedDevices: protectedDevices() });
      let plan;
      try {
        plan = await planResource(request, ctx);
      } catch (err) {
        if (err instanceof HierarchyValidationError) throw new RpcError(`the hierarchy request has errors: ${err.message}`, INVALID);
        throw new RpcError((err as Error).message);
      }
      const record = newSourceRecord({
        tag: plan.tag, disk: plan.disk, bitmap: bitmapPath(plan.tag, plan.bitmapFile || undefined), chunkSize: DEFAULT_CHUNK_SIZE,
        asyncLimit: DEFAULT_ASYNC_LIMIT, resyncRate: 0, compression: 0,
      });
      record.asyncAllowed = request.asyncReplication === true;
      let entry: SourceCopy;
      try {
        checkNewDisk(plan.tag, plan.disk);
        entry = await d.createSource(record);
      } catch (err) {
        await plan.undo();
        throw err;
      }
      if (plan.mountPoint && plan.fstype) {
        record.fileSystem = { tag: request.fileSystemTag ?? `${plan.fstype}${plan.mountPoint.replace(/\//g, '-')}`, mountPoint: plan.mountPoint, fstype: plan.fstype };
        try {
          const up = await bringUpResource(plan, { socket: d.paths.exportSocket(plan.tag), workDir: path.join(d.paths.runDir, 'attach', plan.tag) });
          entry.resourceMounted(up.device, up.takeDown);
        } catch (err) {
          // Nothing half-made stays: the mirror goes, an existing file system is mounted back on its disk.
          await d.deleteSource(entry);
          await plan.undo().catch(() => undefined);
          throw new RpcError(`creating ${request.type === 'new' ? 'the new file system' : 'the mirror of the file system'} failed: ${(err as Error).message}`);
        }
      }
      d.persist();
      return { tag: plan.tag, disk: plan.disk, export: d.paths.exportSocket(plan.tag), device: entry.resource?.device ?? null, mountPoint: plan.mountPoint };
    },

    // The resource database (hierarchies, equivalencies, failover flags): read, and replaced by a newer
    // version. The console writes the same version to every node; the highest version is the truth.
    'resource.database': (p) => {
      new Params(p, 'resource.database', []);
      return d.resourceDb.database;
    },

    'resource.savedatabase': (p) => {
      new Params(p, 'resource.savedatabase', ['database']);
      if (p.database === undefined || p.database === null) throw new RpcError('missing parameter "database" (version, resources, flags)', INVALID);
      try {
        return d.resourceDb.save(p.database);
      } catch (err) {
        if (err instanceof ResourceDatabaseError) throw new RpcError(err.message, INVALID);
        if (err instanceof StaleResourceDatabase) throw new RpcError(err.message);
        throw err;
      }
    },

    'mirror.inservice': async (p) => {
      const a = new Params(p, 'mirror.inservice', ['tag', 'force', 'rewindTo', 'rewindBookmark']);
      const tag = a.tag();
      const time = a.time('rewindTo');
      const bookmark = a.optStr('rewindBookmark');
      const rewindTo = time === undefined && bookmark === undefined ? undefined : rewindTime(target(tag, 'a rewind recovery runs on the target whose rewound data is to be used'), time, bookmark);
      if (rewindTo !== undefined && a.bool('force')) throw new RpcError('rewindTo and force exclude each other: a rewind recovery is a switchover', INVALID);
      return { message: await rewindErrors(() => d.inService(tag, a.bool('force'), rewindTo)) };
    },

    // ---- the rewind log (manual: Create and View Rewind Bookmarks, Rewind and Recover Data) ----

    'mirror.bookmark': async (p) => {
      const a = new Params(p, 'mirror.bookmark', ['tag', 'name']);
      const tag = a.tag();
      const name = bookmarkName(a.str('name'));
      const s = d.sourceCopy(tag);
      if (s) {
        if (!s.mirror) throw new RpcError(`"${tag}" is out of service on this node; bring it in service first (tandem inservice ${tag})`);
        // In the write stream: the same point of the data on every target.
        const r = await s.mirror.bookmark(name);
        if (r.marked.length === 0) {
          const why = r.missed.map((m) => `${m.node} ${m.why}`).join(', ') || 'it has no targets';
          throw new RpcError(`bookmark "${name}" reached no target of "${tag}" (${why}); bookmarks are kept in the targets' rewind logs, so resume the mirror first`);
        }
        return { tag, name, marked: r.marked, missed: r.missed };
      }
      const t = target(tag);
      const journal = await rewindErrors(async () => t.rewind.requireJournal());
      const [time] = await journal.append([{ bookmark: name }]);
      return { tag, name, time, marked: [d.node], missed: [] };
    },

    'mirror.bookmarks': async (p) => {
      // samples: candidate times spread over the log, or over the window (from, to] the rewind
      // wizard's bisection is narrowing down (with the number of entries in it).
      const a = new Params(p, 'mirror.bookmarks', ['tag', 'samples', 'from', 'to']);
      const tag = a.tag();
      const samples = a.int('samples', 20, 0, 1000);
      const from = a.time('from') ?? -Infinity;
      const to = a.time('to') ?? Infinity;
      const t = target(tag, 'the rewind log is kept on the targets');
      const j = await rewindErrors(async () => t.rewind.requireJournal());
      return {
        tag, node: d.node, dir: j.dir, start: j.startTime, end: j.endTime, entries: j.entries, bytes: j.totalBytes,
        bookmarks: j.bookmarks(), samples: j.samples(samples, from, to), windowEntries: j.countBetween(from, to), view: t.rewind.view,
      };
    },

    // Opens the rewound view at a time (or a bookmark's): exported read-only and, for a file-system
    // resource, mounted read-only. The mirror must be paused: the target is never changed meanwhile.
    'mirror.rewind': async (p) => {
      const a = new Params(p, 'mirror.rewind', ['tag', 'time', 'bookmark', 'mount']);
      const tag = a.tag();
      const t = target(tag, 'a rewound view is opened on a target');
      const time = rewindTime(t, a.time('time'), a.optStr('bookmark'));
      if (t.connected) {
        throw new RpcError(`${t.connected} is replicating into this target, so its data changes: a rewound view needs the mirror paused. On ${t.connected} run: mirror_action ${tag} pause ${t.connected} ${d.node}`);
      }
      const mount = p.mount === undefined ? true : a.bool('mount');
      const fsr = mount && t.record.fileSystem ? t.record.fileSystem : null;
      return { tag, ...(await rewindErrors(() => t.rewind.openView(time, t.store, fsr))) };
    },

    'mirror.rewindclose': async (p) => {
      const a = new Params(p, 'mirror.rewindclose', ['tag']);
      const tag = a.tag();
      const t = target(tag, 'a rewound view is opened on a target');
      const had = t.rewind.view !== null;
      await t.rewind.closeView().catch((e: Error) => {
        throw new RpcError(`the rewound view of "${tag}" cannot be closed: ${e.message}`);
      });
      return { tag, closed: had };
    },

    'mirror.outofservice': async (p) => {
      const a = new Params(p, 'mirror.outofservice', ['tag']);
      return { message: await d.outOfService(a.tag()) };
    },

    // ---- the cluster manager (automatic failover) ----

    'cluster.status': (p) => {
      new Params(p, 'cluster.status', []);
      return cluster().status();
    },

    'cluster.commpaths': (p) => {
      new Params(p, 'cluster.commpaths', []);
      return { node: d.node, heartbeatPort: d.heartbeatPort, peers: cluster().peers() };
    },

    'cluster.commpath.add': (p) => {
      const a = new Params(p, 'cluster.commpath.add', ['node', 'local', 'remote']);
      const node = a.node('node');
      const paths = CommPaths.in(d.paths.stateDir);
      try {
        paths.add(d.node, node, a.str('local'), a.str('remote'));
      } catch (err) {
        if (err instanceof CommPathError) throw new RpcError(err.message, INVALID);
        throw err;
      }
      cluster().applyPeers(paths);
      return { node, peers: paths.peers() };
    },

    'cluster.commpath.remove': (p) => {
      const a = new Params(p, 'cluster.commpath.remove', ['node', 'local', 'remote']);
      const paths = CommPaths.in(d.paths.stateDir);
      try {
        paths.remove(a.node('node'), a.optStr('local'), a.optStr('remote'));
      } catch (err) {
        if (err instanceof CommPathError) throw new RpcError(err.message, INVALID);
        throw err;
      }
      cluster().applyPeers(paths);
      return { peers: paths.peers() };
    },

    // The manual's lk_confirmso -y|-n -s SERVER.
    'cluster.confirm': (p) => {
      const a = new Params(p, 'cluster.confirm', ['failed', 'answer']);
      const failed = a.node('failed');
      if (!a.has('answer')) throw new RpcError('missing parameter "answer" (proceed or block)', INVALID);
      const answer = a.oneOf('answer', ['proceed', 'block'], 'proceed');
      try {
        return { message: cluster().confirm(failed, answer) };
      } catch (err) {
        throw new RpcError((err as Error).message);
      }
    },

    'cluster.dryrun': (p) => {
      const a = new Params(p, 'cluster.dryrun', ['server']);
      const server = a.node('server');
      if (server === d.node) throw new RpcError(`${server} is this server: ask another server what it would do if ${server} failed (tandem failover --dry-run ${server} there)`);
      if (!cluster().peers().some((x) => x.node === server)) {
        throw new RpcError(`${server} is not a server of this cluster as ${d.node} knows it (no comm path to it); see: tandem commpath list`);
      }
      return { server, ...cluster().actionsNow(server) };
    },

    'mirror.resolve': async (p) => {
      const a = new Params(p, 'mirror.resolve', ['tag', 'survivor']);
      const tag = a.tag();
      return { message: await d.resolve(tag, a.node('survivor')) };
    },
  };
}
