// The block storage behind an export: the only place the NBD server touches data.

export interface ZeroOptions {
  /** The client allows the range to become a hole (NBD_CMD_WRITE_ZEROES without NO_HOLE). */
  mayPunch: boolean;
  /** Persist before resolving (FUA). */
  fua: boolean;
  /** NBD FAST_ZERO: fail with code ENOTSUP rather than fall back to writing zero bytes. */
  fast: boolean;
}

export function notSupported(what: string): Error {
  return Object.assign(new Error(`${what} is not supported here`), { code: 'ENOTSUP' });
}

export interface BlockStore {
  readonly size: number;
  readonly readOnly: boolean;
  /** What the store is, for messages: a path. */
  readonly description: string;
  /**
   * Writes up to this many bytes have copied their data before write() returns, so the caller may
   * reuse the buffer at once (0: never).
   */
  readonly syncWriteMax: number;
  /** True if zeroing without writing data (hole punch / BLKZEROOUT) is available. */
  readonly canFastZero: boolean;
  /** The data; the caller may hand the buffer to BufferPool.shared.release() once done with it. */
  read(offset: number, length: number): Promise<Buffer>;
  /** Optional: read() on the calling thread (cheap for small reads from the page cache). */
  readSync?(offset: number, length: number): Buffer;
  /** Optional: reads `into.length` bytes at `offset` into a buffer the caller owns (saves a copy). */
  readInto?(offset: number, into: Buffer): Promise<void>;
  /**
   * Writes the concatenation of `data` (the payload as it arrived, in pieces, so it need not be copied).
   * Resolves once written; with `fua`, once on stable storage.
   */
  write(offset: number, data: readonly Buffer[], fua: boolean): Promise<void>;
  /**
   * Optional: write() of at most syncWriteMax bytes, without FUA, done on the calling thread before it
   * returns (throws on error). The replication target applies small writes with it, no promise each.
   */
  writeSync?(offset: number, data: Buffer): void;
  /** Resolves once every write that resolved before the call is on stable storage. */
  flush(): Promise<void>;
  /** Advisory discard; never fails for lack of support. */
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, options: ZeroOptions): Promise<void>;
  close(): Promise<void>;
}

/** An I/O error carrying the errno name of the failed system call. */
export function errnoCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
