// A BlockStore over a regular file or a block device.
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { notSupported, type BlockStore, type ZeroOptions } from './block-store.js';
import { BufferPool } from './buffer-pool.js';
import { AdaptiveFlush, fdatasyncInPool } from './adaptive-flush.js';

/** The system calls the store makes, injectable so tests can check their order at the I/O boundary. */
export interface FileIo {
  /** Writes the buffers in order at `position`; returns bytes written (may be short). */
  pwritev(fd: number, data: readonly Buffer[], position: number): Promise<number>;
  /** The same, on the calling thread: used for small writes, where a thread-pool round trip costs more than the copy. */
  pwritevSync(fd: number, data: readonly Buffer[], position: number): number;
  pread(fd: number, into: Buffer, offset: number, position: number, length: number): Promise<number>;
  /** The same, on the calling thread (optional: stores without it always use pread). */
  preadSync?(fd: number, into: Buffer, offset: number, position: number, length: number): number;
  fdatasync(fd: number): Promise<void>;
  /** The same, on the calling thread (optional: stores without it always flush through the pool). */
  fdatasyncSync?(fd: number): void;
  /** Deallocates a range (hole punch on a file, discard or zero-out on a device); false if unsupported. */
  deallocate(fd: number, isBlockDevice: boolean, offset: number, length: number, mustZero: boolean): Promise<boolean>;
}

function runTool(tool: string, args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: 120_000 }, (err) => resolve(!err));
  });
}

export const nodeFileIo: FileIo = {
  pwritev: (fd, data, position) =>
    new Promise((resolve, reject) =>
      fs.writev(fd, data as Buffer[], position, (err, written) => (err ? reject(err) : resolve(written))),
    ),
  pwritevSync: (fd, data, position) => fs.writevSync(fd, data as Buffer[], position),
  pread: (fd, into, offset, position, length) =>
    new Promise((resolve, reject) =>
      fs.read(fd, into, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
    ),
  preadSync: (fd, into, offset, position, length) => fs.readSync(fd, into, offset, length, position),
  fdatasync: fdatasyncInPool,
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  // Node has no fallocate(2) or BLKDISCARD/BLKZEROOUT, so util-linux does it. Called only for large
  // ranges (see FAST_ZERO_MIN), where a process start is cheap next to writing the bytes.
  // The tool opens our descriptor through /proc, so it acts on the inode we hold even if the path was
  // renamed or replaced since we opened it.
  deallocate: (fd, isBlockDevice, offset, length, mustZero) => {
    const path = `/proc/${process.pid}/fd/${fd}`;
    return isBlockDevice
      ? runTool('blkdiscard', [...(mustZero ? ['--zeroout'] : []), '-o', String(offset), '-l', String(length), path])
      : runTool('fallocate', ['--punch-hole', '--keep-size', '-o', String(offset), '-l', String(length), path]);
  },
};

/**
 * Writes up to this size are made on the event-loop thread: into the page cache that is a copy of a
 * few microseconds, much less than handing the request to libuv's thread pool and back (measured in
 * bench/nbd-export). TANDEM_SYNC_WRITE_MAX overrides it; 0 sends every write through the pool.
 */
export const SYNC_WRITE_MAX = Number(process.env.TANDEM_SYNC_WRITE_MAX ?? 1024 * 1024);
/**
 * Reads up to this size may be made on the event-loop thread too (TANDEM_SYNC_READ_MAX; default 0:
 * every read through the thread pool). A read served from the page cache is a copy, like a write, and
 * costs less there (bench/nbd-export seqread-1m: 0.46 → 0.33 CPU s/GiB). But a read that waits for the
 * device stalls every connection and serialises reads to one at a time, so it is off by default (for
 * memory-backed disks, or disks that fit the page cache); and while on, two reads in a row slower than
 * a page-cache copy (slowRead) send reads to the thread pool for POOL_READS_MS.
 */
export const SYNC_READ_MAX = Number(process.env.TANDEM_SYNC_READ_MAX ?? 0);
const POOL_READS_MS = 2_000;
/** Slower than a page-cache copy: 50 µs plus 1 ms per MiB. */
const slowRead = (ms: number, bytes: number) => ms > 0.05 + bytes / (1024 * 1024);

/** Drops the first n bytes from a list of buffers (after a short write). */
export function dropPrefix(data: readonly Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of data) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

/** Zero ranges at least this long are deallocated rather than written. */
export const FAST_ZERO_MIN = 4 * 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);

export class OpenError extends Error {}

/** Size of a block device from sysfs (Node cannot issue BLKGETSIZE64). */
function blockDeviceSize(rdev: number): number {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  const sectors = fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim();
  return Number(sectors) * 512;
}

export class FileBlockStore implements BlockStore {
  private closed = false;
  /** Until then reads go through the thread pool (a synchronous read was slow: the device, not the cache). */
  private poolReadsUntil = 0;
  private slowReads = 0;

  private constructor(
    private readonly fd: number,
    readonly description: string,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly isBlockDevice: boolean,
    private readonly io: FileIo,
    private readonly syncReadMax: number,
    private readonly now: () => number,
  ) {
    this.flusher = new AdaptiveFlush(io.fdatasyncSync ? (f) => io.fdatasyncSync!(f) : undefined, (f) => io.fdatasync(f), now);
  }

  readonly syncWriteMax = SYNC_WRITE_MAX;
  /** Flushes on this thread while the device answers them in microseconds (see AdaptiveFlush). */
  private readonly flusher: AdaptiveFlush;

  get canFastZero(): boolean {
    return !this.readOnly;
  }

  /** Opens a file or block device; errors name the path and say what to do. */
  /**
   * @param options.syncReadMax reads up to this size on the calling thread while fast (default TANDEM_SYNC_READ_MAX)
   * @param options.now the clock in milliseconds that times reads and flushes (tests give their own)
   */
  static open(path: string, options: { readOnly: boolean; io?: FileIo; syncReadMax?: number; now?: () => number }): FileBlockStore {
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        throw new OpenError(`${path} does not exist. Name an existing disk or partition, or create a file first (for example: truncate -s 1G ${path}).`);
      }
      throw new OpenError(`cannot examine ${path}: ${(err as Error).message}`);
    }
    if (!st.isFile() && !st.isBlockDevice()) {
      throw new OpenError(`${path} is neither a regular file nor a block device. Name a disk, a partition or an image file.`);
    }
    let fd: number;
    try {
      // O_EXCL on a block device is the kernel's exclusive claim: it fails while the device is mounted
      // or held by another exclusive user, so a mounted disk can never be exported by mistake.
      const access = options.readOnly ? fs.constants.O_RDONLY : fs.constants.O_RDWR;
      fd = fs.openSync(path, st.isBlockDevice() ? access | fs.constants.O_EXCL : access);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const hint = code === 'EACCES' || code === 'EPERM' ? ' Run the agent as root or fix the permissions.' :
        code === 'EBUSY' ? ' It is mounted or held by another program (a file system, swap, md, another export); unmount or release it first.' :
        code === 'EROFS' ? ' It is on a read-only file system; use --read-only.' : '';
      throw new OpenError(`cannot open ${path}: ${(err as Error).message}.${hint}`);
    }
    const size = st.isBlockDevice() ? blockDeviceSize(st.rdev) : st.size;
    if (size === 0) {
      fs.closeSync(fd);
      throw new OpenError(`${path} is empty (0 bytes). Give it a size first (for example: truncate -s 1G ${path}).`);
    }
    return new FileBlockStore(fd, path, size, options.readOnly, st.isBlockDevice(), options.io ?? nodeFileIo, options.syncReadMax ?? SYNC_READ_MAX, options.now ?? (() => performance.now()));
  }

  /**
   * The same as read(), on the calling thread: for the rewind log, which reads what each small write
   * replaces — from the page cache a copy, cheaper than a thread-pool round trip (as for writes).
   */
  readSync(offset: number, length: number): Buffer {
    const into = BufferPool.shared.acquire(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, into, done, length - done, offset + done);
      if (n === 0) {
        into.fill(0, done);
        break;
      }
      done += n;
    }
    return into;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const into = BufferPool.shared.acquire(length);
    await this.readInto(offset, into);
    return into;
  }

  async readInto(offset: number, into: Buffer): Promise<void> {
    const length = into.length;
    let done = 0;
    while (done < length) {
      let n: number;
      if (length <= this.syncReadMax && this.io.preadSync && (this.poolReadsUntil === 0 || this.now() >= this.poolReadsUntil)) {
        const t0 = this.now();
        n = this.io.preadSync(this.fd, into, done, offset + done, length - done);
        const t1 = this.now();
        this.slowReads = slowRead(t1 - t0, length - done) ? this.slowReads + 1 : 0;
        this.poolReadsUntil = this.slowReads >= 2 ? t1 + POOL_READS_MS : 0;
      } else {
        n = await this.io.pread(this.fd, into, done, offset + done, length - done);
      }
      if (n === 0) {
        // A file shrunk under us: what is past its end reads as zeroes, like a hole.
        into.fill(0, done);
        break;
      }
      done += n;
    }
  }

  writeSync(offset: number, data: Buffer): void {
    if (data.length > SYNC_WRITE_MAX) throw new Error(`writeSync of ${data.length} bytes: at most ${SYNC_WRITE_MAX}`);
    this.pwriteAllSync(offset, [data], data.length);
  }

  async write(offset: number, data: readonly Buffer[], fua: boolean): Promise<void> {
    let total = 0;
    for (const b of data) total += b.length;
    let pending = data;
    let done = 0;
    // Through the pool while more than SYNC_WRITE_MAX is left, the rest on this thread.
    while (total - done > SYNC_WRITE_MAX) {
      const n = await this.io.pwritev(this.fd, pending, offset + done);
      done += n;
      pending = dropPrefix(pending, n);
    }
    if (done < total) this.pwriteAllSync(offset + done, pending, total - done);
    if (fua) await this.flush();
  }

  /** Writes all `total` bytes of `data` on the calling thread, retrying short writes. */
  private pwriteAllSync(offset: number, data: readonly Buffer[], total: number): void {
    let pending = data;
    let done = 0;
    while (done < total) {
      const n = this.io.pwritevSync(this.fd, pending, offset + done);
      done += n;
      if (done < total) pending = dropPrefix(pending, n);
    }
  }

  flush(): Promise<void> {
    // fdatasync covers every write to the inode that completed before it, through any descriptor,
    // which is also what makes CAN_MULTI_CONN true for this store.
    return this.flusher.flush(this.fd);
  }

  async trim(offset: number, length: number, fua: boolean): Promise<void> {
    if (length === 0) return;
    // Advisory: if the tool is missing or the device refuses, the data simply stays.
    await this.io.deallocate(this.fd, this.isBlockDevice, offset, length, false);
    if (fua) await this.flush();
  }

  async writeZeroes(offset: number, length: number, options: ZeroOptions): Promise<void> {
    if (length === 0) return;
    let zeroed = false;
    if (options.fast && !options.mayPunch) throw notSupported('fast zeroing that keeps the range allocated');
    if (options.mayPunch && (options.fast || length >= FAST_ZERO_MIN)) {
      zeroed = await this.io.deallocate(this.fd, this.isBlockDevice, offset, length, true);
      if (!zeroed && options.fast) throw notSupported(`fast zeroing of ${this.description}`);
    }
    if (!zeroed) {
      let done = 0;
      while (done < length) {
        const n = Math.min(ZERO_CHUNK.length, length - done);
        await this.write(offset + done, [ZERO_CHUNK.subarray(0, n)], false);
        done += n;
      }
    }
    if (options.fua) await this.flush();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => fs.close(this.fd, () => resolve()));
  }
}
