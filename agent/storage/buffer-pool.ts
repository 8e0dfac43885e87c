// Reusable buffers for read replies. A fresh multi-megabyte Buffer is mmap-ed memory whose every page
// faults on first touch and is unmapped at GC; reusing them removed most of that cost on the read path
// (bench/nbd-export, seqread-1m-qd16).

const MIN_CLASS = 4096;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private readonly ours = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;

  /** @param maxPooledBytes upper bound of memory kept idle in the pool */
  constructor(private readonly maxPooledBytes = 64 * 1024 * 1024) {}

  /** A buffer of exactly `length` bytes (a view of a pooled one); give it back with release(). */
  acquire(length: number): Buffer {
    const size = BufferPool.sizeClass(length);
    const list = this.free.get(size);
    const whole = list?.pop();
    if (whole) {
      this.pooledBytes -= size;
      return whole.subarray(0, length);
    }
    const fresh = Buffer.allocUnsafeSlow(size);
    this.ours.add(fresh.buffer);
    return fresh.subarray(0, length);
  }

  /** Returns a buffer obtained from acquire(); its contents may be overwritten at once. */
  release(buffer: Buffer): void {
    if (!this.ours.has(buffer.buffer)) return; // not one of ours: leave it to the GC
    const size = buffer.buffer.byteLength;
    // A full pool makes room by dropping idle buffers of other sizes: what is released now is what the
    // current work needs (after a full resync left it full of large frames, the small frames of every
    // partial resync were allocated afresh and collected: a major GC each time).
    while (this.pooledBytes + size > this.maxPooledBytes && this.dropOther(size));
    if (this.pooledBytes + size > this.maxPooledBytes) return;
    const whole = Buffer.from(buffer.buffer, 0, size);
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(whole);
    this.pooledBytes += size;
  }

  /** Drops one idle buffer of the largest size class other than `keep`; false if there is none. */
  private dropOther(keep: number): boolean {
    let victim = 0;
    for (const [size, list] of this.free) if (size !== keep && list.length > 0 && size > victim) victim = size;
    if (victim === 0) return false;
    this.free.get(victim)!.pop();
    this.pooledBytes -= victim;
    return true;
  }

  get idleBytes(): number {
    return this.pooledBytes;
  }

  /** The pool read replies come from (one per process: all exports share it). */
  static readonly shared = new BufferPool();

  /**
   * Next power of two, at least 4 KiB; or a power of two plus 4 KiB when that is enough: a frame is its
   * data (often a power of two: a chunk, a 1 MiB resync run) plus a small header, and would otherwise
   * take a buffer twice its size.
   */
  static sizeClass(length: number): number {
    let size = MIN_CLASS;
    while (size < length) size *= 2;
    const withHeader = size / 2 + MIN_CLASS;
    return size > 2 * MIN_CLASS && length <= withHeader ? withHeader : size;
  }
}
