// A queue of received chunks from which exact-length buffers are taken, copying only when a
// requested range spans chunks.

export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // read position within chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Removes and returns exactly n bytes; the caller checks `length` first. */
  take(n: number): Buffer {
    if (n > this.total) throw new RangeError(`take(${n}) with only ${this.total} bytes queued`);
    const first = this.chunks[0];
    if (n === 0 || first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length - this.head, n - filled);
      c.copy(out, filled, this.head, this.head + k);
      filled += k;
      this.advance(k);
    }
    return out;
  }

  /** Everything still queued, as one buffer (used when handing the stream to the next phase). */
  drain(): Buffer {
    return this.take(this.total);
  }

  private advance(n: number): void {
    this.head += n;
    this.total -= n;
    const c = this.chunks[0];
    if (c !== undefined && this.head >= c.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
