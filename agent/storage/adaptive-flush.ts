// fdatasync on the event-loop thread while the device answers it in microseconds, through libuv's
// thread pool otherwise.
//
// A device with nothing to write back (memory-backed, or a write cache that needs no flush) answers a
// flush in microseconds, far less than the two thread wake-ups of a thread-pool round trip, which a
// target pays once per acknowledged batch and the rewind log once per journalled run. When flushes are
// slow, they go to the pool for POOL_FLUSHES_MS, doubling (up to POOL_FLUSHES_MAX_MS) each time later
// tries are slow again, so a real disk stalls the event loop a few times in minutes at most.
//
// "Slow" is SLOW_IN_WINDOW of the last WINDOW flushes, not one: a flush on a busy machine is now and then
// slow because the thread was preempted during it, not because of the device. Reacting to single ones
// kept a memory-backed target in the pool much of the time under load (bench/mirror sync 4k: 205–226
// MiB/s against 301–317 with every flush on the thread).

import fs from 'node:fs';

/** A flush on the calling thread slower than this may mean the device has a cache to write back. */
const SLOW_FLUSH_MS = 0.2;
const WINDOW = 8;
const SLOW_IN_WINDOW = 3;
const POOL_FLUSHES_MS = 5_000;
const POOL_FLUSHES_MAX_MS = 300_000;

/** fdatasync(2) through libuv's thread pool. */
export function fdatasyncInPool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function bitCount(x: number): number {
  let n = 0;
  for (let v = x; v !== 0; v &= v - 1) n++;
  return n;
}

export class AdaptiveFlush {
  /** Until then flushes go through the thread pool (recent ones on the calling thread were slow). */
  private poolUntil = 0;
  private poolFor = POOL_FLUSHES_MS;
  /** Bit i set: the i-th latest flush on the calling thread was slow (the last WINDOW of them). */
  private slowHistory = 0;

  /**
   * @param onThread fdatasync on the calling thread (absent: always the pool)
   * @param inPool fdatasync through the thread pool
   * @param now the clock in milliseconds (tests give their own)
   */
  constructor(
    private readonly onThread: ((fd: number) => void) | undefined,
    private readonly inPool: (fd: number) => Promise<void>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** For descriptors of our own files: fdatasync(2) on the thread or through the pool. */
  static forFiles(): AdaptiveFlush {
    return new AdaptiveFlush((fd) => fs.fdatasyncSync(fd), fdatasyncInPool);
  }

  flush(fd: number): Promise<void> {
    const t0 = this.now();
    if (!this.onThread || t0 < this.poolUntil) return this.inPool(fd);
    try {
      this.onThread(fd);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const t1 = this.now();
    const slow = t1 - t0 > SLOW_FLUSH_MS;
    this.slowHistory = ((this.slowHistory << 1) | (slow ? 1 : 0)) & ((1 << WINDOW) - 1);
    if (slow && bitCount(this.slowHistory) >= SLOW_IN_WINDOW) {
      this.poolUntil = t1 + this.poolFor;
      this.poolFor = Math.min(2 * this.poolFor, POOL_FLUSHES_MAX_MS);
      this.slowHistory = 0;
    } else if (this.slowHistory === 0) {
      this.poolFor = POOL_FLUSHES_MS;
    }
    return Promise.resolve();
  }
}
