// Keeps resync from reading a chunk while an application write to it is in progress, and application
// writes from starting on a chunk while resync reads and sends it. Without this a resync could read
// half-old data and send it after the newer write, and the target would end with stale bytes.

export class ChunkLocks {
  private readonly writers = new Map<number, number>(); // chunk -> application writes in progress
  private readonly resyncing = new Map<number, Promise<void>>(); // chunk -> released when resync is done
  private readonly idleWaiters = new Map<number, Array<() => void>>();

  /** beginWrite() when no resync holds any of the chunks (true), at once; false: nothing taken. */
  tryBeginWrite(first: number, last: number): boolean {
    if (this.resyncing.size > 0) {
      for (let c = first; c <= last; c++) if (this.resyncing.has(c)) return false;
    }
    for (let c = first; c <= last; c++) this.writers.set(c, (this.writers.get(c) ?? 0) + 1);
    return true;
  }

  /** Application write over chunks [first, last]: waits while resync holds any of them. */
  async beginWrite(first: number, last: number): Promise<void> {
    for (;;) {
      let blocker: Promise<void> | undefined;
      for (let c = first; c <= last && !blocker; c++) blocker = this.resyncing.get(c);
      if (!blocker) break;
      await blocker;
    }
    for (let c = first; c <= last; c++) this.writers.set(c, (this.writers.get(c) ?? 0) + 1);
  }

  endWrite(first: number, last: number): void {
    for (let c = first; c <= last; c++) {
      const n = (this.writers.get(c) ?? 1) - 1;
      if (n > 0) {
        this.writers.set(c, n);
        continue;
      }
      this.writers.delete(c);
      const waiters = this.idleWaiters.get(c);
      if (waiters) {
        this.idleWaiters.delete(c);
        for (const w of waiters) w();
      }
    }
  }

  /** Resync takes a chunk: new application writes wait; resolves once writes in progress finished. */
  async lockForResync(chunk: number): Promise<() => void> {
    while (this.resyncing.has(chunk)) await this.resyncing.get(chunk);
    let release!: () => void;
    this.resyncing.set(chunk, new Promise<void>((r) => (release = r)));
    while (this.writers.has(chunk)) {
      await new Promise<void>((r) => {
        const list = this.idleWaiters.get(chunk) ?? [];
        list.push(r);
        this.idleWaiters.set(chunk, list);
      });
    }
    return () => {
      this.resyncing.delete(chunk);
      release();
    };
  }
}
