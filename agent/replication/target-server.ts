// The target side of replication: accepts a source's connection for a mirror this node is a target
// of, applies its messages strictly in order, and acknowledges each batch once it is durable.
import net from 'node:net';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type { BlockStore } from '../storage/block-store.js';
import { adoptSocket } from '../nbd/adopt-socket.js';
import { createReplicationServer, type NodeCredentials } from './transport.js';
import type { Logger } from '../log.js';
import { journalOldData, OverlapTracker, type JournalOp } from '../rewind/journal-writes.js';
import type { RewindJournal } from '../rewind/journal.js';
import { SlabFrameReader, type Release } from './slab-reader.js';
import {
  encodeHashes, encodeRefuse, encodeSeqFrame, encodeSwitchover, encodeWelcome, FrameType, PROTOCOL, PROTOCOL_VERSION, ProtocolError,
  type Frame, type GenerationNotice, type Hello, type Refusal, type Switched, type Welcome,
} from './wire.js';

/** What this node answers a source that connects for a mirror. */
export type Admission =
  | {
    store: BlockStore; welcome: Pick<Welcome, 'generations' | 'consistent' | 'dirty'>;
    /** The rewind log: every write is journalled (durably) before it is applied. */
    journal?: RewindJournal | null;
  }
  | Refusal;

/** How a target agent finds the volume for a mirror tag and keeps its generations. */
export interface TargetVolumes {
  /** The store and this node's generations for the tag, or why this node will not take the mirror. */
  admit(tag: string, hello: Hello, remoteAddress: string): Admission;
  /** Called when a source connects / disconnects (for status and failover rules). */
  onSourceChange?(tag: string, source: string | null): void;
  /** The source sent its first message after WELCOME: it has our bitmap bits durably. */
  onSourceHasOurBits?(tag: string, source: string): void;
  /** In stream order, after everything before it is durable: the data's generation changed. */
  onGeneration?(tag: string, source: string, notice: GenerationNotice): void;
  /** Called after each durable batch (for status and counters). */
  onApplied?(tag: string, seq: number, bytes: number): void;
}

/** The rewind log could not take a write: nothing of it was applied. */
class RewindLogFailure extends Error {}

const HELLO_TIMEOUT_MS = 10_000;
/** Past this much received but not yet applied, stop reading from the source. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

interface Queued {
  frame: Frame;
  /** Gives the received bytes the frame's data lives in back, once applied (null: nothing held). */
  release: Release | null;
}

class TargetSession {
  private readonly reader = new SlabFrameReader();
  private hello: Hello | null = null;
  private store: BlockStore | null = null;
  private journal: RewindJournal | null = null;
  private compression = 0;
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private applying = false;
  private closed = false;
  private gotFirstFrame = false;
  private switchWaiter: ((s: Switched) => void) | null = null;
  /** Something was written since the last flush began (or was scheduled to begin after it). */
  private writtenSinceFlush = false;
  /** The running applyQueued(), or a resolved promise. */
  private applyRun: Promise<void> = Promise.resolve();
  /** The session this one replaced (the same source reconnected): applying waits until it stopped. */
  private predecessor: TargetSession | null = null;

  constructor(
    private readonly socket: net.Socket,
    private readonly volumes: TargetVolumes,
    private readonly node: string,
    private readonly log: Logger,
    private readonly sessions: Map<string, TargetSession>,
    /** The node the peer's certificate names (null over --insecure-plaintext). */
    private readonly peerNode: string | null,
  ) {
    const timer = setTimeout(() => {
      if (!this.hello) this.drop('no HELLO within 10 s');
    }, HELLO_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.on('error', (e) => this.log.debug(`replication socket error: ${e.message}`));
    socket.once('close', () => {
      clearTimeout(timer);
      this.closed = true;
      this.switchWaiter?.({ ok: false, message: 'the connection to the source closed before it answered' });
      this.switchWaiter = null;
      if (this.hello && this.sessions.get(this.hello.tag) === this) {
        this.sessions.delete(this.hello.tag);
        this.volumes.onSourceChange?.(this.hello.tag, null);
      }
    });
  }

  close(): void {
    // Closed at once, not at the socket's close event: a source that reconnects at once must not have
    // this session apply anything more once its replacement exists.
    this.closed = true;
    this.socket.destroy();
  }

  /** Resolves once this session applies nothing any more (after close()). */
  whenIdle(): Promise<void> {
    return this.applyRun;
  }

  private drop(reason: string): void {
    this.log.warn(`dropping replication peer ${this.socket.remoteAddress ?? ''}: ${reason}; nothing was written`);
    this.socket.destroy();
  }

  /** Where the next read should land: the reader's slab, or the rest of a large frame's body. */
  nextReceiveBuffer(): Buffer | null {
    return this.closed ? null : this.reader.nextReceiveBuffer();
  }

  /** Received bytes (read in place, or borrowed and copied by the reader). Returns false to stop reading for now. */
  receive(bytes: Buffer): boolean {
    if (this.closed) return false;
    try {
      this.reader.feed(bytes, (f, release) => this.onFrame(f, release));
    } catch (err) {
      // A peer that does not speak our protocol from its first byte never gets past HELLO, so it
      // never writes anything.
      if (err instanceof ProtocolError) {
        this.drop(err.message);
        return false;
      }
      throw err;
    }
    if (!this.applying) this.applyRun = this.applyQueued();
    return this.queuedBytes <= MAX_QUEUED_BYTES;
  }

  /** Asks the source to hand the mirror over to this node (switchover); resolves with its answer. */
  requestSwitchover(timeoutMs: number): Promise<Switched> {
    if (this.closed || !this.hello) return Promise.resolve({ ok: false, message: 'no source is connected' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.switchWaiter = null;
        resolve({ ok: false, message: `the source did not answer within ${timeoutMs / 1000} s` });
      }, timeoutMs);
      this.switchWaiter = (s) => {
        clearTimeout(timer);
        resolve(s);
      };
      this.socket.write(encodeSwitchover(this.node));
    });
  }

  private onFrame(f: Frame, release: Release): void {
    // Only a WRITE's data is kept past this call (until applied); every other frame is decoded already.
    if (f.type !== FrameType.WRITE || this.closed || !this.hello) release();
    if (this.closed) return;
    if (!this.hello) {
      if (f.type !== FrameType.HELLO) return this.drop(`expected HELLO, got frame type ${f.type}`);
      return this.onHello(f.hello);
    }
    if (!this.gotFirstFrame) {
      // The source sends nothing before our bits are durable in its bitmap: ours may go now.
      this.gotFirstFrame = true;
      this.volumes.onSourceHasOurBits?.(this.hello.tag, this.hello.source);
    }
    if (f.type === FrameType.SWITCHED) {
      const w = this.switchWaiter;
      this.switchWaiter = null;
      w?.(f.switched);
      return;
    }
    if (f.type === FrameType.GEN) {
      this.queue.push({ frame: f, release: null });
      return;
    }
    if (f.type === FrameType.WRITE_Z) {
      if (this.compression === 0) return this.drop('compressed data although no compression was agreed');
      let data: Buffer;
      try {
        data = zlib.inflateRawSync(f.compressed, { maxOutputLength: Math.max(1, f.length) });
      } catch {
        return this.drop('compressed data that does not inflate');
      }
      if (data.length !== f.length) return this.drop(`compressed data inflates to ${data.length} bytes, not ${f.length}`);
      this.queue.push({ frame: { type: FrameType.WRITE, seq: f.seq, offset: f.offset, data }, release: null });
      this.queuedBytes += data.length;
      return;
    }
    if (f.type !== FrameType.WRITE && f.type !== FrameType.ZERO && f.type !== FrameType.FLUSH && f.type !== FrameType.HASH_REQ && f.type !== FrameType.BOOKMARK) {
      return this.drop(`unexpected frame type ${f.type} from a source`);
    }
    this.queue.push({ frame: f, release: f.type === FrameType.WRITE ? release : null });
    if (f.type === FrameType.WRITE) this.queuedBytes += f.data.length;
  }

  private refuse(message: string, extra: Omit<Refusal, 'message'> = {}): void {
    this.log.warn(`refusing replication for "${this.hello?.tag ?? '?'}": ${message}`);
    this.socket.end(encodeRefuse(message, extra));
    this.closed = true;
  }

  private onHello(hello: Hello): void {
    this.hello = hello;
    if (hello.protocol !== PROTOCOL || hello.version !== PROTOCOL_VERSION) {
      return this.refuse(`unsupported replication protocol ${hello.protocol} version ${hello.version}; this agent speaks ${PROTOCOL} version ${PROTOCOL_VERSION}. Upgrade both agents to the same release.`);
    }
    if (this.peerNode !== null && this.peerNode !== hello.source) {
      return this.refuse(`the certificate of this peer names node ${this.peerNode}, but it says it is ${hello.source}; start that agent with --node ${this.peerNode}`);
    }
    const previous = this.sessions.get(hello.tag);
    if (previous && previous.hello?.source !== hello.source) {
      return this.refuse(`${previous.hello?.source ?? 'another node'} is replicating into this target now; ${hello.source} cannot at the same time`);
    }
    const admitted = this.volumes.admit(hello.tag, hello, this.socket.remoteAddress ?? '');
    if (!('store' in admitted)) return this.refuse(admitted.message, admitted);
    const found = admitted.store;
    if (found.size < hello.size) {
      return this.refuse(`target disk ${found.description} (${found.size} bytes) is smaller than the source (${hello.size} bytes); choose a target at least as large as the source`);
    }
    if (previous) {
      // A source that reconnects replaces its stale connection; a write of that one still being applied
      // finishes before any of this one (the same chunk, newer data) is.
      previous.close();
      this.predecessor = previous;
    }
    this.sessions.set(hello.tag, this);
    this.store = found;
    this.journal = admitted.journal ?? null;
    // Any zlib level the source asks for is fine here: inflating costs the same for all of them.
    this.compression = Math.min(9, Math.max(0, Math.floor(hello.compression ?? 0)));
    this.socket.write(encodeWelcome({ size: found.size, node: this.node, compression: this.compression, ...admitted.welcome }));
    this.volumes.onSourceChange?.(hello.tag, hello.source);
  }

  /**
   * applyOne() for a write the store takes on this thread (at most syncWriteMax, within the disk), with no
   * promise: most frames of a stream of small writes. False (nothing done) for anything else.
   */
  private applySmallWrite(q: Queued, store: BlockStore, addBytes: (n: number) => void, setLast: (seq: number) => void): boolean {
    const f = q.frame;
    if (f.type !== FrameType.WRITE || !store.writeSync || f.data.length > store.syncWriteMax || f.offset + f.data.length > store.size) return false;
    this.writtenSinceFlush = true;
    store.writeSync(f.offset, f.data);
    q.release?.();
    addBytes(f.data.length);
    this.queuedBytes -= f.data.length;
    setLast(f.seq);
    return true;
  }

  /** Applies one message; false if the peer was dropped for it. */
  private async applyOne(q: Queued, store: BlockStore, addBytes: (n: number) => void, setLast: (seq: number) => void): Promise<boolean> {
    const { frame: f, release } = q;
    if (f.type === FrameType.WRITE) {
      if (f.offset + f.data.length > store.size) {
        this.drop(`write beyond the end of ${store.description}`);
        return false;
      }
      this.writtenSinceFlush = true;
      await store.write(f.offset, [f.data], false);
      release?.();
      addBytes(f.data.length);
      this.queuedBytes -= f.data.length;
      setLast(f.seq);
    } else if (f.type === FrameType.ZERO) {
      if (f.offset + f.length > store.size) {
        this.drop(`zero range beyond the end of ${store.description}`);
        return false;
      }
      this.writtenSinceFlush = true;
      await store.writeZeroes(f.offset, f.length, { mayPunch: true, fua: false, fast: false });
      setLast(f.seq);
    } else if (f.type === FrameType.FLUSH || f.type === FrameType.BOOKMARK) {
      // A bookmark without a rewind log marks nothing: there is no log to put it in.
      setLast(f.seq);
    } else if (f.type === FrameType.GEN) {
      // A generation describes the data before it: make that durable first. (A notice that the data is
      // not a usable copy, as at the start of a resync, claims nothing about it.)
      if (f.gen.consistent) {
        this.writtenSinceFlush = false;
        await store.flush();
      }
      if (this.closed) return false;
      this.volumes.onGeneration?.(this.hello!.tag, this.hello!.source, f.gen);
      setLast(f.gen.seq);
    } else if (f.type === FrameType.HASH_REQ) {
      // Hashes of the chunks as they are after everything sent before the request.
      const chunkSize = this.hello!.chunkSize;
      const hashes: Buffer[] = [];
      for (let c = f.first; c < f.first + f.count; c++) {
        const offset = c * chunkSize;
        const length = Math.max(0, Math.min(chunkSize, this.hello!.size - offset));
        const data = length > 0 ? await store.read(offset, length) : Buffer.alloc(0);
        hashes.push(crypto.createHash('sha256').update(data).digest());
      }
      if (!this.closed) this.socket.write(encodeHashes(f.seq, f.first, hashes));
      setLast(f.seq);
    }
    return true;
  }

  /** Applies everything queued, in order, then makes it durable and acknowledges the last one. */
  private async applyQueued(): Promise<void> {
    if (this.applying || !this.store) return;
    this.applying = true;
    const store = this.store;
    const journal = this.journal;
    try {
      if (this.predecessor) {
        await this.predecessor.whenIdle();
        this.predecessor = null;
      }
      // With a rewind log, the epoch's flush and acknowledgement run while the next batch is journalled
      // (its own journal sync overlapping this flush); acknowledgements stay in order.
      let flushing: Promise<void> = Promise.resolve();
      // A failed overlapped flush stops the stream at the next batch, not only once the queue drains.
      let flushFailure: Error | null = null;
      for (;;) {
        if (this.closed) return;
        if (flushFailure) throw flushFailure;
        if (this.queue.length === 0) {
          await flushing;
          if (this.queue.length === 0 || this.closed) break;
        }
        const batch = this.queue;
        this.queue = [];
        let last = 0;
        let bytes = 0;
        const addBytes = (n: number) => (bytes += n);
        const setLast = (seq: number) => (last = seq);
        // With a rewind log, writes are gathered into runs that touch no block twice: the data each
        // replaces is read and journalled (durably) for the whole run, then the run is applied.
        let pending: Array<{ queued: Queued; op: JournalOp }> = [];
        const overlap = new OverlapTracker();
        const applyPending = async (): Promise<boolean> => {
          if (pending.length === 0) return true;
          const ops = pending;
          pending = [];
          overlap.clear();
          try {
            await journalOldData(journal!, store, ops.map((o) => o.op));
          } catch (err) {
            throw new RewindLogFailure(`journalling into the rewind log ${journal!.dir} on ${this.node} failed: ${(err as Error).message}; free space there or set another logdir`);
          }
          for (const op of ops) {
            if (this.applySmallWrite(op.queued, store, addBytes, setLast)) continue;
            if (!(await this.applyOne(op.queued, store, addBytes, setLast))) return false;
          }
          return true;
        };
        for (const q of batch) {
          if (this.closed) return;
          const f = q.frame;
          if (journal && (f.type === FrameType.WRITE || f.type === FrameType.ZERO || f.type === FrameType.BOOKMARK)) {
            if (f.type !== FrameType.BOOKMARK) {
              const length = f.type === FrameType.WRITE ? f.data.length : f.length;
              if (f.offset + length > store.size) return this.drop(`${f.type === FrameType.WRITE ? 'write' : 'zero range'} beyond the end of ${store.description}`);
              if (overlap.touches(f.offset, length, store.size) && !(await applyPending())) return;
              overlap.add(f.offset, length, store.size);
            }
            pending.push({ queued: q, op: f.type === FrameType.BOOKMARK ? { bookmark: f.name } : { offset: f.offset, length: f.type === FrameType.WRITE ? f.data.length : f.length } });
            continue;
          }
          if (journal && !(await applyPending())) return;
          if (this.applySmallWrite(q, store, addBytes, setLast)) continue;
          if (!(await this.applyOne(q, store, addBytes, setLast))) return;
        }
        if (journal && !(await applyPending())) return;
        // The epoch: everything applied so far is made durable before it is acknowledged.
        const ackSeq = last;
        const ackBytes = bytes;
        // Nothing written since the last flush began (a batch of notices, or one ending in a generation
        // notice, which flushed): that flush covers this batch.
        const needFlush = this.writtenSinceFlush;
        this.writtenSinceFlush = false;
        flushing = flushing.then(async () => {
          if (needFlush) await store.flush();
          if (!this.closed && ackSeq > 0) this.socket.write(encodeSeqFrame(FrameType.ACK, ackSeq));
          this.volumes.onApplied?.(this.hello!.tag, ackSeq, ackBytes);
        });
        // Without a rewind log the next batch waits for this flush: what arrives meanwhile is applied as
        // one batch with one flush (overlapping them gained nothing measurable in bench/resync, and would
        // give every small batch of sync writes its own fdatasync in a chain).
        if (!journal) await flushing;
        else flushing.catch((err: unknown) => (flushFailure ??= err as Error));
        if (this.queuedBytes <= MAX_QUEUED_BYTES / 2) this.socket.resume(); // restarts reading if receive() stopped it
      }
    } catch (err) {
      const message = err instanceof RewindLogFailure ? err.message : `writing ${store.description} on ${this.node} failed: ${(err as Error).message}; check that disk`;
      this.log.error(`applying replication for "${this.hello?.tag}": ${message}`);
      // Tell the source why (it shows the reason in its status), then hang up.
      this.closed = true;
      this.socket.end(encodeRefuse(message));
    } finally {
      this.applying = false;
    }
  }
}

export class ReplicationListener {
  private server: net.Server | null = null;
  private readonly sessions = new Map<string, TargetSession>();
  private readonly all = new Set<TargetSession>();

  constructor(
    private readonly volumes: TargetVolumes,
    private readonly node: string,
    private readonly log: Logger,
    /** This node's certificate and the cluster CA; null = plain TCP (--insecure-plaintext). */
    private readonly creds: NodeCredentials | null = null,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createReplicationServer({
      creds: this.creds,
      onSocket: (accepted, peerNode) => {
        let socket = accepted;
        const holder: { session?: TargetSession } = {};
        if (this.creds) {
          // TLS: the handle belongs to the TLS layer; read decrypted data as events.
          accepted.on('data', (bytes: Buffer) => {
            if (holder.session && !holder.session.receive(bytes)) accepted.pause();
          });
        } else {
          // Plain TCP, accepted paused: re-wrapped to read into the shared receive buffer, as the NBD export does.
          socket = adoptSocket(accepted, (bytes) => (holder.session ? holder.session.receive(bytes) : true), () => holder.session?.nextReceiveBuffer() ?? null);
        }
        const s = new TargetSession(socket, this.volumes, this.node, this.log, this.sessions, peerNode);
        holder.session = s;
        this.all.add(s);
        socket.once('close', () => this.all.delete(s));
      },
      onRefused: (reason, remote) => this.log.warn(`refused a replication connection from ${remote ?? '?'} before any data moved: ${reason}`),
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'EADDRINUSE'
        ? `replication port ${port} on ${host} is already in use; choose another with --replication HOST:PORT`
        : `cannot listen for replication on ${host}:${port}: ${e.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const a = server.address();
    return typeof a === 'object' && a ? a.port : port;
  }

  /** Disconnects the source of a mirror (pause, unextend, delete on the target side). */
  disconnect(tag: string): void {
    this.sessions.get(tag)?.close();
  }

  connectedSource(tag: string): boolean {
    return this.sessions.has(tag);
  }

  /** Asks the connected source of `tag` to hand the mirror over to this node. */
  requestSwitchover(tag: string, timeoutMs = 30_000): Promise<Switched> {
    const s = this.sessions.get(tag);
    if (!s) return Promise.resolve({ ok: false, message: 'no source is connected' });
    return s.requestSwitchover(timeoutMs);
  }

  async close(): Promise<void> {
    for (const s of this.all) s.close();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}
