// fdatasync on the event-loop thread while the device answers it in microseconds, through libuv's
// thread pool otherwise.
//
// A device with nothing to write back (memory-backed, or a write cache that needs no flush) answers a
// flush in microseconds, far less than the two thread wake-ups of a thread-pool round trip, which a
// target pays once per acknowledged batch and the rewind log once per journalled run. A slower flush
// sends flushes to the pool for POOL_FLUSHES_MS, doubling (up to POOL_FLUSHES_MAX_MS) each time a later
// try is slow again, so a real disk stalls the event loop once in minutes at most.

/** A flush on the calling thread slower than this means the device has a cache to write back. */
const SLOW_FLUSH_MS = 0.2;
const POOL_FLUSHES_MS = 5_000;
const POOL_FLUSHES_MAX_MS = 300_000;

export class AdaptiveFlush {
  /** Until then flushes go through the thread pool (the last one on the calling thread was slow). */
  private poolUntil = 0;
  private poolFor = POOL_FLUSHES_MS;

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

  flush(fd: number): Promise<void> {
    const t0 = this.now();
    if (!this.onThread || t0 < this.poolUntil) return this.inPool(fd);
    try {
      this.onThread(fd);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const t1 = this.now();
    if (t1 - t0 > SLOW_FLUSH_MS) {
      this.poolUntil = t1 + this.poolFor;
      this.poolFor = Math.min(2 * this.poolFor, POOL_FLUSHES_MAX_MS);
    } else {
      this.poolFor = POOL_FLUSHES_MS;
    }
    return Promise.resolve();
  }
}
