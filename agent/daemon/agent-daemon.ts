// `tandem-agent run`: the node daemon. Holds this node's copies of its mirrors — as source (NBD export +
// links to targets, source-copy.ts) or as target (the volume a source replicates into, target-copy.ts) —
// persists them, carries out the failover rules (failover-rules.ts, source-policy.ts, role-changes.ts,
// service-actions.ts) and answers the control socket (control-handlers.ts, through actions.ts).
import fs from 'node:fs';
import path from 'node:path';
import { FileBlockStore, OpenError } from '../storage/file-store.js';
import type { BlockStore } from '../storage/block-store.js';
import { IntentLog, BitmapFileError } from '../intent-log/bitmap.js';
import { makeExport } from '../nbd/export.js';
import { NbdServer, SimpleCatalog } from '../nbd/server.js';
import { SourceMirror } from '../mirror/source-mirror.js';
import { probeExpired } from '../mirror/failover-rules.js';
import { decide } from '../mirror/generations.js';
import { ReplicationListener, type Admission } from '../replication/target-server.js';
import { loadNodeCredentials, type NodeCredentials } from '../replication/transport.js';
import type { Hello, Switched } from '../replication/wire.js';
import { ControlServer, RpcError } from '../control/json-rpc.js';
import type { Logger } from '../log.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { TANDEM_VERSION } from '../../common/version.js';
import { agentPaths, ensureDirs, readJson, writeJsonAtomic, type AgentPaths } from './home.js';
import { normaliseRecord, writeFlagFiles, type MirrorRecord, type SourceRecord, type StateFile, type TargetRecord } from './mirror-record.js';
import { controlHandlers } from './control-handlers.js';
import { mirroredDiskUnder, type MirroredDisk } from '../rewind/log-location.js';
import { ResourceDbStore } from './resource-db-store.js';
import { SourceCopy } from './source-copy.js';
import { TargetCopy } from './target-copy.js';
import { policyFor } from './source-policy.js';
import { sourceStatus, targetStatus } from './copy-status.js';
import { demote, promote } from './role-changes.js';
import { inService, outOfService, resolve } from './service-actions.js';
import type { AgentInfo, DaemonActions } from './actions.js';
import type { DaemonCore } from './daemon-core.js';
import { ClusterManager } from '../cluster/manager.js';
import { CommPaths } from '../cluster/commpaths.js';
import { loadSettings, type ClusterSettings } from '../cluster/settings.js';
import { clusterActions } from './cluster-hook.js';

export { DEFAULT_CHUNK_SIZE, DEFAULT_ASYNC_LIMIT } from './mirror-record.js';
export const DEFAULT_REPLICATION_PORT = 7500;
/** How long a returning source looks for its targets before it sets data_corrupt (manual, scenario 3). */
const PROBE_MS = Number(process.env.TANDEM_PROBE_MS) > 0 ? Number(process.env.TANDEM_PROBE_MS) : 10_000;

export interface DaemonOptions {
  node: string;
  replicationHost: string;
  replicationPort: number;
  paths?: AgentPaths;
  /** Plain TCP between agents instead of mutual TLS (benchmarks, trusted lab networks only). */
  insecurePlaintext?: boolean;
  /** The heartbeat listener (cluster manager); default: the replication host, its port + 1. */
  heartbeatHost?: string;
  heartbeatPort?: number;
  /** False: --heartbeat was not given, so a taken default port falls back to any free one. */
  heartbeatExplicit?: boolean;
  /** The cluster settings; default: tandem.conf and the environment (loadSettings). */
  clusterSettings?: ClusterSettings;
}

export class AgentDaemon implements DaemonActions, DaemonCore {
  readonly paths: AgentPaths;
  private readonly stateFile: string;
  private readonly sources = new Map<string, SourceCopy>();
  /** Out-of-service copies being demoted to a target of the source that went in service elsewhere. */
  private readonly givingWay = new WeakSet<SourceCopy>();
  private readonly targets = new Map<string, TargetCopy>();
  private replication!: ReplicationListener;
  private creds: NodeCredentials | null = null;
  private control: ControlServer | null = null;
  /** This node's copy of the resource database (opened in start()). */
  resourceDb!: ResourceDbStore;
  replicationPort = 0;
  /** The cluster manager (heartbeats, automatic failover); started in start(). */
  cluster: ClusterManager | null = null;
  heartbeatPort = 0;

  constructor(private readonly options: DaemonOptions, readonly log: Logger) {
    this.paths = options.paths ?? agentPaths();
    this.stateFile = path.join(this.paths.stateDir, 'mirrors.json');
  }

  private makeListener(): ReplicationListener {
    return new ReplicationListener({
      admit: (tag, hello, remote) => this.admitSource(tag, hello, remote),
      onSourceChange: (tag, source) => {
        const t = this.targets.get(tag);
        if (source) t?.sourceConnected(source);
        else t?.sourceLost();
      },
      onSourceHasOurBits: (tag, source) => {
        const t = this.targets.get(tag);
        const slot = t?.record.slots[source];
        if (t?.log && slot !== undefined && t.log.dirtyCount(slot) > 0) {
          void t.log.clearAll(slot).catch((e: Error) => this.log.warn(`clearing the bitmap of ${tag}: ${e.message}`));
        }
      },
      onGeneration: (tag, source, notice) => this.targets.get(tag)?.noticeApplied(source, notice),
      onApplied: (tag, _seq, bytes) => {
        const t = this.targets.get(tag);
        if (t) t.appliedBytes += bytes;
      },
    }, this.options.node, this.log.child('[replication]'), this.creds);
  }

  get node(): string {
    return this.options.node;
  }

  get runDir(): string {
    return this.paths.runDir;
  }

  /** The replication address to tell peers; an empty host means "the address I connect from". */
  get advertisedAddress(): string {
    const h = this.options.replicationHost;
    if (h === '0.0.0.0' || h === '::' || h === '') return `:${this.replicationPort}`;
    return `${h.includes(':') ? `[${h}]` : h}:${this.replicationPort}`;
  }

  async start(): Promise<void> {
    ensureDirs(this.paths);
    // Bad settings stop the agent before it serves anything: the error names the setting and the fix.
    const settings = this.options.clusterSettings ?? loadSettings();
    const commPaths = CommPaths.in(this.paths.stateDir);
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
    const records = state.mirrors.map(normaliseRecord);
    // Listen first: a returning source's peers may be waiting to tell it what happened meanwhile.
    for (const r of records) {
      try {
        if (r.role === 'target') this.openTarget(r);
      } catch (err) {
        this.log.error(`target volume for "${r.tag}" (${r.disk}) could not be opened: ${(err as Error).message}`);
      }
    }
    this.replicationPort = await this.replication.listen(this.options.replicationHost, this.options.replicationPort);
    for (const r of records) {
      if (r.role !== 'source') continue;
      try {
        await this.openSource(r, r.inService ? 'starting' : 'out of service');
      } catch (err) {
        this.log.error(`mirror "${r.tag}" on ${r.disk} could not be started: ${(err as Error).message}`);
      }
    }
    await this.startCluster(settings, commPaths);
    this.control = new ControlServer(controlHandlers(this), this.log.child('[control]'));
    await this.control.listen(this.paths.controlSocket);
    this.log.info(`node ${this.node}: control ${this.paths.controlSocket}, replication ${this.options.replicationHost}:${this.replicationPort}`);
  }

  private async startCluster(settings: ClusterSettings, commPaths: CommPaths): Promise<void> {
    this.cluster = new ClusterManager({
      node: this.node, settings, creds: this.creds, commPaths, log: this.log.child('[cluster]'),
      actions: clusterActions({
        node: this.node, log: this.log,
        copies: () => this.copies(), sourceCopy: (t) => this.sourceCopy(t), targetCopy: (t) => this.targetCopy(t),
        resourceDatabase: () => this.resourceDb?.database ?? null,
        dropSource: (tag) => {
          this.replication.disconnect(tag);
          this.targets.get(tag)?.sourceLost();
        },
        closeSource: (c) => this.closeSource(c), inService: (t, f) => this.inService(t, f), outOfService: (t) => this.outOfService(t),
      }),
    });
    const host = this.options.heartbeatHost ?? this.options.replicationHost;
    const port = this.options.heartbeatPort ?? (this.replicationPort + 1) % 65536;
    try {
      this.heartbeatPort = await this.cluster.start(host, port);
    } catch (err) {
      if (this.options.heartbeatExplicit) throw err;
      this.log.warn(`${(err as Error).message}; heartbeats use a free port instead (give --heartbeat HOST:PORT to fix it)`);
      this.heartbeatPort = await this.cluster.start(host, 0);
    }
  }

  async stop(): Promise<void> {
    // First: the peers hear of the graceful stop, so it never counts as a failure.
    await this.cluster?.stop().catch((e: Error) => this.log.warn(`cluster: ${e.message}`));
    await this.control?.close();
    for (const s of this.sources.values()) await this.closeSource(s);
    this.sources.clear();
    await this.replication?.close();
    for (const t of this.targets.values()) await t.close();
    this.targets.clear();
  }

  info(): AgentInfo {
    // The database version rides along with every status push, so consoles notice another console's save;
    // bitmapDir: where a bitmap file goes by default, so the console's wizards can show the real path.
    return {
      node: this.node, version: TANDEM_VERSION, replication: `${this.options.replicationHost}:${this.replicationPort}`,
      resourceDatabaseVersion: this.resourceDb.database.version, bitmapDir: this.paths.bitmapDir,
    };
  }

  /** Writes every copy's record (and the manual's flag files) durably. */
  persist(removedTags: readonly string[] = []): void {
    const mirrors: MirrorRecord[] = [];
    for (const s of this.sources.values()) mirrors.push(s.toRecord());
    for (const t of this.targets.values()) mirrors.push(t.record);
    writeJsonAtomic(this.stateFile, { version: 2, mirrors } satisfies StateFile);
    writeFlagFiles(this.paths.stateDir, mirrors, removedTags);
  }

  // ---- lookups ---------------------------------------------------------------------------------

  sourceCopy(tag: string): SourceCopy | undefined {
    return this.sources.get(tag);
  }

  targetCopy(tag: string): TargetCopy | undefined {
    return this.targets.get(tag);
  }

  copies(): Array<SourceCopy | TargetCopy> {
    return [...this.sources.values(), ...this.targets.values()];
  }

  holds(copy: TargetCopy): boolean {
    return this.targets.get(copy.tag) === copy;
  }

  exportSocket(tag: string): string {
    return this.paths.targetExportSocket(tag);
  }

  diskInUse(disk: string): string | null {
    const real = (p: string) => (fs.existsSync(p) ? fs.realpathSync(p) : p);
    const wanted = real(disk);
    for (const c of this.copies()) if (real(c.record.disk) === wanted) return `mirror "${c.tag}" (${c.record.role})`;
    return null;
  }

  /** The disks this node's mirrors use, for refusing a rewind log on one of them. */
  private mirroredDisks(): MirroredDisk[] {
    const out: MirroredDisk[] = [];
    for (const s of this.sources.values()) out.push({ tag: s.tag, disk: s.record.disk, device: s.resource?.device ?? null, fileSystem: s.record.fileSystem ?? null });
    for (const t of this.targets.values()) out.push({ tag: t.tag, disk: t.record.disk, fileSystem: t.record.fileSystem ?? null });
    return out;
  }

  refuseLogDir(logdir: string): string | null {
    const why = mirroredDiskUnder(logdir, this.mirroredDisks());
    return why ? `logdir ${logdir} ${why}; the rewind log cannot be on a mirrored disk: choose a folder on another disk (ideally a separate physical disk from any mirror)` : null;
  }

  private openStore(disk: string): FileBlockStore {
    try {
      return FileBlockStore.open(disk, { readOnly: false });
    } catch (err) {
      if (err instanceof OpenError) throw new RpcError(err.message);
      throw err;
    }
  }

  // ---- target copies -------------------------------------------------------------------------

  openTarget(record: TargetRecord, store?: BlockStore): TargetCopy {
    const s = store ?? this.openStore(record.disk);
    let copy: TargetCopy;
    try {
      copy = new TargetCopy(record, s, this);
    } catch (err) {
      void s.close();
      throw err;
    }
    this.targets.set(record.tag, copy);
    copy.setView(true);
    void copy.syncRewindLog();
    return copy;
  }

  acceptTarget(record: TargetRecord): TargetCopy {
    const copy = this.openTarget(record);
    this.persist();
    return copy;
  }

  async releaseTarget(t: TargetCopy): Promise<void> {
    await t.rewind.remove(); // its history ends with the copy
    this.targets.delete(t.tag);
    await t.close();
    if (t.record.bitmap) fs.rmSync(t.record.bitmap, { force: true });
    this.persist([t.tag]);
  }

  async detachTarget(t: TargetCopy): Promise<void> {
    this.replication.disconnect(t.tag);
    this.targets.delete(t.tag);
    await t.detach();
  }

  /** A source connects: this node's answer (its copy's generations, or why not). */
  private admitSource(tag: string, hello: Hello, remoteAddress: string): Admission {
    const s = this.sources.get(tag);
    if (s && s.phase.name === 'out of service' && hello.source !== this.node) {
      // Out of Service here, and the connecting source holds this node's data or newer: it was brought in
      // service there (the manual: a switchover), so this copy becomes its target. The link retries.
      const verdict = decide(s.record.generations, this.node, hello.generations, hello.source);
      if (verdict === 'peer-newer' || verdict === 'partial') {
        if (!this.givingWay.has(s)) {
          this.givingWay.add(s);
          void this.demote(s, hello.source, false, `${hello.source} went in service while this node was out of service`)
            .catch((e: Error) => this.log.error(`demoting ${tag}: ${e.message}`))
            .finally(() => this.givingWay.delete(s));
        }
        return { message: `this node (${this.node}) is out of service and is becoming a target of ${hello.source}; connect again` };
      }
    }
    if (s) {
      return {
        message: `this node (${this.node}) is itself the source of "${tag}" (${s.phaseName})`,
        role: 'source', inService: s.phase.name === 'in service', generations: s.record.generations,
      };
    }
    const t = this.targets.get(tag);
    if (!t) return { message: `this node (${this.node}) has no target volume for mirror "${tag}"; on it run: tandem accept ${tag} --disk DISK` };
    const refused = t.learnFromHello(hello, normaliseAddress(remoteAddress));
    if (refused) return { message: refused };
    const r = t.record;
    const slot = r.slots[hello.source];
    const dirty = t.log && slot !== undefined && t.log.dirtyCount(slot) > 0 ? (t.log.slots[slot] as { bytes: Buffer }).bytes.toString('base64') : '';
    return { store: t.store, welcome: { generations: r.generations, consistent: r.consistent, dirty }, journal: t.rewind.journal };
  }

  // ---- source copies -------------------------------------------------------------------------

  async openSource(record: SourceRecord, phase: 'in service' | 'starting' | 'out of service', store?: BlockStore, prepare?: (mirror: SourceMirror) => Promise<void>): Promise<SourceCopy> {
    const copy = new SourceCopy(record, () => this.persist(), this.log);
    this.sources.set(record.tag, copy);
    if (phase === 'out of service') {
      if (store) await store.close();
      return copy;
    }
    let mirror: SourceMirror;
    try {
      mirror = await this.openMirror(copy, store);
    } catch (err) {
      this.sources.delete(record.tag);
      throw err;
    }
    if (prepare) await prepare(mirror);
    if (phase === 'in service' || mirror.links.length === 0) await this.goInService(copy, mirror);
    else this.startProbe(copy, mirror);
    return copy;
  }

  async createSource(record: SourceRecord): Promise<SourceCopy> {
    const copy = await this.openSource(record, 'in service');
    this.persist();
    return copy;
  }

  async openMirror(copy: SourceCopy, store?: BlockStore): Promise<SourceMirror> {
    const record = copy.record;
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
      compression: record.compression, policy: policyFor(copy, this), size: record.size, creds: this.creds,
    }, this.log);
    for (const t of record.targets) mirror.addTarget({ ...t });
    return mirror;
  }

  /** Starts the NBD export: the mirror is in service on this node. */
  async goInService(copy: SourceCopy, mirror = copy.mirror as SourceMirror): Promise<void> {
    const tag = copy.tag;
    const server = new NbdServer(new SimpleCatalog([makeExport(tag, mirror, `Tandem mirror ${tag} of ${copy.record.disk}`)]), this.log.child(`[${tag} nbd]`));
    await server.listenUnix(this.paths.exportSocket(tag));
    copy.wentInService(mirror, server);
    this.log.info(`${tag}: in service on ${this.node}`);
    copy.bringUpFileSystem(this.paths.exportSocket(tag), this.paths.runDir);
  }

  /** A returning source serves nothing until a target confirms it still holds the newest data. */
  startProbe(copy: SourceCopy, mirror: SourceMirror): void {
    const tag = copy.tag;
    copy.lookForTargets(mirror);
    // A socket left by a crash must not look like a device in service.
    fs.rmSync(this.paths.exportSocket(tag), { force: true });
    this.log.info(`${tag}: looking for its targets before going in service`);
    copy.setProbeTimer(setTimeout(() => {
      if (!probeExpired(copy.phaseName).setDataCorrupt || this.sources.get(tag) !== copy) return;
      // Manual, scenario 3: it could not reach a target, so it does not know whether a target took
      // over meanwhile. It stays out of service until a target answers or an administrator forces it.
      this.log.warn(`${tag}: no target reachable; data_corrupt set, not going in service. If this node was certainly the last source, run: mirror_action ${tag} force ${this.node}`);
      copy.noTargetAnswered(`no target of "${tag}" answered within ${PROBE_MS / 1000} s, so this node cannot tell whether another took over (data_corrupt is set). If you are certain ${this.node} was the last source, run: mirror_action ${tag} force ${this.node}`);
    }, PROBE_MS));
  }

  async closeSource(s: SourceCopy): Promise<void> {
    await s.takeDownFileSystem().catch((e: Error) => this.log.error(`${s.tag}: ${e.message}`));
    const server = s.server;
    const mirror = s.mirror;
    s.closed();
    await server?.close();
    await mirror?.close();
  }

  async deleteSource(s: SourceCopy): Promise<void> {
    await this.closeSource(s);
    this.sources.delete(s.tag);
    if (s.record.bitmap) fs.rmSync(s.record.bitmap, { force: true });
    this.persist([s.tag]);
  }

  forgetSource(copy: SourceCopy): void {
    if (this.sources.get(copy.tag) === copy) this.sources.delete(copy.tag);
  }

  requestSwitchover(tag: string): Promise<Switched> {
    return this.replication.requestSwitchover(tag);
  }

  // ---- role changes and service actions (role-changes.ts, service-actions.ts) ------------------

  demote(copy: SourceCopy, newSource: string, consistent: boolean, why: string): Promise<void> {
    return demote(this, copy, newSource, consistent, why);
  }

  promote(t: TargetCopy, why: string, rewindTo?: number, rolledBack?: { blocks: number; bytes: number }): Promise<SourceCopy> {
    return promote(this, t, why, rewindTo, rolledBack);
  }

  inService(tag: string, force: boolean, rewindTo?: number): Promise<string> {
    return inService(this, tag, force, rewindTo);
  }

  outOfService(tag: string): Promise<string> {
    return outOfService(this, tag);
  }

  resolve(tag: string, survivor: string): Promise<string> {
    return resolve(this, tag, survivor);
  }

  status(tag?: string): MirrorStatus[] {
    const out: MirrorStatus[] = [];
    for (const s of this.sources.values()) if (!tag || s.tag === tag) out.push(sourceStatus(s, this.node, this.paths));
    for (const t of this.targets.values()) if (!tag || t.tag === tag) out.push(targetStatus(t, this.node, this.paths));
    if (tag && out.length === 0) throw new RpcError(`no mirror "${tag}" on this node (${this.node}); see: tandem status`);
    return out;
  }
}

function normaliseAddress(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
