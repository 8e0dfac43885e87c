// The mirror on its source: a BlockStore (served as the NetRAID device's NBD export) that writes to
// the local disk and to every target, with the intent log in front.
import type { BlockStore, ZeroOptions } from '../storage/block-store.js';
import { chunkRange, type IntentLog } from '../intent-log/bitmap.js';
import { compressWrite } from './compress.js';
import { encodeBookmark, encodeSeqFrame, encodeZero, FrameType, pooledWriteFrame, setFrameSeq, WRITE_HEADER_LENGTH } from '../replication/wire.js';
import { BufferPool } from '../storage/buffer-pool.js';
import type { Logger } from '../log.js';
import { ChunkLocks } from './chunk-locks.js';
import type { MirrorCore, MirrorPolicy } from './mirror-core.js';
import type { NodeCredentials } from '../replication/transport.js';
import { TargetLink, type TargetConfig } from './target-link.js';

export interface SourceMirrorOptions {
  tag: string;
  node: string;
  local: BlockStore;
  log: IntentLog;
  chunkSize: number;
  asyncLimit: number;
  resyncRate?: number;
  /** zlib level 0–9 offered to targets (0 = off); takes effect at each (re)connection. */
  compression?: number;
  policy: MirrorPolicy;
  /** Certificates for the replication connections; null or absent = plain TCP (--insecure-plaintext). */
  creds?: NodeCredentials | null;
  /** The mirror's size when the local disk is larger (a target disk may be; the mirror keeps the source's size). */
  size?: number;
}

/** A frame for one target, and what to call once its socket has written it (pooled frames). */
interface SentFrame {
  frame: Buffer;
  onWritten?: () => void;
}

export class SourceMirror implements BlockStore, MirrorCore {
  readonly tag: string;
  readonly node: string;
  readonly local: BlockStore;
  readonly log: IntentLog;
  readonly chunkSize: number;
  readonly locks = new ChunkLocks();
  readonly links: TargetLink[] = [];
  asyncLimit: number;
  resyncRate: number;
  compression: number;
  readonly policy: MirrorPolicy;
  readonly creds: NodeCredentials | null;
  private readonly sizeLimit: number | undefined;
  private seq = 0;
  /** The intent-log slots of the targets, in `links` order (kept with addTarget/removeTarget). */
  private slots: number[] = [];

  constructor(options: SourceMirrorOptions, private readonly logger: Logger) {
    this.tag = options.tag;
    this.node = options.node;
    this.local = options.local;
    this.log = options.log;
    this.chunkSize = options.chunkSize;
    this.asyncLimit = options.asyncLimit;
    this.resyncRate = options.resyncRate ?? 0;
    this.compression = options.compression ?? 0;
    this.policy = options.policy;
    this.creds = options.creds ?? null;
    this.sizeLimit = options.size;
  }

  // BlockStore, as the NBD server sees the mirror.
  get size(): number {
    return this.sizeLimit !== undefined ? Math.min(this.sizeLimit, this.local.size) : this.local.size;
  }
  get readOnly(): boolean {
    return false;
  }
  get description(): string {
    return `mirror ${this.tag} (${this.local.description})`;
  }
  /**
   * Not offered: a FAST_ZERO the local disk refuses would already be on its way to the targets.
   * Clients then zero by writing, which replicates like any write.
   */
  readonly canFastZero = false;
  /** write() copies the data into its replication frame before returning (see write()). */
  readonly syncWriteMax = Number.MAX_SAFE_INTEGER;

  nextSeq(): number {
    return ++this.seq;
  }

  /** @param checksumFirst the first resync compares hashes and sends only chunks that differ */
  addTarget(config: TargetConfig, checksumFirst = false): TargetLink {
    const link = new TargetLink(config, this, this.logger.child(`[${this.tag} -> ${config.node}]`));
    if (checksumFirst) link.useChecksumNextResync();
    this.links.push(link);
    this.slots = this.links.map((l) => l.slot);
    link.start();
    return link;
  }

  removeTarget(node: string): TargetLink | undefined {
    const i = this.links.findIndex((l) => l.config.node === node);
    if (i < 0) return undefined;
    const [link] = this.links.splice(i, 1);
    this.slots = this.links.map((l) => l.slot);
    link!.stop();
    return link;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.local.read(offset, length);
  }

  write(offset: number, data: readonly Buffer[], fua: boolean): Promise<void> {
    // The data is copied into the replication frame now, before anything is awaited: that is the one
    // copy this write makes (so the NBD layer may lend us its receive buffer, see syncWriteMax), and
    // the local write reads from the frame too. The sequence number is filled in once it is known.
    let length = 0;
    for (const d of data) length += d.length;
    const frame = pooledWriteFrame(0, offset, length);
    let at = WRITE_HEADER_LENGTH;
    for (const d of data) at += d.copy(frame, at);
    const payload = frame.subarray(WRITE_HEADER_LENGTH);
    // The frame goes back to the pool once the local write is done and every socket has written it.
    let holds = 1;
    const release = () => {
      if (--holds === 0) BufferPool.shared.release(frame);
    };
    let compressed: Buffer | null | undefined; // computed once, for the targets that agreed to it
    const frameFor = (seq: number, level: number): SentFrame => {
      if (level > 0 && compressed === undefined) compressed = compressWrite(offset, payload, level);
      if (level > 0 && compressed) return { frame: setFrameSeq(compressed, seq) };
      holds++;
      return { frame: setFrameSeq(frame, seq), onWritten: release };
    };
    // A small write without FUA is written on this thread, no promise (the store has copied it on return).
    const store = this.local;
    const local = !fua && store.writeSync && length <= store.syncWriteMax
      ? () => store.writeSync!(offset, payload)
      : () => store.write(offset, [payload], fua);
    return this.replicated(offset, length, frameFor, local).finally(release);
  }

  writeZeroes(offset: number, length: number, options: ZeroOptions): Promise<void> {
    return this.replicated(offset, length, (seq) => ({ frame: encodeZero(seq, offset, length) }), () => this.local.writeZeroes(offset, length, options));
  }

  /** A trim is mirrored as zeroes, so that source and target stay byte-identical. */
  trim(offset: number, length: number, fua: boolean): Promise<void> {
    if (length === 0) return Promise.resolve();
    return this.writeZeroes(offset, length, { mayPunch: true, fua, fast: false });
  }

  /** Local disk and every synchronous target are durable before this resolves. */
  async flush(): Promise<void> {
    const seq = this.nextSeq();
    const frame = encodeSeqFrame(FrameType.FLUSH, seq);
    const waits: Promise<void>[] = [];
    for (const link of this.links) if (link.send(frame, seq, 1, 0, 0) && link.isSync) waits.push(link.waitAck(seq));
    await this.local.flush();
    await Promise.all(waits);
  }

  /**
   * A rewind-log bookmark, sent in the write stream so that it marks the same point on every target.
   * Resolves when every target that got it has acknowledged it (journalled), or after 15 s.
   */
  async bookmark(name: string): Promise<{ marked: string[]; missed: Array<{ node: string; why: string }> }> {
    const seq = this.nextSeq();
    const frame = encodeBookmark(seq, name);
    const marked: string[] = [];
    const missed: Array<{ node: string; why: string }> = [];
    const sent: TargetLink[] = [];
    for (const link of this.links) {
      if (link.send(frame, seq, 1, 0, 0)) sent.push(link);
      else missed.push({ node: link.config.node, why: link.status().status.toLowerCase() });
    }
    const acked = await Promise.all(sent.map((link) => link.drain(15_000)));
    sent.forEach((link, i) => {
      if (acked[i]) marked.push(link.config.node);
      else missed.push({ node: link.config.node, why: 'no acknowledgement within 15 s' });
    });
    return { marked, missed };
  }

  async close(): Promise<void> {
    for (const l of this.links) l.stop();
    await this.log.flushClears();
    this.log.close();
    await this.local.close();
  }

  /**
   * The write path: bits durable in the intent log of every target, then the message to every
   * connected target and the local write, then (sync targets) their acknowledgement or (async) room in
   * the queue.
   */
  private async replicated(offset: number, length: number, frameFor: (seq: number, compression: number) => SentFrame, local: () => Promise<void> | void): Promise<void> {
    const [first, last] = chunkRange(this.chunkSize, offset, length);
    const rotation = this.policy.beforeWrite?.();
    if (rotation) await rotation;
    const slots = this.slots;
    // Pins the bits until the write is sent (see IntentLog.markDirty); a rejection unpins them.
    // Awaited only when there is something to wait for: most writes find their bits already durable
    // and no resync on their chunks, and each await costs a small write measurable time.
    if (slots.length > 0) {
      const marked = this.log.mark(slots, first, last);
      if (marked) await marked;
    }
    let pinned = slots.length > 0;
    try {
      if (!this.locks.tryBeginWrite(first, last)) await this.locks.beginWrite(first, last);
    } catch (err) {
      if (pinned) this.log.unpin(slots, first, last);
      throw err;
    }
    try {
      const seq = this.nextSeq();
      const waits: Promise<void>[] = [];
      const connected: TargetLink[] = [];
      try {
        for (const link of this.links) {
          if (!link.connected) continue;
          connected.push(link);
          // One frame for all targets (and one compressed frame for those that agreed to compression).
          const { frame, onWritten } = frameFor(seq, link.compression);
          if (!link.send(frame, seq, first, last, length, onWritten)) {
            onWritten?.();
            continue;
          }
          // An async target with room in its queue costs this write no wait at all.
          if (link.isSync) waits.push(link.waitAck(seq));
          else if (!link.hasRoom) waits.push(link.waitRoom());
        }
      } finally {
        if (pinned) this.log.unpin(slots, first, last);
        pinned = false;
      }
      try {
        const localDone = local();
        if (localDone) await localDone;
      } catch (err) {
        // The targets may already have what the source disk failed to take: keep these chunks dirty
        // (not cleared by the acknowledgements) so the difference shows and the next resync fixes it.
        for (const link of connected) link.keepDirty(first, last);
        throw err;
      }
      if (waits.length === 1) await waits[0];
      else if (waits.length > 1) await Promise.all(waits);
    } finally {
      this.locks.endWrite(first, last);
    }
  }
}
