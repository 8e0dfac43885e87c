// `tandem-agent run`: the node daemon. Holds this node's mirrors (as source: NBD export + links to
// targets; as target: the volume a source replicates into), persists them, and answers the control
// socket.
import fs from 'node:fs';
import path from 'node:path';
import { FileBlockStore, OpenError } from '../storage/file-store.js';
import type { BlockStore } from '../storage/block-store.js';
import { ReadOnlyView } from '../storage/read-only-view.js';
import { IntentLog, MAX_TARGETS, BitmapFileError } from '../intent-log/bitmap.js';
import { makeExport } from '../nbd/export.js';
import { NbdServer, SimpleCatalog } from '../nbd/server.js';
import { SourceMirror } from '../mirror/source-mirror.js';
import { splitAddress, type TargetConfig, type TargetLink } from '../mirror/target-link.js';
import { ReplicationListener } from '../replication/target-server.js';
import { ControlServer, RpcError, type Handler } from '../control/json-rpc.js';
import type { Logger } from '../log.js';
import type { MirrorStatus, ReplicationMode } from '../../common/mirror-status.js';
import { TANDEM_VERSION } from '../../common/version.js';
import { agentPaths, ensureDirs, readJson, writeJsonAtomic, type AgentPaths } from './home.js';

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const DEFAULT_ASYNC_LIMIT = Number(process.env.LKDR_ASYNC_LIMIT) > 0 ? Number(process.env.LKDR_ASYNC_LIMIT) : 256;
export const DEFAULT_REPLICATION_PORT = 7500;

interface SourceRecord {
  tag: string;
  disk: string;
  /** Bitmap file path, or null for "none". */
  bitmap: string | null;
  chunkSize: number;
  asyncLimit: number;
  resyncRate: number;
  /** zlib level 0–9 (0 = off); older state files lack it. */
  compression?: number;
  targets: TargetConfig[];
}

interface TargetRecord {
  tag: string;
  disk: string;
}

interface StateFile {
  version: 1;
  sources: SourceRecord[];
  targets: TargetRecord[];
}

interface SourceEntry {
  record: SourceRecord;
  mirror: SourceMirror;
  server: NbdServer;
}

interface TargetEntry {
  record: TargetRecord;
  store: BlockStore;
  source: string | null;
  appliedBytes: number;
  /** The read-only export offered while no source replicates into the volume. */
  view: NbdServer | null;
  /** Serialises starting and stopping the view. */
  viewChange: Promise<void>;
}

const TAG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function str(params: Record<string, unknown>, name: string, required = true): string {
  const v = params[name];
  if (v === undefined || v === null || v === '') {
    if (required) throw new RpcError(`missing parameter "${name}"`, -32602);
    return '';
  }
  if (typeof v !== 'string') throw new RpcError(`parameter "${name}" must be a string`, -32602);
  return v;
}

function num(params: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const v = params[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RpcError(`parameter "${name}" must be an integer from ${min} to ${max}`, -32602);
  }
  return v;
}

function checkTag(tag: string): string {
  if (!TAG_PATTERN.test(tag)) throw new RpcError(`tag "${tag}" is not valid: use letters, digits, dot, dash, underscore (up to 64, starting with a letter or digit)`, -32602);
  return tag;
}

export interface DaemonOptions {
  node: string;
  replicationHost: string;
  replicationPort: number;
  paths?: AgentPaths;
}

export class AgentDaemon {
  readonly paths: AgentPaths;
  private readonly stateFile: string;
  private readonly sources = new Map<string, SourceEntry>();
  private readonly targets = new Map<string, TargetEntry>();
  private readonly replication: ReplicationListener;
  private control: ControlServer | null = null;
  replicationPort = 0;

  constructor(private readonly options: DaemonOptions, private readonly log: Logger) {
    this.paths = options.paths ?? agentPaths();
    this.stateFile = path.join(this.paths.stateDir, 'mirrors.json');
    this.replication = new ReplicationListener({
      lookup: (tag) => {
        const t = this.targets.get(tag);
        if (!t) return `this node (${this.options.node}) has no target volume for mirror "${tag}"; on it run: tandem accept ${tag} --disk DISK`;
        return t.store;
      },
      onSourceChange: (tag, source) => {
        const t = this.targets.get(tag);
        if (!t) return;
        t.source = source;
        this.setTargetView(t, source === null);
      },
      onApplied: (tag, _seq, bytes) => {
        const t = this.targets.get(tag);
        if (t) t.appliedBytes += bytes;
      },
    }, options.node, log.child('[replication]'));
  }

  get node(): string {
    return this.options.node;
  }

  async start(): Promise<void> {
    ensureDirs(this.paths);
    const state = readJson<StateFile>(this.stateFile, { version: 1, sources: [], targets: [] });
    for (const t of state.targets) {
      try {
        this.openTarget(t);
      } catch (err) {
        this.log.error(`target volume for "${t.tag}" (${t.disk}) could not be opened: ${(err as Error).message}`);
      }
    }
    for (const s of state.sources) {
      try {
        await this.openSource(s, false);
      } catch (err) {
        this.log.error(`mirror "${s.tag}" on ${s.disk} could not be started: ${(err as Error).message}`);
      }
    }
    this.replicationPort = await this.replication.listen(this.options.replicationHost, this.options.replicationPort);
    this.control = new ControlServer(this.handlers(), this.log.child('[control]'));
    await this.control.listen(this.paths.controlSocket);
    this.log.info(`node ${this.node}: control ${this.paths.controlSocket}, replication ${this.options.replicationHost}:${this.replicationPort}`);
  }

  async stop(): Promise<void> {
    await this.control?.close();
    for (const s of this.sources.values()) {
      await s.server.close();
      await s.mirror.close();
    }
    this.sources.clear();
    await this.replication.close();
    for (const t of this.targets.values()) {
      this.setTargetView(t, false);
      await t.viewChange;
      await t.store.close();
    }
    this.targets.clear();
  }

  private persist(): void {
    const state: StateFile = {
      version: 1,
      sources: [...this.sources.values()].map((s) => ({
        ...s.record, compression: s.mirror.compression, resyncRate: s.mirror.resyncRate, targets: s.mirror.links.map((l) => ({ ...l.config })),
      })),
      targets: [...this.targets.values()].map((t) => t.record),
    };
    writeJsonAtomic(this.stateFile, state);
  }

  private diskInUse(disk: string): string | null {
    const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
    const wanted = real(disk);
    for (const s of this.sources.values()) if (real(s.record.disk) === wanted) return `mirror "${s.record.tag}" (source)`;
    for (const t of this.targets.values()) if (real(t.record.disk) === wanted) return `mirror "${t.record.tag}" (target)`;
    return null;
  }

  private openStore(disk: string): FileBlockStore {
    try {
      return FileBlockStore.open(disk, { readOnly: false });
    } catch (err) {
      if (err instanceof OpenError) throw new RpcError(err.message);
      throw err;
    }
  }

  private openTarget(record: TargetRecord): TargetEntry {
    const store = this.openStore(record.disk);
    const entry: TargetEntry = { record, store, source: null, appliedBytes: 0, view: null, viewChange: Promise.resolve() };
    this.targets.set(record.tag, entry);
    this.setTargetView(entry, true);
    return entry;
  }

  /**
   * While no source replicates into a target volume (paused, disconnected, not yet extended), its data
   * is readable through a read-only NBD export; it closes when a source connects, because from then on
   * the data changes under any reader.
   */
  private setTargetView(t: TargetEntry, open: boolean): void {
    t.viewChange = t.viewChange.then(async () => {
      if (open && !t.view && this.targets.get(t.record.tag) === t) {
        const server = new NbdServer(new SimpleCatalog([makeExport(t.record.tag, new ReadOnlyView(t.store), `Tandem target ${t.record.tag} (read-only)`)]), this.log.child(`[${t.record.tag} view]`));
        try {
          await server.listenUnix(this.paths.targetExportSocket(t.record.tag));
          t.view = server;
        } catch (err) {
          this.log.warn(`read-only export of target ${t.record.tag} not available: ${(err as Error).message}`);
        }
      } else if (!open && t.view) {
        const server = t.view;
        t.view = null;
        await server.close(1_000);
      }
    });
  }

  private async openSource(record: SourceRecord, creating: boolean): Promise<SourceEntry> {
    const local = this.openStore(record.disk);
    let log: IntentLog;
    try {
      if (record.bitmap === null) {
        log = IntentLog.inMemory({ chunkSize: record.chunkSize, volumeSize: local.size });
      } else {
        const existed = fs.existsSync(record.bitmap);
        log = IntentLog.open(record.bitmap, { chunkSize: record.chunkSize, volumeSize: local.size }, { create: true, asyncLimit: record.asyncLimit });
        if (!existed && !creating) {
          // The bitmap is gone: nothing says what the targets hold, so each gets a full resync.
          for (const t of record.targets) await log.setAll(t.slot);
        }
      }
    } catch (err) {
      await local.close();
      if (err instanceof BitmapFileError) throw new RpcError(`${err.message}. Remove it or name another bitmap file.`);
      throw err;
    }
    if (record.bitmap === null && !creating) for (const t of record.targets) await log.setAll(t.slot);
    const mirror = new SourceMirror({
      tag: record.tag, node: this.node, local, log, chunkSize: record.chunkSize, asyncLimit: record.asyncLimit, resyncRate: record.resyncRate,
      compression: record.compression ?? 0,
    }, this.log);
    const server = new NbdServer(new SimpleCatalog([makeExport(record.tag, mirror, `Tandem mirror ${record.tag} of ${record.disk}`)]), this.log.child(`[${record.tag} nbd]`));
    try {
      await server.listenUnix(this.paths.exportSocket(record.tag));
    } catch (err) {
      await mirror.close();
      throw new RpcError((err as Error).message);
    }
    for (const t of record.targets) mirror.addTarget({ ...t });
    const entry = { record: { ...record, targets: [] }, mirror, server };
    this.sources.set(record.tag, entry);
    return entry;
  }

  private source(tag: string): SourceEntry {
    const s = this.sources.get(tag);
    if (!s) {
      if (this.targets.has(tag)) throw new RpcError(`this node (${this.node}) is a target of "${tag}", not its source; run this on the source node`);
      throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    }
    return s;
  }

  private selectLinks(s: SourceEntry, nodes: unknown): TargetLink[] {
    if (!Array.isArray(nodes) || nodes.length === 0) return s.mirror.links.slice();
    return nodes.map((n) => {
      const l = s.mirror.links.find((x) => x.config.node === n);
      if (!l) throw new RpcError(`"${String(n)}" is not a target of mirror "${s.record.tag}"; targets: ${s.mirror.links.map((x) => x.config.node).join(', ') || 'none'}`);
      return l;
    });
  }

  status(tag?: string): MirrorStatus[] {
    const out: MirrorStatus[] = [];
    for (const s of this.sources.values()) {
      if (tag && s.record.tag !== tag) continue;
      out.push({
        tag: s.record.tag, role: 'source', node: this.node, disk: s.record.disk, size: s.mirror.size,
        exportSocket: this.paths.exportSocket(s.record.tag),
        bitmap: { file: s.record.bitmap, chunkSize: s.record.chunkSize, chunks: s.mirror.log.chunks },
        asyncLimit: s.mirror.asyncLimit, compression: s.mirror.compression,
        targets: s.mirror.links.map((l) => l.status()),
      });
    }
    for (const t of this.targets.values()) {
      if (tag && t.record.tag !== tag) continue;
      out.push({
        tag: t.record.tag, role: 'target', node: this.node, disk: t.record.disk, size: t.store.size,
        exportSocket: t.view ? this.paths.targetExportSocket(t.record.tag) : null,
        bitmap: { file: null, chunkSize: 0, chunks: 0 }, asyncLimit: 0, compression: 0, targets: [], source: t.source,
      });
    }
    if (tag && out.length === 0) throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    return out;
  }

  private handlers(): Record<string, Handler> {
    return {
      'agent.info': () => ({ node: this.node, version: TANDEM_VERSION, replication: `${this.options.replicationHost}:${this.replicationPort}` }),
      'mirror.status': (p) => this.status(p.tag ? checkTag(str(p, 'tag')) : undefined),

      'mirror.create': async (p) => {
        const tag = checkTag(str(p, 'tag'));
        const disk = str(p, 'disk');
        if (this.sources.has(tag) || this.targets.has(tag)) throw new RpcError(`mirror "${tag}" already exists on this node`);
        const used = this.diskInUse(disk);
        if (used) throw new RpcError(`${disk} is already protected by ${used}`);
        const bitmapParam = str(p, 'bitmap', false);
        const bitmap = bitmapParam === 'none' ? null : bitmapParam || path.join(this.paths.bitmapDir, `${tag}.bitmap`);
        if (bitmap && fs.existsSync(bitmap)) throw new RpcError(`bitmap file ${bitmap} already exists; remove it or name another with --bitmap`);
        const chunkSize = num(p, 'chunkSize', DEFAULT_CHUNK_SIZE, 4096, 64 * 1024 * 1024);
        if (chunkSize & (chunkSize - 1)) throw new RpcError('chunk size must be a power of two', -32602);
        const record: SourceRecord = {
          tag, disk, bitmap, chunkSize, asyncLimit: num(p, 'asyncLimit', DEFAULT_ASYNC_LIMIT, 1, 65536), resyncRate: num(p, 'resyncRate', 0, 0, 2 ** 40),
          compression: num(p, 'compression', 0, 0, 9), targets: [],
        };
        const entry = await this.openSource(record, true);
        this.persist();
        return { tag, export: this.paths.exportSocket(tag), size: entry.mirror.size };
      },

      'mirror.accept': (p) => {
        const tag = checkTag(str(p, 'tag'));
        const disk = str(p, 'disk');
        if (this.sources.has(tag) || this.targets.has(tag)) throw new RpcError(`mirror "${tag}" already exists on this node`);
        const used = this.diskInUse(disk);
        if (used) throw new RpcError(`${disk} is already protected by ${used}`);
        this.openTarget({ tag, disk });
        this.persist();
        return { tag, disk, replication: `${this.options.replicationHost}:${this.replicationPort}` };
      },

      'mirror.extend': async (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const node = str(p, 'node');
        const address = str(p, 'address');
        try {
          splitAddress(address);
        } catch (err) {
          throw new RpcError((err as Error).message, -32602);
        }
        const mode = (str(p, 'mode', false) || 'sync') as ReplicationMode;
        if (mode !== 'sync' && mode !== 'async') throw new RpcError('mode must be "sync" or "async"', -32602);
        if (node === this.node) throw new RpcError('a mirror cannot target its own source node');
        if (s.mirror.links.some((l) => l.config.node === node)) throw new RpcError(`${node} is already a target of "${s.record.tag}"`);
        const used = new Set(s.mirror.links.map((l) => l.slot));
        if (used.size >= MAX_TARGETS) throw new RpcError(`mirror "${s.record.tag}" already has ${MAX_TARGETS} targets, the maximum`);
        let slot = 0;
        while (used.has(slot)) slot++;
        // A new target starts with every chunk dirty (full resync) unless told the data is new.
        if (p.initialSync === 'none') await s.mirror.log.clearAll(slot);
        else await s.mirror.log.setAll(slot);
        const localAddress = str(p, 'localAddress', false) || undefined;
        s.mirror.addTarget({ node, address, localAddress, mode, slot, paused: false }, p.initialSync === 'checksum');
        this.persist();
        return { tag: s.record.tag, node, slot };
      },

      'mirror.unextend': (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const node = str(p, 'node');
        const link = s.mirror.removeTarget(node);
        if (!link) throw new RpcError(`"${node}" is not a target of "${s.record.tag}"`);
        this.persist();
        return { tag: s.record.tag, node };
      },

      'mirror.release': async (p) => {
        const tag = checkTag(str(p, 'tag'));
        const t = this.targets.get(tag);
        if (!t) throw new RpcError(`this node (${this.node}) is not a target of "${tag}"`);
        this.replication.disconnect(tag);
        this.targets.delete(tag);
        this.setTargetView(t, false);
        await t.viewChange;
        await t.store.close();
        this.persist();
        return { tag };
      },

      'mirror.delete': async (p) => {
        const tag = checkTag(str(p, 'tag'));
        const s = this.source(tag);
        await s.server.close();
        await s.mirror.close();
        this.sources.delete(tag);
        if (s.record.bitmap) fs.rmSync(s.record.bitmap, { force: true });
        this.persist();
        return { tag };
      },

      // The manual's mirror_settings: values are stored now and used from the next (re)connection of each
      // target, i.e. after a pause and resume, as the manual says.
      'mirror.settings': (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const setting = str(p, 'setting');
        const value = str(p, 'value', false);
        if (setting === 'compress') {
          if (!/^[0-9]$/.test(value)) throw new RpcError(`compress takes a level from 0 (off) to 9 (best), not "${value}"`, -32602);
          s.mirror.compression = Number(value);
          s.record.compression = Number(value);
        } else if (setting === 'resyncrate') {
          // Tandem's own setting (not in the manual): resync bandwidth per target in bytes/s, 0 = unlimited.
          if (!/^\d+$/.test(value)) throw new RpcError(`resyncrate takes bytes per second (0 = unlimited), not "${value}"`, -32602);
          s.mirror.resyncRate = Number(value);
          s.record.resyncRate = Number(value);
        } else if (setting === 'logdir' || setting === 'logmax') {
          throw new RpcError(`${setting} configures the rewind log, which is not available in this release yet`);
        } else {
          throw new RpcError(`unknown setting "${setting}"; settings are logdir, logmax, compress, resyncrate`, -32602);
        }
        this.persist();
        return { tag: s.record.tag, setting, value, takesEffect: 'at the next pause and resume' };
      },

      'mirror.pause': (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const links = this.selectLinks(s, p.targets);
        for (const l of links) l.pause();
        this.persist();
        return { tag: s.record.tag, paused: links.map((l) => l.config.node) };
      },

      'mirror.resume': (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const links = this.selectLinks(s, p.targets);
        for (const l of links) l.resume();
        this.persist();
        return { tag: s.record.tag, resumed: links.map((l) => l.config.node) };
      },

      'mirror.fullresync': async (p) => {
        const s = this.source(checkTag(str(p, 'tag')));
        const links = this.selectLinks(s, p.targets);
        for (const l of links) {
          await s.mirror.log.setAll(l.slot);
          if (p.checksum === true) l.useChecksumNextResync();
          if (l.config.paused) l.resume();
          else l.restartResync();
        }
        this.persist();
        return { tag: s.record.tag, fullresync: links.map((l) => l.config.node) };
      },
    };
  }
}
