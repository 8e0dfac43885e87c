// The intent log: one bitmap per target over the mirror's chunks, in one file per mirror.
//
// A bit is set, and durable, before the write it covers is issued; many writes share one fdatasync
// (group commit), and a chunk whose bit is already durable costs nothing. Bits are cleared lazily once
// the target acknowledged everything written to the chunk: a crash before the clear reaches the disk
// only means a chunk is resynced that did not need it.
//
// File layout: a 4 KiB header (magic, version, chunk size, volume size, slot count, async limit), then
// for each of the 7 target slots a bit array rounded up to 4 KiB.
import fs from 'node:fs';
import { AdaptiveFlush } from '../storage/adaptive-flush.js';

export const MAX_TARGETS = 7;
const MAGIC = 'TANDEMBM';
const VERSION = 1;
const HEADER_SIZE = 4096;
const PAGE = 4096;

export interface BitmapGeometry {
  chunkSize: number;
  volumeSize: number;
}

export function chunkCount(g: BitmapGeometry): number {
  return Math.ceil(g.volumeSize / g.chunkSize);
}

/** The chunks [first, last] that bytes [offset, offset+length) touch. */
export function chunkRange(chunkSize: number, offset: number, length: number): [number, number] {
  const first = Math.floor(offset / chunkSize);
  const last = Math.floor((offset + Math.max(length, 1) - 1) / chunkSize);
  return [first, last];
}

/** A plain bit set, the pure part. */
export class BitSet {
  readonly bytes: Buffer;
  constructor(readonly size: number, bytes?: Buffer) {
    this.bytes = bytes ?? Buffer.alloc(Math.ceil(size / 8));
  }
  get(i: number): boolean {
    return ((this.bytes[i >> 3] as number) & (1 << (i & 7))) !== 0;
  }
  set(i: number): boolean {
    const b = this.bytes[i >> 3] as number;
    const m = 1 << (i & 7);
    if (b & m) return false;
    this.bytes[i >> 3] = b | m;
    return true;
  }
  clear(i: number): boolean {
    const b = this.bytes[i >> 3] as number;
    const m = 1 << (i & 7);
    if (!(b & m)) return false;
    this.bytes[i >> 3] = b & ~m;
    return true;
  }
  setAll(): void {
    this.bytes.fill(0xff);
    const extra = this.bytes.length * 8 - this.size;
    if (extra > 0) this.bytes[this.bytes.length - 1] = 0xff >> extra;
  }
  clearAll(): void {
    this.bytes.fill(0);
  }
  count(): number {
    let n = 0;
    for (const b of this.bytes) {
      let x = b;
      while (x) {
        x &= x - 1;
        n++;
      }
    }
    return n;
  }
  /** The first set bit at or after `from`, or -1. */
  next(from: number): number {
    for (let i = from; i < this.size; i++) {
      if ((i & 7) === 0) {
        while (i < this.size && this.bytes[i >> 3] === 0) i += 8;
        if (i >= this.size) return -1;
      }
      if (this.get(i)) return i;
    }
    return -1;
  }
}

export class BitmapFileError extends Error {}

function slotBytes(bits: number): number {
  return Math.ceil(Math.ceil(bits / 8) / PAGE) * PAGE;
}

/**
 * One mirror's intent log. With no file ("none") the bits live only in memory, so after a restart
 * every target needs a full resync.
 */
export class IntentLog {
  /** The exact state: a bit is set while its chunk may differ on that target (status, resync). */
  readonly slots: BitSet[];
  /**
   * What the file holds once the running or pending commit is done: a superset of `slots`. Sets reach
   * it at once (and are waited for); clears only with flushClears(). So a chunk written again soon
   * after its bit was cleared in memory is still set on disk and its write waits for no commit.
   */
  private readonly disk: BitSet[];
  readonly chunks: number;
  private dirtyPages = new Set<number>(); // file pages of `disk` changed but not yet written
  private clearPages = new Set<number>(); // pages of `slots` with clears not yet copied to `disk`
  /**
   * Chunks marked dirty since the last periodic clear flush. Such a flush leaves their bits set in the
   * file (one flush longer): a chunk written again and again — a hot spot, or every chunk under random
   * writes — would otherwise cost a commit after every flush. The price is that a crash may resync a
   * chunk written in the last two flush intervals that did not need it.
   */
  private readonly recent: BitSet;
  /** The commit that changes made now will ride (commits are numbered from 1). */
  private pendingEpoch = 1;
  /** Every change noted before commit number `durableEpoch` started is on stable storage. */
  private durableEpoch = 0;
  /** Bits set in `disk` whose commit has not finished: key → commit number. */
  private readonly setEpochs = new Map<number, number>();
  private pendingKeys: number[] = [];
  private readonly waiters = new Map<number, Array<{ resolve: () => void; reject: (e: Error) => void }>>();
  /** Bits of writes between markDirty() and unpin(): an acknowledgement of an older write must not clear them. */
  private readonly pins = new Map<number, number>();
  private committing = false;
  /** Commits' fdatasync: on this thread while the file's device answers in microseconds (AdaptiveFlush). */
  private readonly flusher = AdaptiveFlush.forFiles();
  private fd: number | null;
  asyncLimit: number;

  private constructor(readonly file: string | null, readonly geometry: BitmapGeometry, fd: number | null, slots: BitSet[], asyncLimit: number) {
    this.fd = fd;
    this.slots = slots;
    this.disk = slots.map((b) => new BitSet(b.size, Buffer.from(b.bytes)));
    this.chunks = chunkCount(geometry);
    this.recent = new BitSet(this.chunks);
    this.asyncLimit = asyncLimit;
  }

  static inMemory(geometry: BitmapGeometry): IntentLog {
    const n = chunkCount(geometry);
    return new IntentLog(null, geometry, null, Array.from({ length: MAX_TARGETS }, () => new BitSet(n)), 256);
  }

  /** Opens an existing bitmap file, or creates one (all clean) if `create` and it does not exist. */
  static open(file: string, geometry: BitmapGeometry, options: { create: boolean; asyncLimit?: number }): IntentLog {
    const n = chunkCount(geometry);
    const per = slotBytes(n);
    if (!fs.existsSync(file)) {
      if (!options.create) throw new BitmapFileError(`bitmap file ${file} does not exist`);
      const header = IntentLog.header(geometry, options.asyncLimit ?? 256);
      const fd = fs.openSync(file, 'wx+', 0o600);
      fs.writeSync(fd, header, 0, header.length, 0);
      fs.ftruncateSync(fd, HEADER_SIZE + per * MAX_TARGETS);
      fs.fsyncSync(fd);
      return new IntentLog(file, geometry, fd, Array.from({ length: MAX_TARGETS }, () => new BitSet(n)), options.asyncLimit ?? 256);
    }
    const fd = fs.openSync(file, 'r+');
    const header = Buffer.alloc(HEADER_SIZE);
    fs.readSync(fd, header, 0, HEADER_SIZE, 0);
    const parsed = IntentLog.parseHeader(header, file);
    if (parsed.chunkSize !== geometry.chunkSize || parsed.volumeSize !== geometry.volumeSize) {
      fs.closeSync(fd);
      throw new BitmapFileError(
        `bitmap file ${file} was made for chunk ${parsed.chunkSize} / volume ${parsed.volumeSize}, not chunk ${geometry.chunkSize} / volume ${geometry.volumeSize}`,
      );
    }
    const slots: BitSet[] = [];
    for (let s = 0; s < MAX_TARGETS; s++) {
      const bytes = Buffer.alloc(Math.ceil(n / 8));
      fs.readSync(fd, bytes, 0, bytes.length, HEADER_SIZE + s * per);
      slots.push(new BitSet(n, bytes));
    }
    return new IntentLog(file, geometry, fd, slots, parsed.asyncLimit);
  }

  static header(g: BitmapGeometry, asyncLimit: number): Buffer {
    const h = Buffer.alloc(HEADER_SIZE);
    h.write(MAGIC, 0, 'ascii');
    h.writeUInt32LE(VERSION, 8);
    h.writeUInt32LE(g.chunkSize, 12);
    h.writeBigUInt64LE(BigInt(g.volumeSize), 16);
    h.writeUInt32LE(MAX_TARGETS, 24);
    h.writeUInt32LE(asyncLimit, 28);
    return h;
  }

  static parseHeader(h: Buffer, file: string): { chunkSize: number; volumeSize: number; asyncLimit: number } {
    if (h.toString('ascii', 0, 8) !== MAGIC) throw new BitmapFileError(`${file} is not a Tandem bitmap file (bad magic)`);
    const version = h.readUInt32LE(8);
    if (version !== VERSION) throw new BitmapFileError(`${file} has bitmap version ${version}; this agent reads version ${VERSION}`);
    return { chunkSize: h.readUInt32LE(12), volumeSize: Number(h.readBigUInt64LE(16)), asyncLimit: h.readUInt32LE(28) };
  }

  /**
   * Sets the bits of chunks [first, last] in the given slots; resolves once they are durable.
   * Resolves at once when every bit is already set in the file (durably, by a finished commit).
   * The bits stay pinned — clear() leaves them — until unpin(), which the writer calls once its write
   * was handed to the targets (from then on only an acknowledgement of it clears them). Without the
   * pin, an acknowledgement of an older write to the chunk arriving in between would clear the bit of
   * a write not yet sent. A rejected markDirty unpins by itself.
   */
  markDirty(slots: readonly number[], first: number, last: number): Promise<void> {
    return this.mark(slots, first, last) ?? Promise.resolve();
  }

  /** markDirty(), but null when the bits are already durable (the write path's common case: no promise). */
  mark(slots: readonly number[], first: number, last: number): Promise<void> | null {
    let need = 0;
    for (const s of slots) {
      const mem = this.slots[s] as BitSet;
      const disk = this.disk[s] as BitSet;
      for (let c = first; c <= last; c++) {
        mem.set(c);
        this.recent.set(c);
        const key = s * 2 ** 32 + c;
        this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
        if (this.fd === null) continue;
        if (disk.set(c)) {
          this.notePage(s, c);
          this.setEpochs.set(key, this.pendingEpoch);
          this.pendingKeys.push(key);
          need = this.pendingEpoch;
        } else {
          const e = this.setEpochs.get(key);
          if (e !== undefined && e > need) need = e;
        }
      }
    }
    if (this.fd === null || need <= this.durableEpoch) return null;
    return this.waitEpoch(need).catch((err: unknown) => {
      this.unpin(slots, first, last);
      throw err;
    });
  }

  /** The write that marked these bits has been sent to the targets (or will not be): see markDirty. */
  unpin(slots: readonly number[], first: number, last: number): void {
    for (const s of slots) {
      for (let c = first; c <= last; c++) {
        const key = s * 2 ** 32 + c;
        const n = (this.pins.get(key) ?? 1) - 1;
        if (n > 0) this.pins.set(key, n);
        else this.pins.delete(key);
      }
    }
  }

  /** Clears a bit in memory (not while pinned); it reaches the file with the next flushClears() (lazily). */
  clear(slot: number, chunk: number): void {
    if (this.pins.has(slot * 2 ** 32 + chunk)) return;
    if ((this.slots[slot] as BitSet).clear(chunk) && this.fd !== null) this.clearPages.add(slot * 1_000_000_000 + Math.floor(chunk / 8 / PAGE));
  }

  setAll(slot: number): Promise<void> {
    (this.slots[slot] as BitSet).setAll();
    (this.disk[slot] as BitSet).setAll();
    this.noteSlot(slot);
    return this.fd !== null ? this.waitEpoch(this.pendingEpoch) : Promise.resolve();
  }

  /** Sets every bit that is set in `bits` (another node's bitmap over the same chunks); resolves once durable. */
  mergeDirty(slot: number, bits: Buffer): Promise<void> {
    const set = this.slots[slot] as BitSet;
    const disk = this.disk[slot] as BitSet;
    if (bits.length !== set.bytes.length) throw new BitmapFileError(`a peer's bitmap has ${bits.length} bytes, ours ${set.bytes.length}: the mirrors' chunk sizes or volume sizes differ`);
    let changed = false;
    for (let i = 0; i < bits.length; i++) {
      set.bytes[i] = (set.bytes[i] as number) | (bits[i] as number);
      const merged = (disk.bytes[i] as number) | (bits[i] as number);
      if (merged !== disk.bytes[i]) {
        disk.bytes[i] = merged;
        changed = true;
        this.notePage(slot, i * 8);
      }
    }
    return changed && this.fd !== null ? this.waitEpoch(this.pendingEpoch) : Promise.resolve();
  }

  clearAll(slot: number): Promise<void> {
    (this.slots[slot] as BitSet).clearAll();
    (this.disk[slot] as BitSet).clearAll();
    this.noteSlot(slot);
    return this.fd !== null ? this.waitEpoch(this.pendingEpoch) : Promise.resolve();
  }

  /**
   * Writes the clears made so far to the file (lazy: no writer waits for them). With `keepRecent` (the
   * periodic flush), bits of chunks marked dirty since the previous such flush stay set in the file
   * until the next one (see `recent`); without it the file takes the exact state.
   */
  flushClears(options: { keepRecent?: boolean } = {}): Promise<void> {
    if (this.fd === null) return Promise.resolve();
    this.copyClears(options.keepRecent === true);
    if (this.dirtyPages.size === 0) return Promise.resolve();
    return this.waitEpoch(this.pendingEpoch);
  }

  /** Clears not yet in the file (kept back by the last periodic flush, or made since): another flush is due. */
  get clearsPending(): boolean {
    return this.clearPages.size > 0;
  }

  dirtyCount(slot: number): number {
    return (this.slots[slot] as BitSet).count();
  }

  close(): void {
    if (this.fd !== null) {
      this.copyClears(false);
      this.writePages();
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  /**
   * Pages with clears: the file takes the exact state, or with `keepRecent` the exact state plus the
   * recently marked chunks still set there (a superset stays: `slots` ⊆ `disk`). A page that kept such
   * bits is cleared again by the next flush.
   */
  private copyClears(keepRecent = false): void {
    const pages = [...this.clearPages];
    this.clearPages.clear();
    const recent = this.recent.bytes;
    for (const key of pages) {
      const slot = Math.floor(key / 1_000_000_000);
      const page = key % 1_000_000_000;
      const mem = (this.slots[slot] as BitSet).bytes;
      const disk = (this.disk[slot] as BitSet).bytes;
      const start = page * PAGE;
      if (start >= mem.length) continue;
      const end = Math.min(mem.length, start + PAGE);
      let changed = false;
      let kept = false;
      for (let i = start; i < end; i++) {
        const m = mem[i] as number;
        const d = disk[i] as number;
        const want = keepRecent ? m | (d & (recent[i] as number)) : m;
        if (want !== d) {
          disk[i] = want;
          changed = true;
        }
        if (want !== m) kept = true;
      }
      if (changed) this.dirtyPages.add(key);
      if (kept) this.clearPages.add(key);
    }
    if (keepRecent) this.recent.clearAll();
  }

  private notePage(slot: number, chunk: number): void {
    if (this.fd === null) return;
    this.dirtyPages.add(slot * 1_000_000_000 + Math.floor(chunk / 8 / PAGE));
  }

  private noteSlot(slot: number): void {
    const pages = slotBytes(this.chunks) / PAGE;
    for (let p = 0; p < pages; p++) this.dirtyPages.add(slot * 1_000_000_000 + p);
  }

  /** Resolves once commit number `epoch` (the running one, or the next) has finished. */
  private waitEpoch(epoch: number): Promise<void> {
    if (epoch <= this.durableEpoch) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let list = this.waiters.get(epoch);
      if (!list) this.waiters.set(epoch, (list = []));
      list.push({ resolve, reject });
      if (!this.committing) setImmediate(() => void this.commit());
    });
  }

  /** Group commit: write every changed page, one fdatasync, release everyone who waited for it. */
  private async commit(): Promise<void> {
    if (this.committing || this.fd === null) return;
    if (this.dirtyPages.size === 0 && !this.waiters.has(this.pendingEpoch)) return;
    this.committing = true;
    const epoch = this.pendingEpoch++;
    const keys = this.pendingKeys;
    this.pendingKeys = [];
    // Waiters for this commit, including those that join while it runs.
    const takeWaiters = () => {
      const list = this.waiters.get(epoch) ?? [];
      this.waiters.delete(epoch);
      return list;
    };
    try {
      this.writePages();
      const fd = this.fd;
      await this.flusher.flush(fd);
      this.durableEpoch = epoch;
      for (const k of keys) if (this.setEpochs.get(k) === epoch) this.setEpochs.delete(k);
      for (const w of takeWaiters()) w.resolve();
    } catch (err) {
      // Not durable: these bits ride the next commit again (and their writers failed).
      for (const k of keys) {
        if (this.setEpochs.get(k) !== epoch) continue;
        this.setEpochs.set(k, this.pendingEpoch);
        this.pendingKeys.push(k);
        this.notePage(Math.floor(k / 2 ** 32), k % 2 ** 32);
      }
      for (const w of takeWaiters()) w.reject(err as Error);
    } finally {
      this.committing = false;
      if (this.waiters.has(this.pendingEpoch)) setImmediate(() => void this.commit());
    }
  }

  private writePages(): void {
    if (this.fd === null) return;
    const per = slotBytes(this.chunks);
    for (const key of this.dirtyPages) {
      const slot = Math.floor(key / 1_000_000_000);
      const page = key % 1_000_000_000;
      const bytes = (this.disk[slot] as BitSet).bytes;
      const start = page * PAGE;
      const end = Math.min(bytes.length, start + PAGE);
      if (start >= bytes.length) continue;
      fs.writeSync(this.fd, bytes, start, end - start, HEADER_SIZE + slot * per + start);
    }
    this.dirtyPages.clear();
  }
}

/** Everything in a bitmap file, as `bitmap -X` shows it. */
export interface BitmapFileContents {
  version: number;
  chunkSize: number;
  volumeSize: number;
  chunks: number;
  slotCount: number;
  asyncLimit: number;
  slots: BitSet[];
}

/** Reads and checks a whole bitmap file without opening it for writing. */
export function readBitmapFile(file: string): BitmapFileContents {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const header = Buffer.alloc(HEADER_SIZE);
    if (fs.readSync(fd, header, 0, HEADER_SIZE, 0) < HEADER_SIZE) {
      if (header.toString('ascii', 0, 8) !== MAGIC) throw new BitmapFileError(`${file} is not a Tandem bitmap file (bad magic)`);
      throw new BitmapFileError(`${file} is truncated (${size} bytes, shorter than its header)`);
    }
    const parsed = IntentLog.parseHeader(header, file);
    const slotCount = header.readUInt32LE(24);
    if (parsed.chunkSize === 0 || slotCount !== MAX_TARGETS) {
      throw new BitmapFileError(`${file} has a damaged header (chunk size ${parsed.chunkSize}, ${slotCount} slots)`);
    }
    const chunks = chunkCount(parsed);
    const per = slotBytes(chunks);
    const expected = HEADER_SIZE + per * MAX_TARGETS;
    if (size < expected) throw new BitmapFileError(`${file} is truncated (${size} bytes; a bitmap for this volume has ${expected})`);
    const slots: BitSet[] = [];
    for (let s = 0; s < MAX_TARGETS; s++) {
      const bytes = Buffer.alloc(Math.ceil(chunks / 8));
      fs.readSync(fd, bytes, 0, bytes.length, HEADER_SIZE + s * per);
      slots.push(new BitSet(chunks, bytes));
    }
    return { version: VERSION, chunkSize: parsed.chunkSize, volumeSize: parsed.volumeSize, chunks, slotCount, asyncLimit: parsed.asyncLimit, slots };
  } finally {
    fs.closeSync(fd);
  }
}

/** Rewrites the async limit in a bitmap file's header (`bitmap -a`); the agent reads it when it opens the file. */
export function writeAsyncLimit(file: string, asyncLimit: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(asyncLimit, 0);
    fs.writeSync(fd, b, 0, 4, 28);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
