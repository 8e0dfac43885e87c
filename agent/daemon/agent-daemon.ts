// `tandem-agent run`: the node daemon. Holds this node's copies of its mirrors — as source (NBD export +
// links to targets) or as target (the volume a source replicates into) — persists them, applies the
// failover rules (generations, last_owner, data_corrupt, switchover, split brain) and answers the
// control socket.
import fs from 'node:fs';
import path from 'node:path';
import { FileBlockStore, OpenError } from '../storage/file-store.js';
import type { BlockStore } from '../storage/block-store.js';
import { ReadOnlyView } from '../storage/read-only-view.js';
import { IntentLog, MAX_TARGETS, BitmapFileError } from '../intent-log/bitmap.js';
import { makeExport } from '../nbd/export.js';
import { NbdServer, SimpleCatalog } from '../nbd/server.js';
import { SourceMirror } from '../mirror/source-mirror.js';
import type { LinkBlock, MirrorPolicy } from '../mirror/mirror-core.js';
import type { TargetConfig } from '../mirror/target-link.js';
import { adopt, decide, discardToCommonAncestor, rotate, UnconfirmedLabels } from '../mirror/generations.js';
import { admitPeer, mayGoInService, needsNewGeneration, onPeerIsSource, probeExpired, type CopyState, type SourcePhaseName } from '../mirror/failover-rules.js';
import { ReplicationListener, type Admission } from '../replication/target-server.js';
import { loadNodeCredentials, type NodeCredentials } from '../replication/transport.js';
import type { GenerationNotice, Hello, MemberInfo, Switched } from '../replication/wire.js';
import { ControlServer, RpcError } from '../control/json-rpc.js';
import type { Logger } from '../log.js';
import type { MirrorStatus, RewindLogStatus } from '../../common/mirror-status.js';
import { TANDEM_VERSION } from '../../common/version.js';
import { agentPaths, ensureDirs, readJson, writeJsonAtomic, type AgentPaths } from './home.js';
import { freeSlot, writeFlagFiles, type MirrorRecord, type StateFile } from './mirror-record.js';
import { attachExport } from '../resources/device-attach.js';
import { mountFileSystem, unmountFileSystem } from '../resources/filesystem.js';
import { controlHandlers } from './control-handlers.js';
import { TargetRewind } from '../rewind/target-rewind.js';
import { mirroredDiskUnder, type MirroredDisk } from '../rewind/log-location.js';
import { isoMicro } from '../rewind/journal.js';
import { RewoundView } from '../rewind/rewound-view.js';
import { ResourceDbStore } from './resource-db-store.js';

export { DEFAULT_CHUNK_SIZE, DEFAULT_ASYNC_LIMIT } from './mirror-record.js';
export const DEFAULT_REPLICATION_PORT = 7500;
/** How long a returning source looks for its targets before it sets data_corrupt (manual, scenario 3). */
const PROBE_MS = Number(process.env.TANDEM_PROBE_MS) > 0 ? Number(process.env.TANDEM_PROBE_MS) : 10_000;

/** Where a source copy is: serving (ISP), looking for its targets before serving, or out of service. */
export type SourcePhase = SourcePhaseName;

export interface SourceEntry {
  record: MirrorRecord;
  phase: SourcePhase;
  /** Open while starting or in service. */
  mirror: SourceMirror | null;
  server: NbdServer | null;
  probeTimer: NodeJS.Timeout | null;
  /** Resolves the callers waiting for the start to end (in service, demoted, or given up). */
  startWaiters: Array<(outcome: string | null) => void>;
  rotating: Promise<void> | null;
  /** The file system resource while mounted here: the NetRAID device and how to take it down. */
  resource: { device: string; takeDown(): Promise<void> } | null;
  /** Bringing the file system resource up (attach, mount) after going in service. */
  resourceReady: Promise<void>;
  resourceError: string;
}

export interface TargetEntry {
  record: MirrorRecord;
  store: BlockStore;
  log: IntentLog | null;
  /** The source replicating into this copy now. */
  connected: string | null;
  /** This agent lost its source while holding a usable copy: a failover here is safe (scenario 1). */
  lostSourceInSync: boolean;
  appliedBytes: number;
  view: NbdServer | null;
  viewChange: Promise<void>;
  /** The rewind log and the rewound view being explored. */
  rewind: TargetRewind;
  /** Settling the rewind log to the settings (see syncRewindLog). */
  rewindSync: Promise<void>;
}

export interface DaemonOptions {
  node: string;
  replicationHost: string;
  replicationPort: number;
  paths?: AgentPaths;
  /** Plain TCP between agents instead of mutual TLS (benchmarks, trusted lab networks only). */
  insecurePlaintext?: boolean;
}

export class AgentDaemon {
  readonly paths: AgentPaths;
  private readonly stateFile: string;
  readonly sources = new Map<string, SourceEntry>();
  readonly targets = new Map<string, TargetEntry>();
  private replication!: ReplicationListener;
  private creds: NodeCredentials | null = null;
  private control: ControlServer | null = null;
  /** This node's copy of the resource database (opened in start()). */
  resourceDb!: ResourceDbStore;
  replicationPort = 0;

  constructor(private readonly options: DaemonOptions, readonly log: Logger) {
    this.paths = options.paths ?? agentPaths();
    this.stateFile = path.join(this.paths.stateDir, 'mirrors.json');
  }

  private makeListener(): ReplicationListener {
    const options = this.options;
    const log = this.log;
    return new ReplicationListener({
      admit: (tag, hello, remote) => this.admitSource(tag, hello, remote),
      onSourceChange: (tag, source) => this.onSourceChange(tag, source),
      onSourceHasOurBits: (tag, source) => {
        const t = this.targets.get(tag);
        const slot = t?.record.slots[source];
        if (t?.log && slot !== undefined && t.log.dirtyCount(slot) > 0) {
          void t.log.clearAll(slot).catch((e: Error) => this.log.warn(`clearing the bitmap of ${tag}: ${e.message}`));
        }
      },
      onGeneration: (tag, source, notice) => this.onGeneration(tag, source, notice),
      onApplied: (tag, _seq, bytes) => {
        const t = this.targets.get(tag);
        if (t) t.appliedBytes += bytes;
      },
    }, options.node, log.child('[replication]'), this.creds);
  }

  get node(): string {
    return this.options.node;
  }

  /** The replication address to tell peers; an empty host means "the address I connect from". */
  get advertisedAddress(): string {
    const h = this.options.replicationHost;
    if (h === '0.0.0.0' || h === '::' || h === '') return `:${this.replicationPort}`;
    return `${h.includes(':') ? `[${h}]` : h}:${this.replicationPort}`;
  }

  async start(): Promise<void> {
    ensureDirs(this.paths);
    if (this.options.insecurePlaintext) {
      this.log.warn('replication runs over plain TCP (--insecure-plaintext): unauthenticated and unencrypted; for benchmarks and trusted lab networks only');
    } else {
      this.creds = loadNodeCredentials(this.paths.tlsDir);
      if (this.creds.node !== this.node) {
        throw new Error(`the certificate in ${this.paths.tlsDir} is for node ${this.creds.node}, but this agent runs as ${this.node}; start it with --node ${this.creds.node} or install this node's certificate`);
      }
    }
    this.replication = this.makeListener();
    this.resourceDb = new ResourceDbStore(this.paths.stateDir, (m) => this.log.warn(m));
    const state = readJson<StateFile | { version: 1 }>(this.stateFile, { version: 2, mirrors: [] });
    if (state.version !== 2) throw new Error(`${this.stateFile} is from an older Tandem release (state version ${state.version}); move it away and set the mirrors up again`);
    // Listen first: a returning source's peers may be waiting to tell it what happened meanwhile.
    for (const r of state.mirrors) {
      try {
        if (r.role === 'target') this.openTarget(r);
      } catch (err) {
        this.log.error(`target volume for "${r.tag}" (${r.disk}) could not be opened: ${(err as Error).message}`);
      }
    }
    this.replicationPort = await this.replication.listen(this.options.replicationHost, this.options.replicationPort);
    for (const r of state.mirrors) {
      if (r.role !== 'source') continue;
      try {
        await this.openSource(r, r.inService ? 'starting' : 'out of service');
      } catch (err) {
        this.log.error(`mirror "${r.tag}" on ${r.disk} could not be started: ${(err as Error).message}`);
      }
    }
    this.control = new ControlServer(controlHandlers(this), this.log.child('[control]'));
    await this.control.listen(this.paths.controlSocket);
    this.log.info(`node ${this.node}: control ${this.paths.controlSocket}, replication ${this.options.replicationHost}:${this.replicationPort}`);
  }

  async stop(): Promise<void> {
    await this.control?.close();
    for (const s of this.sources.values()) await this.closeSource(s);
    this.sources.clear();
    await this.replication?.close();
    for (const t of this.targets.values()) await this.closeTarget(t);
    this.targets.clear();
  }

  info(): { node: string; version: string; replication: string; resourceDatabaseVersion: number; bitmapDir: string } {
    // The database version rides along with every status push, so consoles notice another console's save;
    // bitmapDir: where a bitmap file goes by default, so the console's wizards can show the real path.
    return {
      node: this.node, version: TANDEM_VERSION, replication: `${this.options.replicationHost}:${this.replicationPort}`,
      resourceDatabaseVersion: this.resourceDb.database.version, bitmapDir: this.paths.bitmapDir,
    };
  }

  persist(removedTags: readonly string[] = []): void {
    const mirrors: MirrorRecord[] = [];
    for (const s of this.sources.values()) {
      if (s.mirror) {
        s.record.compression = s.mirror.compression;
        s.record.resyncRate = s.mirror.resyncRate;
        s.record.targets = s.mirror.links.map((l) => ({ ...l.config }));
      }
      mirrors.push(s.record);
    }
    for (const t of this.targets.values()) mirrors.push(t.record);
    writeJsonAtomic(this.stateFile, { version: 2, mirrors } satisfies StateFile);
    writeFlagFiles(this.paths.stateDir, mirrors, removedTags);
  }

  diskInUse(disk: string): string | null {
    const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
    const wanted = real(disk);
    for (const s of this.sources.values()) if (real(s.record.disk) === wanted) return `mirror "${s.record.tag}" (source)`;
    for (const t of this.targets.values()) if (real(t.record.disk) === wanted) return `mirror "${t.record.tag}" (target)`;
    return null;
  }

  openStore(disk: string): FileBlockStore {
    try {
      return FileBlockStore.open(disk, { readOnly: false });
    } catch (err) {
      if (err instanceof OpenError) throw new RpcError(err.message);
      throw err;
    }
  }

  // ---- target copies -------------------------------------------------------------------------

  openTarget(record: MirrorRecord, store?: BlockStore): TargetEntry {
    const s = store ?? this.openStore(record.disk);
    let log: IntentLog | null = null;
    try {
      if (record.bitmap && record.size > 0) log = IntentLog.open(record.bitmap, { chunkSize: record.chunkSize, volumeSize: record.size }, { create: true, asyncLimit: record.asyncLimit });
    } catch (err) {
      void s.close();
      throw err;
    }
    const entry: TargetEntry = {
      record, store: s, log, connected: null, lostSourceInSync: false, appliedBytes: 0, view: null, viewChange: Promise.resolve(),
      rewind: new TargetRewind(record.tag, this.paths.runDir, this.log.child(`[${record.tag} rewind]`)), rewindSync: Promise.resolve(),
    };
    this.targets.set(record.tag, entry);
    this.setTargetView(entry, true);
    this.syncRewindLog(entry);
    return entry;
  }

  async closeTarget(t: TargetEntry): Promise<void> {
    this.setTargetView(t, false);
    await t.viewChange;
    await t.rewindSync;
    await t.rewind.close();
    t.log?.close();
    await t.store.close();
  }

  /** The disks this node's mirrors use, for refusing a rewind log on one of them. */
  mirroredDisks(): MirroredDisk[] {
    const out: MirroredDisk[] = [];
    for (const s of this.sources.values()) out.push({ tag: s.record.tag, disk: s.record.disk, device: s.resource?.device ?? null, fileSystem: s.record.fileSystem ?? null });
    for (const t of this.targets.values()) out.push({ tag: t.record.tag, disk: t.record.disk, fileSystem: t.record.fileSystem ?? null });
    return out;
  }

  /** Why `logdir` cannot hold a rewind log (it is on a mirrored disk), or null. */
  refuseLogDir(logdir: string): string | null {
    const why = mirroredDiskUnder(logdir, this.mirroredDisks());
    return why ? `logdir ${logdir} ${why}; the rewind log cannot be on a mirrored disk: choose a folder on another disk (ideally a separate physical disk from any mirror)` : null;
  }

  /**
   * Makes a target's rewind log what its settings say. Run at start, when the source disconnects (the
   * manual: settings take effect when the mirror is paused and resumed) and when settings change while
   * no source is connected; never while writes are being applied.
   */
  syncRewindLog(t: TargetEntry): Promise<void> {
    t.rewindSync = t.rewindSync.then(async () => {
      if (t.connected || this.targets.get(t.record.tag) !== t) return;
      const r = t.record;
      const kept = await t.rewind.sync({ tag: r.tag, logdir: r.logdir, logmax: r.logmax, rewindLogKept: r.rewindLogKept }, (dir) => this.refuseLogDir(dir));
      if ((r.rewindLogKept ?? '') !== kept) {
        if (kept) r.rewindLogKept = kept;
        else delete r.rewindLogKept;
        this.persist();
      }
    }).catch((e: Error) => this.log.error(`${t.record.tag}: rewind log: ${e.message}`));
    return t.rewindSync;
  }

  /** Detaches a target copy without closing its disk (it becomes the source's disk). */
  private async detachTarget(t: TargetEntry): Promise<void> {
    this.replication.disconnect(t.record.tag);
    this.targets.delete(t.record.tag);
    this.setTargetView(t, false);
    await t.viewChange;
    await t.rewindSync;
    await t.rewind.closeView();
    t.log?.close();
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

  /** A source connects: this node's answer (its copy's generations, or why not). */
  private admitSource(tag: string, hello: Hello, remoteAddress: string): Admission {
    const s = this.sources.get(tag);
    if (s) {
      return {
        message: `this node (${this.node}) is itself the source of "${tag}" (${s.phase})`,
        role: 'source', inService: s.phase === 'in service', generations: s.record.generations,
      };
    }
    const t = this.targets.get(tag);
    if (!t) return { message: `this node (${this.node}) has no target volume for mirror "${tag}"; on it run: tandem accept ${tag} --disk DISK` };
    const r = t.record;
    if (r.size !== 0 && (r.size !== hello.size || r.chunkSize !== hello.chunkSize)) {
      return { message: `this node's copy of "${tag}" is ${r.size} bytes in chunks of ${r.chunkSize}, the source's ${hello.size} in ${hello.chunkSize}; release and accept the target again` };
    }
    const recorded = () => JSON.stringify([r.size, r.chunkSize, r.members, r.source, r.fileSystem, r.slots]);
    const before = recorded();
    if (r.size === 0) {
      r.size = hello.size;
      r.chunkSize = hello.chunkSize;
      try {
        if (r.bitmap) t.log = IntentLog.open(r.bitmap, { chunkSize: r.chunkSize, volumeSize: r.size }, { create: true, asyncLimit: r.asyncLimit });
      } catch (err) {
        r.size = 0;
        return { message: `cannot open the bitmap of this target: ${(err as Error).message}` };
      }
    }
    const from = normaliseAddress(remoteAddress);
    r.members = hello.members.map((m) => (m.node === hello.source && m.address.startsWith(':') ? { ...m, address: `${from.includes(':') ? `[${from}]` : from}${m.address}` } : m));
    r.source = hello.source;
    r.fileSystem = hello.fileSystem ?? null;
    for (const m of r.members) {
      if (m.node === this.node || r.slots[m.node] !== undefined) continue;
      const slot = freeSlot(r.slots, MAX_TARGETS);
      if (slot >= 0) r.slots[m.node] = slot;
    }
    // A source that reconnects (resume, fullresync) usually changes nothing here: no write (and fsync)
    // of the state file before WELCOME then.
    if (recorded() !== before) this.persist();
    const slot = r.slots[hello.source];
    const dirty = t.log && slot !== undefined && t.log.dirtyCount(slot) > 0 ? (t.log.slots[slot] as { bytes: Buffer }).bytes.toString('base64') : '';
    return { store: t.store, welcome: { generations: r.generations, consistent: r.consistent, dirty }, journal: t.rewind.journal };
  }

  private onSourceChange(tag: string, source: string | null): void {
    const t = this.targets.get(tag);
    if (!t) return;
    if (source) {
      t.connected = source;
      t.lostSourceInSync = false;
    } else {
      // Losing the source while holding a usable copy is what makes a failover here safe.
      if (t.connected && t.record.consistent) t.lostSourceInSync = true;
      t.connected = null;
      this.syncRewindLog(t);
    }
    // A rewound view is explored while paused only: from now on the target changes.
    if (source) void t.rewind.closeView().catch((e: Error) => this.log.error(`${tag}: closing the rewound view: ${e.message}`));
    this.setTargetView(t, source === null);
  }

  private onGeneration(tag: string, source: string, notice: GenerationNotice): void {
    const t = this.targets.get(tag);
    if (!t) return;
    const r = t.record;
    if (notice.current !== undefined) {
      r.generations = adopt(r.generations, notice.current);
      // We hold the source's data: our bitmap for it (empty while we are a target) starts here.
      r.generations.peers[source] = notice.current;
    }
    r.consistent = notice.consistent;
    this.persist();
  }

  // ---- source copies -------------------------------------------------------------------------

  /** @param prepare runs on the open mirror before it goes in service (a rewind's rollback) */
  async openSource(record: MirrorRecord, phase: SourcePhase, store?: BlockStore, prepare?: (mirror: SourceMirror) => Promise<void>): Promise<SourceEntry> {
    const entry: SourceEntry = {
      record, phase, mirror: null, server: null, probeTimer: null, startWaiters: [], rotating: null,
      resource: null, resourceReady: Promise.resolve(), resourceError: '',
    };
    this.sources.set(record.tag, entry);
    if (phase === 'out of service') {
      if (store) await store.close();
      return entry;
    }
    try {
      entry.mirror = await this.openMirror(entry, store);
    } catch (err) {
      this.sources.delete(record.tag);
      throw err;
    }
    if (prepare) await prepare(entry.mirror);
    if (phase === 'in service' || entry.mirror.links.length === 0) await this.goInService(entry);
    else this.startProbe(entry);
    return entry;
  }

  private async openMirror(entry: SourceEntry, store?: BlockStore): Promise<SourceMirror> {
    const record = entry.record;
    const local = store ?? this.openStore(record.disk);
    if (record.size === 0) record.size = local.size;
    let log: IntentLog;
    try {
      if (record.bitmap === null) {
        log = IntentLog.inMemory({ chunkSize: record.chunkSize, volumeSize: record.size });
        // No bitmap survives a restart: nothing says what the targets hold, so each gets a full resync.
        for (const t of record.targets) await log.setAll(t.slot);
      } else {
        const existed = fs.existsSync(record.bitmap);
        log = IntentLog.open(record.bitmap, { chunkSize: record.chunkSize, volumeSize: record.size }, { create: true, asyncLimit: record.asyncLimit });
        if (!existed) for (const t of record.targets) await log.setAll(t.slot);
        // The manual's `bitmap -a <num>` sets the async limit in the file's header: it wins.
        else record.asyncLimit = log.asyncLimit;
      }
    } catch (err) {
      await local.close();
      if (err instanceof BitmapFileError) throw new RpcError(`${err.message}. Remove it or name another bitmap file.`);
      throw err;
    }
    const mirror = new SourceMirror({
      tag: record.tag, node: this.node, local, log, chunkSize: record.chunkSize, asyncLimit: record.asyncLimit, resyncRate: record.resyncRate,
      compression: record.compression, policy: this.policyFor(entry), size: record.size, creds: this.creds,
    }, this.log);
    for (const t of record.targets) mirror.addTarget({ ...t });
    return mirror;
  }

  /** Starts the NBD export: the mirror is in service on this node. */
  private async goInService(entry: SourceEntry): Promise<void> {
    const mirror = entry.mirror as SourceMirror;
    const server = new NbdServer(new SimpleCatalog([makeExport(entry.record.tag, mirror, `Tandem mirror ${entry.record.tag} of ${entry.record.disk}`)]), this.log.child(`[${entry.record.tag} nbd]`));
    await server.listenUnix(this.paths.exportSocket(entry.record.tag));
    if (entry.probeTimer) clearTimeout(entry.probeTimer);
    entry.probeTimer = null;
    entry.server = server;
    entry.phase = 'in service';
    entry.record.inService = true;
    entry.record.lastOwner = true;
    if (entry.record.dataCorrupt) this.log.info(`${entry.record.tag}: data_corrupt cleared`);
    entry.record.dataCorrupt = false;
    this.persist();
    this.log.info(`${entry.record.tag}: in service on ${this.node}`);
    if (entry.record.fileSystem && !entry.resource) entry.resourceReady = this.bringUpFileSystem(entry);
    this.finishStart(entry, null);
  }

  /** Attaches the mirror's export as a block device and mounts its file system resource on it. */
  private async bringUpFileSystem(entry: SourceEntry): Promise<void> {
    const fsr = entry.record.fileSystem;
    if (!fsr) return;
    const tag = entry.record.tag;
    try {
      const attached = await attachExport({ socket: this.paths.exportSocket(tag), exportName: tag, workDir: path.join(this.paths.runDir, 'attach', tag) });
      try {
        fs.mkdirSync(fsr.mountPoint, { recursive: true });
        await mountFileSystem(attached.device, fsr.mountPoint, { fstype: fsr.fstype });
      } catch (err) {
        await attached.detach().catch(() => undefined);
        throw err;
      }
      entry.resource = {
        device: attached.device,
        takeDown: async () => {
          await unmountFileSystem(fsr.mountPoint);
          await attached.detach();
        },
      };
      entry.resourceError = '';
      this.log.info(`${tag}: ${fsr.tag} mounted at ${fsr.mountPoint} (${attached.device})`);
    } catch (err) {
      entry.resourceError = `mounting ${fsr.tag} at ${fsr.mountPoint}: ${(err as Error).message}`;
      this.log.error(`${tag}: ${entry.resourceError}`);
    }
  }

  /** Unmounts the file system resource and detaches the device; throws (nothing changed) while busy. */
  async takeDownFileSystem(entry: SourceEntry): Promise<void> {
    await entry.resourceReady;
    if (!entry.resource) return;
    await entry.resource.takeDown();
    entry.resource = null;
  }

  private finishStart(entry: SourceEntry, outcome: string | null): void {
    const w = entry.startWaiters;
    entry.startWaiters = [];
    for (const f of w) f(outcome);
  }

  /** A returning source serves nothing until a target confirms it still holds the newest data. */
  private startProbe(entry: SourceEntry): void {
    entry.phase = 'starting';
    // A socket left by a crash must not look like a device in service.
    fs.rmSync(this.paths.exportSocket(entry.record.tag), { force: true });
    this.log.info(`${entry.record.tag}: looking for its targets before going in service`);
    entry.probeTimer = setTimeout(() => {
      entry.probeTimer = null;
      if (!probeExpired(entry.phase).setDataCorrupt || this.sources.get(entry.record.tag) !== entry) return;
      // Manual, scenario 3: it could not reach a target, so it does not know whether a target took
      // over meanwhile. It stays out of service until a target answers or an administrator forces it.
      entry.record.dataCorrupt = true;
      this.persist();
      this.log.warn(`${entry.record.tag}: no target reachable; data_corrupt set, not going in service. If this node was certainly the last source, run: mirror_action ${entry.record.tag} force ${this.node}`);
      this.finishStart(entry, `no target of "${entry.record.tag}" answered within ${PROBE_MS / 1000} s, so this node cannot tell whether another took over (data_corrupt is set). If you are certain ${this.node} was the last source, run: mirror_action ${entry.record.tag} force ${this.node}`);
    }, PROBE_MS);
  }

  async closeSource(s: SourceEntry): Promise<void> {
    if (s.probeTimer) clearTimeout(s.probeTimer);
    s.probeTimer = null;
    await this.takeDownFileSystem(s).catch((e: Error) => this.log.error(`${s.record.tag}: ${e.message}`));
    const server = s.server;
    s.server = null;
    await server?.close();
    const mirror = s.mirror;
    s.mirror = null;
    if (mirror) {
      s.record.targets = mirror.links.map((l) => ({ ...l.config }));
      await mirror.close();
    }
  }

  /** This node's copy becomes a target of `newSource` (a returning stale source, a switchover, a resolve). */
  async demote(entry: SourceEntry, newSource: string, consistent: boolean, why: string): Promise<void> {
    const r = entry.record;
    const mirror = entry.mirror;
    const store = mirror?.local;
    if (entry.probeTimer) clearTimeout(entry.probeTimer);
    entry.probeTimer = null;
    await this.takeDownFileSystem(entry).catch((e: Error) => this.log.error(`${r.tag}: ${e.message}`));
    await entry.server?.close();
    entry.server = null;
    if (mirror) {
      r.targets = mirror.links.map((l) => ({ ...l.config }));
      for (const l of mirror.links) l.stop();
      await mirror.log.flushClears();
      mirror.log.close();
    }
    entry.mirror = null;
    this.sources.delete(r.tag);
    r.members = [{ node: this.node, address: this.advertisedAddress, mode: 'sync' }, ...r.targets.map((t) => ({ node: t.node, address: t.address, mode: t.mode }))];
    for (const t of r.targets) r.slots[t.node] = t.slot;
    r.role = 'target';
    r.source = newSource;
    r.inService = false;
    r.lastOwner = false;
    r.dataCorrupt = false;
    r.consistent = consistent;
    r.targets = [];
    this.openTarget(r, store);
    this.persist();
    this.log.warn(`${r.tag}: now a target of ${newSource} (${why})`);
    this.finishStart(entry, `${r.tag}: this node became a target of ${newSource}: ${why}`);
  }

  /**
   * A target copy becomes the source (failover, switchover, force). With `rewindTo`, before it goes in
   * service its data is rewound to that time from the rewind log: every block written since is written
   * back through the new mirror, so its targets get exactly those blocks (or resync just their chunks).
   */
  async promote(t: TargetEntry, why: string, rewindTo?: number, rolledBack?: { blocks: number; bytes: number }): Promise<SourceEntry> {
    const r = t.record;
    if (r.size === 0) throw new RpcError(`this node's copy of "${r.tag}" never received data from a source; there is nothing to bring in service`);
    await this.detachTarget(t);
    const oldSource = r.source;
    const me = r.members.find((m) => m.node === this.node);
    const targets: TargetConfig[] = [];
    for (const m of r.members) {
      if (m.node === this.node) continue;
      let slot = r.slots[m.node];
      if (slot === undefined) {
        slot = freeSlot(r.slots, MAX_TARGETS);
        if (slot < 0) continue;
        r.slots[m.node] = slot;
      }
      // The old source is replicated to the way it replicated to us.
      const mode = m.node === oldSource ? (me?.mode ?? 'sync') : m.mode;
      targets.push({ node: m.node, address: m.address, mode, slot, paused: false });
    }
    r.role = 'source';
    r.targets = targets;
    r.source = null;
    r.inService = true;
    r.lastOwner = true;
    r.dataCorrupt = false;
    r.consistent = true;
    // Every other node starts from what we both held when we last agreed: our (empty) bitmap for it is
    // complete from the generation we hold now, and our first write starts a new one.
    for (const m of targets) if (r.generations.peers[m.node] === undefined) r.generations.peers[m.node] = r.generations.current;
    const rollback = rewindTo === undefined ? undefined : async (mirror: SourceMirror) => {
      const journal = t.rewind.requireJournal();
      const view = new RewoundView(t.store, journal, journal.overlayAt(rewindTo), rewindTo, mirror.size);
      try {
        for (const run of view.changedRuns()) {
          await mirror.write(run.offset, [await view.read(run.offset, run.length)], false);
          if (rolledBack) rolledBack.bytes += run.length;
        }
        await mirror.flush();
        if (rolledBack) rolledBack.blocks = view.changedBlocks;
      } finally {
        await view.close();
      }
      this.log.warn(`${r.tag}: rewound to ${isoMicro(rewindTo)}: ${view.changedBlocks} blocks written back from the rewind log`);
    };
    const entry = await this.openSource(r, 'in service', t.store, rollback);
    // A source keeps no rewind log; when this node is a target again its log starts afresh.
    await t.rewind.remove();
    delete r.rewindLogKept;
    this.persist();
    this.log.warn(`${r.tag}: in service on ${this.node} (${why})`);
    return entry;
  }

  /** The failover rules toward each target of one source copy. */
  private policyFor(entry: SourceEntry): MirrorPolicy {
    const r = entry.record;
    const gens = () => r.generations;
    // Labels moved in the write stream and not yet acknowledged (see UnconfirmedLabels).
    const unconfirmed = new UnconfirmedLabels();
    const advance = (peer: string, label: string) => {
      unconfirmed.advanced(peer, r.generations.peers[peer], label);
      r.generations.peers[peer] = label;
    };
    return {
      hello: () => ({
        generations: gens(),
        members: [
          { node: this.node, address: this.advertisedAddress, mode: 'sync' },
          ...(entry.mirror?.links ?? []).map((l): MemberInfo => ({ node: l.config.node, address: l.config.address, mode: l.config.mode })),
        ],
        sourceAddress: this.advertisedAddress,
        fileSystem: r.fileSystem ?? null,
      }),

      admit: async (link, welcome): Promise<'go' | LinkBlock> => {
        const peer = link.config.node;
        const decision = admitPeer(unconfirmed.decide(gens(), this.node, welcome.generations, peer), entry.phase);
        if (decision.action === 'refuse') {
          if (decision.why === 'split-brain') return splitBrain(r.tag, this.node, peer);
          return { state: 'refused', message: `${peer} holds newer data of "${r.tag}" than this node (it changed since they last agreed, this node did not); nothing was resynced. Take the mirror out of service here and bring it in service on ${peer}` };
        }
        if (decision.extent === 'full') {
          this.log.info(`${r.tag}: ${peer}'s copy is older than this node's bitmap covers; full resync`);
          await entry.mirror!.log.setAll(link.slot);
        }
        if (welcome.dirty) await entry.mirror!.log.mergeDirty(link.slot, Buffer.from(welcome.dirty, 'base64'));
        if (decision.goInService && entry.phase === 'starting') await this.goInService(entry);
        return 'go';
      },

      peerIsSource: (link, refusal): LinkBlock | null => {
        const peer = link.config.node;
        const verdict = refusal.generations ? decide(gens(), this.node, refusal.generations, peer) : null;
        const decision = onPeerIsSource(verdict, entry.phase, refusal.inService === true);
        if (decision.action === 'demote') {
          // Manual, scenario 1: the old source comes back, finds the new one, drops last_owner and is
          // resynced from it (partially: both bitmaps).
          void this.demote(entry, peer, false, `${peer} took over while this node was away`).catch((e: Error) => this.log.error(`demoting ${r.tag}: ${e.message}`));
          return null;
        }
        switch (decision.why) {
          case 'no-generations': return { state: 'refused', message: refusal.message };
          case 'split-brain': return splitBrain(r.tag, this.node, peer);
          case 'peer-newer-in-service':
            return { state: 'refused', message: `${peer} is in service with newer data of "${r.tag}" while this node is too; take it out of service here (tandem outofservice ${r.tag}) to become its target` };
          case 'peer-older-in-service':
            return { state: 'refused', message: `${peer} is in service too, with data this node has changed since they last agreed; take it out of service there (tandem outofservice ${r.tag}) to make it a target of this node` };
          case 'peer-older-starting':
            return { state: 'refused', message: `${peer} is starting as a source of "${r.tag}" with older data; it becomes a target when it sees this node` };
        }
      },

      inSync: (link) => {
        advance(link.config.node, r.generations.current);
        this.persist();
        return r.generations.current;
      },

      noticeSettled: (link, label, acknowledged) => {
        if (acknowledged) unconfirmed.acknowledged(link.config.node, label);
      },

      beforeWrite: () => {
        if (entry.rotating) return entry.rotating;
        const g = r.generations;
        const links = entry.mirror?.links ?? [];
        if (!needsNewGeneration(g, links)) return null;
        entry.rotating = (async () => {
          // The first write after losing a target: from here our data differs from what it holds.
          const next = rotate(g);
          r.generations = next;
          for (const l of links) if (l.mirroring) advance(l.config.node, next.current);
          this.persist();
          for (const l of links) if (l.mirroring) l.sendGeneration(next.current, true);
          this.log.info(`${r.tag}: new generation ${next.current}`);
        })().finally(() => {
          entry.rotating = null;
        });
        return entry.rotating;
      },

      switchover: async (link): Promise<Switched> => {
        const peer = link.config.node;
        if (entry.phase !== 'in service') return { ok: false, message: `the mirror is not in service on ${this.node}` };
        const status = link.status();
        if (status.state !== 'mirroring') {
          return { ok: false, message: `${peer} is not in sync (${status.status}, ${status.percentSynced}% synced); switchover to it is refused until its resync completes` };
        }
        // Out of service here: the file system unmounted (refused while busy), no new writes, then
        // everything written reaches the new source.
        try {
          await this.takeDownFileSystem(entry);
        } catch (err) {
          return { ok: false, message: `${r.fileSystem?.mountPoint ?? 'the file system'} on ${this.node} could not be unmounted: ${(err as Error).message}` };
        }
        await entry.server?.close();
        entry.server = null;
        entry.phase = 'out of service';
        await entry.mirror!.flush();
        const drained = await link.drain(30_000);
        if (!drained || !link.mirroring) {
          await this.goInService(entry);
          return { ok: false, message: `${peer} did not acknowledge every write in time; the mirror stays in service on ${this.node}` };
        }
        for (const l of entry.mirror!.links) if (l !== link) await l.drain(10_000);
        r.generations.peers[peer] = r.generations.current;
        return { ok: true, message: `${this.node} is out of service`, generations: r.generations };
      },

      afterSwitchover: (link) => {
        void this.demote(entry, link.config.node, true, 'switchover').catch((e: Error) => this.log.error(`demoting ${r.tag}: ${e.message}`));
      },
    };
  }

  // ---- actions (used by the control handlers) --------------------------------------------------

  /** Bring the mirror in service on this node: start a returning source, switch over, or fail over. */
  async inService(tag: string, force: boolean, rewindTo?: number): Promise<string> {
    if (rewindTo !== undefined) return this.recoverRewound(tag, rewindTo);
    const s = this.sources.get(tag);
    if (s) {
      if (s.phase === 'in service') {
        if (s.record.dataCorrupt) {
          s.record.dataCorrupt = false;
          this.persist();
        }
        return `${tag} is already in service on ${this.node}`;
      }
      if (force) {
        if (!s.mirror) s.mirror = await this.openMirror(s);
        await this.goInService(s);
        return `${tag} forced in service on ${this.node}; data_corrupt cleared`;
      }
      if (s.phase === 'out of service') {
        s.mirror = await this.openMirror(s);
        s.phase = 'starting';
        if (s.mirror.links.length === 0) await this.goInService(s);
        else this.startProbe(s);
      }
      if (s.phase === 'starting') {
        const outcome = await new Promise<string | null>((resolve) => s.startWaiters.push(resolve));
        if (outcome !== null) throw new RpcError(outcome);
      }
      await s.resourceReady;
      if (s.resourceError) throw new RpcError(`${tag} is in service on ${this.node}, but ${s.resourceError}`);
      return `${tag} in service on ${this.node}`;
    }
    const t = this.targets.get(tag);
    if (!t) throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    const source = t.record.source ?? 'the source';
    const may = mayGoInService(this.copyState(t), force);
    if (!may.ok) {
      switch (may.refusal) {
        case 'force-while-source-connected':
          throw new RpcError(`${t.connected} is connected and in service; force is only for when it is gone. Use a switchover: tandem inservice ${tag}`);
        case 'resyncing':
          throw new RpcError(`this node (${this.node}) is being resynced from ${t.connected}; a switchover to it is refused until the resync completes`);
        case 'incomplete-copy':
          throw new RpcError(`this node (${this.node}) was being resynced when it lost ${source}; its copy is incomplete, so it cannot be brought in service (manual, scenario 2). Bring the mirror in service on ${source}`);
        case 'source-not-seen':
          throw new RpcError(`this node (${this.node}) has not seen ${source} since it started, so it cannot know whether ${source} wrote after this node went down (manual, scenario 4). Start ${source}: it goes in service and resyncs this node. If ${source} is lost for good: mirror_action ${tag} force ${this.node}`);
        case 'no-data':
          throw new RpcError(`this node's copy of "${tag}" never received data from a source; there is nothing to bring in service`);
      }
    }
    if (may.way === 'switchover') {
      const answer = await this.replication.requestSwitchover(tag);
      if (!answer.ok) throw new RpcError(`switchover refused by ${t.connected}: ${answer.message}`);
      if (answer.generations && answer.generations.current !== t.record.generations.current) {
        throw new RpcError(`${t.connected} went out of service but this node does not hold its latest generation; bring it back in service there`);
      }
      const promoted = await this.promote(t, `switchover from ${source}`);
      await promoted.resourceReady;
      if (promoted.resourceError) throw new RpcError(`${tag} switched over to ${this.node}, but ${promoted.resourceError}`);
      return `${tag} switched over: in service on ${this.node}; ${source} is now its target`;
    }
    await this.promote(t, force ? 'forced' : `failover from ${source}`);
    return `${tag} in service on ${this.node} (${force ? 'forced' : `failover from ${source}`})`;
  }

  /**
   * The manual's rewind recovery "Move applications to the target": the switchover to this target,
   * whose data then goes back to `time` before it goes in service; the old source becomes its target and
   * gets only the chunks that differ. Needs the mirror resumed and this target in sync (a switchover).
   */
  private async recoverRewound(tag: string, time: number): Promise<string> {
    const t = this.targets.get(tag);
    if (!t) {
      if (this.sources.has(tag)) throw new RpcError(`this node (${this.node}) is the source of "${tag}"; run the rewind recovery on the target whose rewound data is to be used`);
      throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    }
    t.rewind.checkTime(time);
    const source = t.connected ?? t.record.source ?? 'the source';
    if (!t.connected) {
      throw new RpcError(`moving applications to ${this.node} is a switchover, which needs the mirror resumed: on ${source} run mirror_action ${tag} resume ${source} ${this.node}, wait until it is Fully Operational, then run this again (the rewind log keeps the point)`);
    }
    if (!t.record.consistent) throw new RpcError(`this node (${this.node}) is being resynced from ${t.connected}; wait until the mirror is Fully Operational, then run this again`);
    await t.rewind.closeView();
    const answer = await this.replication.requestSwitchover(tag);
    if (!answer.ok) throw new RpcError(`switchover refused by ${source}: ${answer.message}`);
    if (answer.generations && answer.generations.current !== t.record.generations.current) {
      throw new RpcError(`${source} went out of service but this node does not hold its latest generation; bring it back in service there`);
    }
    const rolledBack = { blocks: 0, bytes: 0 };
    const promoted = await this.promote(t, `rewind to ${isoMicro(time)}, switchover from ${source}`, time, rolledBack);
    await promoted.resourceReady;
    const done = `${tag} rewound to ${isoMicro(time)} and switched over: in service on ${this.node}; ${rolledBack.blocks} blocks (${rolledBack.bytes} bytes) written back, and only their chunks go to ${source}, now its target`;
    if (promoted.resourceError) throw new RpcError(`${done}, but ${promoted.resourceError}`);
    return done;
  }

  async outOfService(tag: string): Promise<string> {
    const s = this.sources.get(tag);
    if (!s) {
      if (this.targets.has(tag)) throw new RpcError(`"${tag}" is not in service on this node (${this.node}): it is a target here`);
      throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    }
    if (s.phase === 'out of service') return `${tag} is already out of service on ${this.node}`;
    await this.takeDownFileSystem(s); // refused while busy: nothing changes
    await this.closeSource(s);
    s.phase = 'out of service';
    s.record.inService = false;
    this.persist();
    this.finishStart(s, `${tag} was taken out of service`);
    return `${tag} out of service on ${this.node}; its bitmap keeps what changed`;
  }

  /** Split brain: this node's copy gives way to `survivor`'s; only its diverged chunks are rewritten. */
  async resolve(tag: string, survivor: string): Promise<string> {
    if (survivor === this.node) {
      throw new RpcError(`run this on the node whose changes are to be discarded, not on the survivor (${survivor}): there, run tandem resolve ${tag} --survivor ${survivor}`);
    }
    const s = this.sources.get(tag);
    if (!s) {
      if (this.targets.has(tag)) throw new RpcError(`this node (${this.node}) is already a target of "${tag}"; nothing to resolve here`);
      throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    }
    const members = s.mirror?.links.map((l) => l.config.node) ?? s.record.targets.map((t) => t.node);
    if (!members.includes(survivor)) throw new RpcError(`"${survivor}" is not a node of mirror "${tag}"; nodes: ${members.join(', ') || 'none'}`);
    // Our changes since we last agreed stay recorded in our bitmap for the survivor, so its resync
    // overwrites exactly those chunks (together with the ones it changed).
    s.record.generations = discardToCommonAncestor(s.record.generations, survivor);
    await this.demote(s, survivor, false, `split brain resolved in favour of ${survivor}`);
    return `${tag}: this node (${this.node}) is now a target of ${survivor}; its diverged chunks will be resynced from ${survivor}`;
  }

  /** What the failover rules need to know about a copy here. */
  copyState(e: SourceEntry | TargetEntry): CopyState {
    if ('phase' in e) return { role: 'source', phase: e.phase, dataCorrupt: e.record.dataCorrupt };
    return { role: 'target', connectedSource: e.connected, consistent: e.record.consistent, lostSourceInSync: e.lostSourceInSync, hasData: e.record.size > 0 };
  }

  private rewindStatus(t: TargetEntry): RewindLogStatus {
    const j = t.rewind.journal;
    const v = t.rewind.view;
    return {
      dir: t.record.logdir, maxBytes: t.record.logmax, kept: j !== null, entries: j?.entries ?? 0, bytes: j?.totalBytes ?? 0,
      start: j?.startTime ?? null, end: j?.endTime ?? null, bookmarks: j?.bookmarks().length ?? 0, error: t.rewind.error,
      view: v ? { time: v.time, socket: v.socket, mountPoint: v.mountPoint } : null,
    };
  }

  status(tag?: string): MirrorStatus[] {
    const out: MirrorStatus[] = [];
    for (const s of this.sources.values()) {
      if (tag && s.record.tag !== tag) continue;
      const r = s.record;
      const m = s.mirror;
      out.push({
        tag: r.tag, role: 'source', node: this.node, disk: r.disk, size: r.size,
        state: s.phase, lastOwner: r.lastOwner, dataCorrupt: r.dataCorrupt, generation: r.generations.current,
        exportSocket: s.server ? this.paths.exportSocket(r.tag) : null,
        bitmap: { file: r.bitmap, chunkSize: r.chunkSize, chunks: Math.ceil(r.size / r.chunkSize) },
        asyncLimit: m?.asyncLimit ?? r.asyncLimit, compression: m?.compression ?? r.compression,
        rewindLog: { dir: r.logdir, maxBytes: r.logmax },
        fileSystem: r.fileSystem ? { ...r.fileSystem, device: s.resource?.device ?? null, mounted: s.resource !== null, error: s.resourceError } : null,
        targets: m ? m.links.map((l) => l.status()) : [],
        asyncAllowed: r.asyncAllowed !== false,
      });
    }
    for (const t of this.targets.values()) {
      if (tag && t.record.tag !== tag) continue;
      const r = t.record;
      out.push({
        tag: r.tag, role: 'target', node: this.node, disk: r.disk, size: t.store.size,
        state: t.connected ? (r.consistent ? 'target' : 'resyncing') : r.consistent ? 'target (source not connected)' : 'out of sync',
        lastOwner: false, dataCorrupt: false, generation: r.generations.current, consistent: r.consistent,
        exportSocket: t.view ? this.paths.targetExportSocket(r.tag) : null,
        bitmap: { file: r.bitmap, chunkSize: r.chunkSize, chunks: r.size ? Math.ceil(r.size / r.chunkSize) : 0 },
        asyncLimit: r.asyncLimit, compression: r.compression, rewindLog: this.rewindStatus(t),
        fileSystem: r.fileSystem ? { ...r.fileSystem, device: null, mounted: false, error: '' } : null,
        targets: [], source: t.connected, lastSource: r.source,
      });
    }
    if (tag && out.length === 0) throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    return out;
  }
}

function splitBrain(tag: string, node: string, peer: string): LinkBlock {
  return {
    state: 'split-brain',
    message: `split brain: ${node} and ${peer} both changed "${tag}" while apart; nothing is resynced until you choose the survivor. On the node whose changes are to be discarded run: tandem resolve ${tag} --survivor NODE`,
  };
}

function normaliseAddress(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
