// The source's side of one target: the connection, what was sent and acknowledged, the resync pass,
// and the bits of the intent log that belong to this target.
import crypto from 'node:crypto';
import type net from 'node:net';
import { connectReplication } from '../replication/transport.js';
import { BitSet } from '../intent-log/bitmap.js';
import { BufferPool } from '../storage/buffer-pool.js';
import type { Logger } from '../log.js';
import {
  encodeGeneration, encodeHashRequest, encodeHello, encodeSeqFrame, encodeSwitched, FrameAssembler, FrameType, HASH_LENGTH,
  MAX_HASH_CHUNKS, pooledWriteFrame, PROTOCOL, PROTOCOL_VERSION, ProtocolError, setFrameSeq, WRITE_HEADER_LENGTH, type Welcome,
} from '../replication/wire.js';
import { compressWrite } from './compress.js';
import type { MirrorCore, TargetConfig } from './mirror-core.js';
import type { LinkState, TargetStatus } from '../../common/mirror-status.js';

export type { TargetConfig } from './mirror-core.js';

/**
 * A connected target that acknowledges nothing for this long while messages wait is given up (the
 * connection is closed, the bitmap takes over): a cut link or a frozen node sends no reset, and TCP
 * alone would keep sync writers waiting for many minutes. TANDEM_ACK_TIMEOUT_MS overrides it.
 */
const ACK_TIMEOUT_MS = Number(process.env.TANDEM_ACK_TIMEOUT_MS) > 0 ? Number(process.env.TANDEM_ACK_TIMEOUT_MS) : 15_000;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5_000;
/** Resync sends runs of consecutive dirty chunks up to this size as one read and one frame… */
const RESYNC_RUN_BYTES = 1024 * 1024;
/** …and keeps at most this much sent and not yet acknowledged. */
const RESYNC_WINDOW_BYTES = 32 * 1024 * 1024;

/**
 * Runs read ahead of the one being sent, bounded in bytes and in runs (each holds its chunks' resync
 * locks): four 1 MiB runs of a full resync, or up to 64 scattered chunks of a partial one, whose reads
 * then overlap in the thread pool instead of waiting for each other four at a time.
 */
const RESYNC_READ_AHEAD_BYTES = 4 * 1024 * 1024;
const RESYNC_READ_AHEAD_RUNS = 64;

/** A resync run read and locked, waiting to be sent. */
interface PreparedRun {
  c: number;
  count: number;
  offset: number;
  length: number;
  /** Pooled WRITE frame with the data, sequence number still 0. */
  frame: Buffer;
  unlock: () => void;
}

interface AckWaiter {
  seq: number;
  resolve: () => void;
}

export class TargetLink {
  private socket: net.Socket | null = null;
  private ready = false;
  private generation = 0; // bumps on every (dis)connection, so a stale resync pass stops
  private state: LinkState = 'connecting';
  private sent: number[] = []; // sequence numbers sent and not yet acknowledged, ascending
  private sentBytes: number[] = []; // frame sizes, parallel to `sent`
  private acked = 0;
  private lastSeqByChunk = new Map<number, number>();
  /** (seq, chunk) in the order noted, so an acknowledgement only looks at what it covers. */
  private clearQueue: Array<[number, number]> = [];
  private clearHead = 0;
  /** Chunks only a resync may clear (the source disk failed a write the target may have applied). */
  private readonly sticky = new Set<number>();
  private pendingResync: BitSet | null = null;
  private ackWaiters: AckWaiter[] = [];
  private roomWaiters: Array<() => void> = [];
  private backoff = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** The connection is closed on purpose to start over (fullresync): reconnect without the backoff. */
  private reconnectNow = false;
  private stopped = false;
  private lastError = '';
  /** Why this side closed the current connection, shown instead of the generic "lost the connection". */
  private closeReason = '';
  /** Set while the peer's generations forbid syncing (split brain, newer data there): shown until resolved. */
  private blocked: { state: LinkState; message: string } | null = null;
  private throttled = false;
  private resyncTotal = 0;
  private resyncSamples: Array<[number, number]> = []; // [time, resyncBytes]
  private clearTimer: NodeJS.Timeout | null = null;
  private corked = false;
  /** The end-of-resync generation notice not yet acknowledged (0: none): status shows Resyncing until it is. */
  private inSyncNotice = 0;
  /** Callers of whenInSync(), released when this target becomes Fully Operational. */
  private syncWaiters: Array<() => void> = [];
  /** The next resync pass compares chunk hashes first and sends only chunks that differ. */
  private checksumNext = false;
  private hashWaiters = new Map<number, (hashes: Buffer | null) => void>();
  /** Chunks compared by checksum resync, and how many of them matched (not sent). */
  checksumCompared = 0;
  checksumMatched = 0;
  /** zlib level agreed with the target on this connection (0 = none). */
  compression = 0;
  private payloadBytes = 0; // data carried by WRITE/WRITE_Z frames…
  private payloadWireBytes = 0; // …and what those frames took on the wire
  bytesSent = 0;
  bytesReceived = 0;
  resyncBytes = 0;

  constructor(
    readonly config: TargetConfig,
    private readonly mirror: MirrorCore,
    private readonly log: Logger,
  ) {
    if (config.paused) this.state = 'paused';
  }

  get slot(): number {
    return this.config.slot;
  }

  start(): void {
    if (!this.config.paused) this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.clearTimer) clearTimeout(this.clearTimer);
    this.socket?.destroy();
  }

  pause(): void {
    this.config.paused = true;
    this.state = 'paused';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.destroy();
  }

  resume(): void {
    if (!this.config.paused) return;
    this.config.paused = false;
    this.state = 'connecting';
    this.backoff = BACKOFF_MIN_MS;
    this.connect();
  }

  /** Chunks [first, last] stay dirty whatever is acknowledged, until a resync sends them again. */
  keepDirty(first: number, last: number): void {
    for (let c = first; c <= last; c++) {
      this.lastSeqByChunk.delete(c);
      this.sticky.add(c);
    }
  }

  /** Makes the next resync pass a checksum pass (compare hashes, send only what differs). */
  useChecksumNextResync(): void {
    this.checksumNext = true;
  }

  /** Starts a new resync pass over everything dirty (after fullresync marked all bits). */
  restartResync(): void {
    // Reconnects at once (not after the reconnect backoff: nothing failed) and resyncs from the bitmap.
    if (this.socket) {
      this.reconnectNow = true;
      // Shown as resyncing from now on (the socket's close comes a tick later): a status read or a
      // waitsync right after the request must not see the finished state of the previous pass.
      if (this.state === 'mirroring') this.state = 'resyncing';
      this.socket.destroy();
    } else if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.connect();
    }
  }

  /**
   * Sends a message covering chunks [first, last]; false if the target is not connected (the
   * intent log keeps the chunks dirty and a later resync sends them).
   */
  send(frame: Buffer, seq: number, first: number, last: number, payloadBytes: number, onWritten?: () => void): boolean {
    if (!this.ready || !this.socket) return false;
    this.writeBatched(frame, onWritten);
    this.sent.push(seq);
    this.sentBytes.push(frame.length);
    this.bytesSent += frame.length;
    this.countPayload(payloadBytes, frame.length);
    for (let c = first; c <= last; c++) {
      // A chunk still waiting for its resync holds stale bytes beyond this write: only resync clears it.
      if (!this.pendingResync?.get(c) && !this.sticky.has(c)) this.noteChunk(c, seq);
    }
    return true;
  }

  /** Resolves once this target is Fully Operational: its resync finished and the target acknowledged it. */
  whenInSync(): Promise<void> {
    if (this.status().status === 'Fully Operational') return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private releaseSyncWaiters(): void {
    const w = this.syncWaiters;
    this.syncWaiters = [];
    for (const r of w) r();
  }

  /** Connected and past the handshake: messages sent now reach the target. */
  get connected(): boolean {
    return this.ready && this.socket !== null;
  }

  get isSync(): boolean {
    return this.config.mode === 'sync';
  }

  /** The chunk's bit may be cleared once `seq` is acknowledged (unless a later message touches it). */
  private noteChunk(chunk: number, seq: number): void {
    this.lastSeqByChunk.set(chunk, seq);
    this.clearQueue.push([seq, chunk]);
  }

  private unackedResyncBytes(): number {
    let n = 0;
    for (const b of this.sentBytes) n += b;
    return n;
  }

  private countPayload(payloadBytes: number, wireBytes: number): void {
    if (payloadBytes === 0) return;
    this.payloadBytes += payloadBytes;
    this.payloadWireBytes += wireBytes;
  }

  /**
   * Frames written in the same turn of the event loop leave in one system call. `onWritten` runs once
   * the kernel has the frame or the connection is gone (never before: the frame may be a pooled buffer).
   */
  private writeBatched(frame: Buffer, onWritten?: () => void): void {
    const socket = this.socket as net.Socket;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      setImmediate(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    socket.write(frame, onWritten);
  }

  /** Sends what writeBatched() gathered in this turn now (its setImmediate then finds nothing to do). */
  private uncorkNow(): void {
    if (!this.corked || !this.socket) return;
    this.corked = false;
    this.socket.uncork();
  }

  /** Resolves once the target acknowledged `seq`, or the connection dropped. */
  waitAck(seq: number): Promise<void> {
    if (!this.ready || this.acked >= seq) return Promise.resolve();
    return new Promise((resolve) => this.ackWaiters.push({ seq, resolve }));
  }

  /** Fewer than the async limit of messages are outstanding (or not connected): an async writer need not wait. */
  get hasRoom(): boolean {
    return !this.ready || this.sent.length < this.mirror.asyncLimit;
  }

  /** Resolves when fewer than the async limit of messages are outstanding. */
  waitRoom(): Promise<void> {
    if (this.hasRoom) return Promise.resolve();
    this.throttled = true;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  status(): TargetStatus {
    const dirty = this.mirror.log.dirtyCount(this.slot);
    const chunks = this.mirror.log.chunks;
    const speed = this.resyncSpeed();
    const state = this.blocked && this.state !== 'paused' ? this.blocked.state
      : this.state === 'mirroring' && this.inSyncNotice > 0 ? 'resyncing'
      : this.state;
    const status = state === 'paused' ? 'Paused'
      : state === 'resyncing' ? 'Resyncing'
      : state === 'mirroring' ? 'Fully Operational'
      : state === 'split-brain' ? 'Split Brain'
      : 'Out Of Sync';
    return {
      node: this.config.node,
      address: this.config.address,
      mode: this.config.mode,
      state,
      status,
      percentSynced: chunks === 0 ? 100 : Math.floor((1000 * (chunks - dirty)) / chunks) / 10,
      dirtyChunks: dirty,
      resyncSpeed: state === 'resyncing' ? speed : 0,
      etaSeconds: state === 'resyncing' && speed > 0 ? Math.ceil((dirty * this.mirror.chunkSize) / speed) : null,
      queueDepth: this.sent.length,
      throttled: this.throttled,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      resyncBytes: this.resyncBytes,
      compression: this.compression,
      checksumCompared: this.checksumCompared,
      checksumMatched: this.checksumMatched,
      compressionRatio: this.payloadWireBytes > 0 ? Math.round((100 * this.payloadBytes) / this.payloadWireBytes) / 100 : 1,
      lastError: this.blocked && this.state !== 'paused' ? this.blocked.message : this.lastError,
    };
  }

  /** Connected, resync done: every write reaches this target in order. */
  /** The target's node name (as PeerStream: the failover rules read it on every write). */
  get node(): string {
    return this.config.node;
  }

  get mirroring(): boolean {
    return this.ready && this.socket !== null && this.state === 'mirroring';
  }

  /** Tells the target, in the write stream, which generation its data is now. */
  sendGeneration(current: string | undefined, consistent: boolean): number {
    if (!this.ready || !this.socket) return 0;
    const seq = this.mirror.nextSeq();
    const frame = encodeGeneration({ seq, consistent, ...(current !== undefined ? { current } : {}) });
    this.writeBatched(frame);
    this.sent.push(seq);
    this.sentBytes.push(frame.length);
    this.bytesSent += frame.length;
    if (current !== undefined) {
      // waitAck also resolves when the connection closes: acknowledged only if the target said so.
      void this.waitAck(seq).then(() => this.mirror.policy.noticeSettled?.(this, current, this.acked >= seq));
    }
    return seq;
  }

  /** Everything sent so far acknowledged (or the connection gone), bounded by `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const last = this.sent.length > 0 ? (this.sent[this.sent.length - 1] as number) : 0;
    if (last === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([this.waitAck(last), timeout]);
    clearTimeout(timer);
    return this.acked >= last;
  }

  private resyncSpeed(): number {
    const s = this.resyncSamples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0] as [number, number];
    const [t1, b1] = s[s.length - 1] as [number, number];
    return t1 > t0 ? Math.round(((b1 - b0) * 1000) / (t1 - t0)) : 0;
  }

  private sample(): void {
    const now = Date.now();
    this.resyncSamples.push([now, this.resyncBytes]);
    while (this.resyncSamples.length > 2 && now - (this.resyncSamples[0] as [number, number])[0] > 5_000) this.resyncSamples.shift();
  }

  private connect(): void {
    if (this.stopped || this.config.paused || this.socket) return;
    const [host, portText] = splitAddress(this.config.address);
    const { socket, ready } = connectReplication({
      host, port: Number(portText), localAddress: this.config.localAddress, expectedPeer: this.config.node, creds: this.mirror.creds,
    });
    const generation = ++this.generation;
    this.socket = socket;
    this.state = 'connecting';
    socket.setNoDelay(true);
    const reader = new FrameAssembler();
    ready.then(() => {
      if (this.socket !== socket) return;
      socket.write(encodeHello({
        protocol: PROTOCOL, version: PROTOCOL_VERSION, tag: this.mirror.tag, size: this.mirror.size,
        chunkSize: this.mirror.chunkSize, source: this.mirror.node, compression: this.mirror.compression,
        ...this.mirror.policy.hello(this),
      }));
    }, (e: Error) => {
      this.lastError = e.message;
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (err) {
        this.lastError = `target ${this.config.node} sent garbage: ${(err as ProtocolError).message}`;
        this.log.warn(this.lastError);
        socket.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type === FrameType.WELCOME) {
          this.compression = Math.min(this.mirror.compression, f.welcome.compression);
          void this.onWelcome(generation, f.welcome).catch((e: Error) => {
            this.lastError = `connecting ${this.config.node}: ${e.message}`;
            this.log.warn(this.lastError);
            socket.destroy();
          });
        }
        else if (f.type === FrameType.REFUSE) {
          if (f.refusal.role === 'source') {
            this.blocked = this.mirror.policy.peerIsSource(this, f.refusal);
            this.lastError = this.blocked?.message ?? `${this.config.node} is a source of ${this.mirror.tag} too`;
          } else {
            this.lastError = `target ${this.config.node} refused: ${f.refusal.message}`;
          }
          this.log.warn(this.lastError);
          socket.destroy();
        } else if (f.type === FrameType.SWITCHOVER) {
          void this.mirror.policy.switchover(this).then((answer) => {
            if (this.socket !== socket) return;
            socket.write(encodeSwitched(answer), () => {
              if (answer.ok) this.mirror.policy.afterSwitchover?.(this);
            });
          });
        } else if (f.type === FrameType.ACK) this.onAck(f.seq);
        else if (f.type === FrameType.HASHES) {
          const w = this.hashWaiters.get(f.seq);
          this.hashWaiters.delete(f.seq);
          w?.(f.count * HASH_LENGTH === f.hashes.length ? f.hashes : null);
        }
        else {
          this.log.warn(`target ${this.config.node} sent unexpected frame type ${f.type}`);
          socket.destroy();
        }
      }
    });
    socket.on('error', (e) => {
      if (!this.lastError.startsWith('cannot connect')) this.lastError = `cannot reach ${this.config.node} at ${this.config.address}: ${e.message}`;
    });
    // The watchdog: progress is an acknowledgement, or nothing left to acknowledge.
    let lastAcked = this.acked;
    let lastProgress = Date.now();
    const watchdog = setInterval(() => {
      if (this.socket !== socket) return clearInterval(watchdog);
      if (!this.ready || this.sent.length === 0 || this.acked !== lastAcked) {
        lastAcked = this.acked;
        lastProgress = Date.now();
        return;
      }
      if (Date.now() - lastProgress < ACK_TIMEOUT_MS) return;
      this.closeReason = `${this.config.node} at ${this.config.address} acknowledged nothing for ${Math.round(ACK_TIMEOUT_MS / 1000)} s: the link or the target is down`;
      this.log.warn(this.closeReason);
      clearInterval(watchdog);
      socket.destroy();
    }, Math.min(1_000, ACK_TIMEOUT_MS / 4));
    watchdog.unref();
    socket.once('close', () => {
      clearInterval(watchdog);
      this.onClose(socket);
    });
  }

  private async onWelcome(generation: number, welcome: Welcome): Promise<void> {
    if (generation !== this.generation) return;
    if (welcome.node !== this.config.node) {
      this.lastError = `the agent at ${this.config.address} is "${welcome.node}", not "${this.config.node}"; correct the target's address (tandem unextend, then extend)`;
      this.log.warn(this.lastError);
      this.socket?.destroy();
      return;
    }
    // The generations decide whether, and how much, this target may be resynced from here.
    const verdict = await this.mirror.policy.admit(this, welcome);
    if (generation !== this.generation || !this.socket) return;
    if (verdict !== 'go') {
      this.blocked = verdict;
      this.lastError = verdict.message;
      this.log.warn(verdict.message);
      this.socket.destroy();
      return;
    }
    this.blocked = null;
    this.ready = true;
    // Our first message: the target learns its bitmap bits are safe with us and may drop them.
    const seq = this.mirror.nextSeq();
    this.writeBatched(encodeSeqFrame(FrameType.FLUSH, seq));
    this.sent.push(seq);
    this.sentBytes.push(13);
    this.backoff = BACKOFF_MIN_MS;
    this.lastError = '';
    this.log.info(`connected to target ${this.config.node} (${this.config.mode})`);
    void this.resyncPass(generation);
  }

  private onAck(seq: number): void {
    this.acked = Math.max(this.acked, seq);
    let i = 0;
    while (i < this.sent.length && (this.sent[i] as number) <= seq) i++;
    if (i > 0) {
      this.sent.splice(0, i);
      this.sentBytes.splice(0, i);
    }
    const q = this.clearQueue;
    while (this.clearHead < q.length && (q[this.clearHead] as [number, number])[0] <= seq) {
      const [noted, chunk] = q[this.clearHead++] as [number, number];
      // Only the last message that touched the chunk clears it (a later one may still be in flight).
      if (this.lastSeqByChunk.get(chunk) === noted) {
        this.lastSeqByChunk.delete(chunk);
        this.mirror.log.clear(this.slot, chunk);
      }
    }
    if (this.clearHead > 4096 && this.clearHead * 2 > q.length) {
      this.clearQueue = q.slice(this.clearHead);
      this.clearHead = 0;
    }
    while (this.ackWaiters.length > 0 && (this.ackWaiters[0] as AckWaiter).seq <= seq) this.ackWaiters.shift()!.resolve();
    if (this.sent.length < this.mirror.asyncLimit) this.releaseRoom();
    this.scheduleClearFlush();
  }

  private releaseRoom(): void {
    this.throttled = false;
    const w = this.roomWaiters;
    this.roomWaiters = [];
    for (const r of w) r();
  }

  private scheduleClearFlush(): void {
    if (this.clearTimer) return;
    this.clearTimer = setTimeout(() => {
      this.clearTimer = null;
      // Bits kept back for recently written chunks need one more flush, even if no acknowledgement comes.
      void this.mirror.log.flushClears({ keepRecent: true }).then(
        () => this.mirror.log.clearsPending && !this.stopped && this.scheduleClearFlush(),
        (e: Error) => this.log.warn(`writing the bitmap: ${e.message}`),
      );
    }, 1_000);
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    const wasReady = this.ready;
    this.socket = null;
    this.ready = false;
    this.generation++;
    const reason = this.closeReason;
    this.closeReason = '';
    // Writes waiting on this target complete without it: they are on the source and in the bitmap.
    for (const w of this.ackWaiters) w.resolve();
    this.ackWaiters = [];
    for (const w of this.hashWaiters.values()) w(null);
    this.hashWaiters.clear();
    this.releaseRoom();
    this.sent = [];
    this.sentBytes = [];
    this.lastSeqByChunk.clear();
    this.clearQueue = [];
    this.clearHead = 0;
    this.pendingResync = null;
    this.inSyncNotice = 0;
    if (!wasReady && !this.lastError && !this.blocked) {
      this.lastError = `${this.config.node} at ${this.config.address} closed the connection before accepting it${this.mirror.creds ? '' : ' (this agent replicates over plain TCP, --insecure-plaintext; the target may require TLS)'}`;
    }
    if (wasReady) {
      this.lastError = reason || `lost the connection to ${this.config.node} at ${this.config.address}`;
      this.log.warn(`lost target ${this.config.node}; tracking changes in the bitmap`);
    }
    this.mirror.policy.linkDown?.(this);
    const now = this.reconnectNow;
    this.reconnectNow = false;
    if (this.stopped || this.config.paused) return;
    this.state = 'connecting';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, now ? 0 : this.backoff);
    if (!now) this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
  }

  /**
   * Compares runs of pending chunks by SHA-256 with the target and drops the ones that match from
   * `pending`. The target hashes each run after applying everything sent before the request, and the
   * source hashed its chunks before sending it, so equal hashes mean equal data at that point in the
   * write sequence (a write racing with the local read can only cause a mismatch, i.e. a resend).
   * Returns false if the connection went away.
   */
  private async checksumPass(generation: number, pending: BitSet): Promise<boolean> {
    const chunkSize = this.mirror.chunkSize;
    for (let first = pending.next(0); first >= 0; first = pending.next(first)) {
      let count = 1;
      while (count < MAX_HASH_CHUNKS && first + count < pending.size && pending.get(first + count)) count++;
      const local: Buffer[] = [];
      for (let c = first; c < first + count; c++) {
        const offset = c * chunkSize;
        const data = await this.mirror.local.read(offset, Math.min(chunkSize, this.mirror.size - offset));
        local.push(crypto.createHash('sha256').update(data).digest());
        BufferPool.shared.release(data);
      }
      if (generation !== this.generation || !this.socket) return false;
      const seq = this.mirror.nextSeq();
      const reply = new Promise<Buffer | null>((resolve) => this.hashWaiters.set(seq, resolve));
      const request = encodeHashRequest(seq, first, count);
      this.writeBatched(request);
      this.sent.push(seq);
      this.sentBytes.push(request.length);
      this.bytesSent += request.length;
      const remote = await reply;
      if (!remote || generation !== this.generation) return false;
      const newest = this.sent.length > 0 ? (this.sent[this.sent.length - 1] as number) : seq;
      for (let i = 0; i < count; i++) {
        this.checksumCompared++;
        if (!remote.subarray(i * HASH_LENGTH, (i + 1) * HASH_LENGTH).equals(local[i] as Buffer)) continue;
        const c = first + i;
        this.checksumMatched++;
        pending.clear(c);
        this.sticky.delete(c);
        // Clears the bit once everything sent so far (including writes to this chunk) is acknowledged.
        this.noteChunk(c, Math.max(newest, this.lastSeqByChunk.get(c) ?? 0));
      }
      this.sample();
      first += count;
      if (first >= pending.size) break;
    }
    return true;
  }

  /** Locks chunks [c, c+count) for resync and reads them into a pooled WRITE frame (sequence number 0). */
  private async prepareRun(c: number, count: number): Promise<PreparedRun> {
    const releases: Array<() => void> = [];
    const unlock = () => {
      for (const release of releases.splice(0)) release();
    };
    try {
      for (let i = 0; i < count; i++) releases.push(await this.mirror.locks.lockForResync(c + i));
      const chunkSize = this.mirror.chunkSize;
      const offset = c * chunkSize;
      const length = Math.min(count * chunkSize, this.mirror.size - offset);
      const frame = pooledWriteFrame(0, offset, length);
      const payload = frame.subarray(WRITE_HEADER_LENGTH);
      try {
        // Read straight into the frame when the store can (one copy less than read + encode).
        if (this.mirror.local.readInto) await this.mirror.local.readInto(offset, payload);
        else {
          const data = await this.mirror.local.read(offset, length);
          data.copy(payload);
          BufferPool.shared.release(data);
        }
      } catch (err) {
        BufferPool.shared.release(frame);
        throw err;
      }
      return { c, count, offset, length, frame, unlock };
    } catch (err) {
      unlock();
      throw err;
    }
  }

  /** Sends every chunk dirty for this target, in order, each under its resync lock. */
  private async resyncPass(generation: number): Promise<void> {
    const bits = this.mirror.log.slots[this.slot] as BitSet;
    const pending = new BitSet(bits.size, Buffer.from(bits.bytes));
    this.pendingResync = pending;
    this.resyncTotal = pending.count();
    this.resyncSamples = [];
    if (this.resyncTotal > 0) {
      this.state = 'resyncing';
      this.log.info(`resyncing ${this.resyncTotal} chunks to ${this.config.node}`);
      // From here until the end of the pass the target's data is not a usable copy.
      this.sendGeneration(undefined, false);
    }
    const chunkSize = this.mirror.chunkSize;
    if (this.checksumNext && this.resyncTotal > 0) {
      this.checksumNext = false;
      if (!(await this.checksumPass(generation, pending))) return;
    }
    // Runs are read ahead (the reads overlap with sending), each under its chunks' resync locks from
    // before its read until its frame is queued. Not with a rate limit: locks would be held while it waits.
    const ahead: Array<Promise<PreparedRun | Error>> = [];
    let scan = pending.next(0);
    let aheadBytes = 0; // bytes of the runs in `ahead`
    const launch = () => {
      const [runs, bytes] = this.mirror.resyncRate > 0 ? [1, 0] : [RESYNC_READ_AHEAD_RUNS, RESYNC_READ_AHEAD_BYTES];
      while (scan >= 0 && ahead.length < runs && (ahead.length === 0 || aheadBytes < bytes)) {
        // A run of consecutive pending chunks goes as one read and one frame (up to RESYNC_RUN_BYTES).
        const c = scan;
        let count = 1;
        while (count * chunkSize < RESYNC_RUN_BYTES && c + count < pending.size && pending.get(c + count)) count++;
        scan = c + count < pending.size ? pending.next(c + count) : -1;
        aheadBytes += count * chunkSize;
        ahead.push(this.prepareRun(c, count).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
      }
    };
    try {
      launch();
      while (ahead.length > 0) {
        const run = await ahead.shift()!;
        if (run instanceof Error) throw run;
        aheadBytes -= run.count * chunkSize;
        const { c, count, offset, length, frame: plain } = run;
        try {
          if (generation !== this.generation || !this.socket) {
            BufferPool.shared.release(plain);
            return;
          }
          const seq = this.mirror.nextSeq();
          setFrameSeq(plain, seq);
          const compressed = this.compression > 0 ? compressWrite(offset, plain.subarray(WRITE_HEADER_LENGTH), this.compression) : null;
          if (compressed) {
            BufferPool.shared.release(plain);
            this.writeBatched(setFrameSeq(compressed, seq));
          } else {
            this.writeBatched(plain, () => BufferPool.shared.release(plain));
          }
          const wireBytes = compressed ? compressed.length : plain.length;
          this.sent.push(seq);
          this.sentBytes.push(wireBytes);
          this.bytesSent += wireBytes;
          this.countPayload(length, wireBytes);
          for (let i = 0; i < count; i++) {
            pending.clear(c + i);
            this.sticky.delete(c + i);
            this.noteChunk(c + i, seq);
          }
          this.resyncBytes += length;
        } finally {
          run.unlock();
        }
        this.sample();
        // Keep at most RESYNC_WINDOW_BYTES unacknowledged: wait for the older half.
        if (this.unackedResyncBytes() > RESYNC_WINDOW_BYTES) await this.waitAck(this.sent[Math.floor(this.sent.length / 2)] as number);
        const rate = this.mirror.resyncRate;
        if (rate > 0) await new Promise((r) => setTimeout(r, (count * chunkSize * 1000) / rate));
        if (generation !== this.generation) return;
        launch();
      }
    } finally {
      // A pass that stops early (connection gone, read error) gives back what it read ahead.
      for (const p of ahead.splice(0)) {
        void p.then((r) => {
          if (r instanceof Error) return;
          r.unlock();
          BufferPool.shared.release(r.frame);
        });
      }
    }
    if (generation !== this.generation) return;
    this.pendingResync = null;
    // Everything is sent: the target takes our generation, in the stream right after the data (it
    // applies the notice only once it holds all of it), and our bitmap for it starts there. Waiting for
    // the data's acknowledgement before sending it would only add a round trip.
    // The last runs leave now, while the policy records the new generation (a state file write).
    this.uncorkNow();
    const current = this.mirror.policy.inSync(this);
    const genSeq = this.sendGeneration(current, true);
    this.state = 'mirroring';
    // Shown in sync once the target acknowledged the notice: it then holds the data and our generation
    // durably (the acknowledgement covers the data too).
    this.inSyncNotice = genSeq;
    if (genSeq > 0) await this.waitAck(genSeq);
    if (generation !== this.generation) return;
    this.inSyncNotice = 0;
    this.releaseSyncWaiters();
    if (this.resyncTotal > 0) this.log.info(`resync to ${this.config.node} complete`);
    await this.mirror.log.flushClears();
  }
}

export function splitAddress(address: string): [string, string] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`replication address "${address}" is not HOST:PORT`);
  return [m[1] as string, m[2] as string];
}
