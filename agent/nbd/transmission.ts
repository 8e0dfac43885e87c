// The transmission phase of one connection: parse requests, run them concurrently against the store,
// answer each as it completes (out of order, cookies echoed).
import type { Socket } from 'node:net';
import { errnoCode } from '../storage/block-store.js';
import { BufferPool } from '../storage/buffer-pool.js';
import type { NbdExport } from './export.js';
import {
  Cmd, CmdFlag, decodeRequestHeader, encodeSimpleReply, MAX_PAYLOAD, NbdErrno, REQUEST_HEADER_LENGTH,
  type RequestHeader,
} from './protocol.js';
import type { Logger } from '../log.js';

/** Past these, stop reading requests until some complete: bounds memory per connection. */
const MAX_IN_FLIGHT = 256;
const MAX_IN_FLIGHT_BYTES = 96 * 1024 * 1024;

const ALLOWED_FLAGS: Record<number, number> = {
  [Cmd.READ]: CmdFlag.FUA,
  [Cmd.WRITE]: CmdFlag.FUA,
  [Cmd.FLUSH]: CmdFlag.FUA,
  [Cmd.TRIM]: CmdFlag.FUA,
  [Cmd.WRITE_ZEROES]: CmdFlag.FUA | CmdFlag.NO_HOLE | CmdFlag.FAST_ZERO,
};

/** Maps a storage error to one of the error values the protocol allows. */
export function toNbdErrno(err: unknown): number {
  switch (errnoCode(err)) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return NbdErrno.ENOSPC;
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
      return NbdErrno.EPERM;
    case 'EINVAL':
      return NbdErrno.EINVAL;
    case 'ENOMEM':
      return NbdErrno.ENOMEM;
    case 'ENOTSUP':
    case 'EOPNOTSUPP':
      return NbdErrno.ENOTSUP;
    default:
      return NbdErrno.EIO;
  }
}

/**
 * A payload with at least this much still to come is received straight into its own buffer (the
 * kernel copies it there: no copy out of the shared receive buffer on the event-loop thread).
 */
const DIRECT_RECEIVE_MIN = 64 * 1024;

/** A WRITE whose payload is still arriving. */
interface PendingPayload {
  header: RequestHeader;
  /** Pooled buffer the payload is copied into, taken when its first bytes arrive. */
  data: Buffer | null;
  filled: number;
  /** Non-zero: the payload is thrown away as it arrives and this error answered. */
  error: number;
}

export class TransmissionSession {
  private readonly headerBytes = Buffer.alloc(REQUEST_HEADER_LENGTH);
  private headerFill = 0;
  private payload: PendingPayload | null = null;
  private inFlight = 0;
  private inFlightBytes = 0;
  private paused = false;
  private disconnecting = false;
  private corked = false;
  private readonly size: number;
  private readonly readOnly: boolean;
  private drainedResolvers: Array<() => void> = [];
  /** The payload buffer handed to the socket for its next read (see nextReceiveBuffer), if any. */
  private lentToSocket: Buffer | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly exp: NbdExport,
    private readonly log: Logger,
  ) {
    this.size = exp.size;
    this.readOnly = exp.store.readOnly;
  }

  /**
   * Consumes received bytes. `bytes` is borrowed: it may be overwritten as soon as this returns (the
   * connection reads into one reused buffer), so everything kept is copied. Returns false when the
   * connection should stop reading until requests in flight complete.
   */
  feed(bytes: Buffer): boolean {
    let at = 0;
    const end = bytes.length;
    while (at < end && !this.disconnecting && !this.socket.destroyed) {
      const p = this.payload;
      if (p) {
        const length = p.header.length;
        if (p.error === 0 && p.data === null) {
          if (end - at >= length && length <= this.exp.store.syncWriteMax) {
            // All here and small enough for the store to consume before write() returns: no copy.
            this.payload = null;
            this.submitWrite(p.header, bytes.subarray(at, at + length), false);
            at += length;
            continue;
          }
          p.data = BufferPool.shared.acquire(length);
        }
        const k = Math.min(length - p.filled, end - at);
        // Bytes the kernel already put in place (nextReceiveBuffer) need no copy.
        const inPlace = p.data !== null && at === 0 && bytes.buffer === p.data.buffer && bytes.byteOffset === p.data.byteOffset + p.filled;
        if (p.data && !inPlace) bytes.copy(p.data, p.filled, at, at + k);
        p.filled += k;
        at += k;
        if (p.filled === p.header.length) this.completePayload(p);
        continue;
      }
      let header: RequestHeader | null;
      if (this.headerFill === 0 && end - at >= REQUEST_HEADER_LENGTH) {
        header = decodeRequestHeader(bytes, at);
        at += REQUEST_HEADER_LENGTH;
      } else {
        const k = Math.min(REQUEST_HEADER_LENGTH - this.headerFill, end - at);
        bytes.copy(this.headerBytes, this.headerFill, at, at + k);
        this.headerFill += k;
        at += k;
        if (this.headerFill < REQUEST_HEADER_LENGTH) break;
        this.headerFill = 0;
        header = decodeRequestHeader(this.headerBytes);
      }
      if (!header) {
        // Without the magic we cannot find the next request boundary: a hard disconnect is all that is safe.
        this.log.warn('bad request magic; disconnecting this client');
        this.socket.destroy();
        return false;
      }
      this.dispatch(header);
    }
    if (this.overloaded()) {
      this.paused = true;
      if (this.socket.writableLength >= MAX_IN_FLIGHT_BYTES) this.socket.once('drain', () => this.maybeResume());
      return false;
    }
    return true;
  }

  /**
   * Where the socket's next read should land: the rest of a large payload, in its own buffer, or null
   * (the shared receive buffer). A read into it brings at most the payload's remaining bytes.
   */
  nextReceiveBuffer(): Buffer | null {
    const p = this.payload;
    // A payload the store can take from the shared buffer is read there with whatever else has arrived:
    // one large read(2) per batch of requests costs far less than one per request (bench/mirror).
    if (!p || p.error !== 0 || !p.data || p.header.length <= this.exp.store.syncWriteMax || p.header.length - p.filled < DIRECT_RECEIVE_MIN || this.disconnecting) {
      this.lentToSocket = null;
      return null;
    }
    this.lentToSocket = p.data;
    return p.data.subarray(p.filled);
  }

  /** Stop reading requests, let the ones in flight finish, then close (DISC or server shutdown). */
  disconnect(): Promise<void> {
    this.disconnecting = true;
    this.socket.pause();
    // A buffer the socket may still hold for its next read is left to the GC, never reused.
    if (this.payload?.data && this.payload.data !== this.lentToSocket) BufferPool.shared.release(this.payload.data);
    this.payload = null;
    return this.whenIdle().then(() => {
      // Reading is stopped, so the client's own FIN would never be seen: once our last replies are
      // handed to the kernel, close outright rather than wait for it.
      if (!this.socket.destroyed) this.socket.end(() => this.socket.destroy());
    });
  }

  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainedResolvers.push(resolve));
  }

  private overloaded(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT || this.inFlightBytes >= MAX_IN_FLIGHT_BYTES || this.socket.writableLength >= MAX_IN_FLIGHT_BYTES;
  }

  private maybeResume(): void {
    if (!this.paused || this.disconnecting) return;
    if (this.inFlight < MAX_IN_FLIGHT / 2 && this.inFlightBytes < MAX_IN_FLIGHT_BYTES / 2 && this.socket.writableLength < MAX_IN_FLIGHT_BYTES) {
      this.paused = false;
      this.socket.resume();
    } else if (this.socket.writableLength >= MAX_IN_FLIGHT_BYTES) {
      this.socket.once('drain', () => this.maybeResume());
    }
  }

  private completePayload(p: PendingPayload): void {
    this.payload = null;
    if (p.error !== 0) this.reply(p.header.cookie, p.error);
    else this.submitWrite(p.header, p.data ?? Buffer.alloc(0), true);
  }

  private submitWrite(h: RequestHeader, data: Buffer, pooled: boolean): void {
    const done = this.exp.store.write(h.offset, [data], (h.flags & CmdFlag.FUA) !== 0);
    this.run(h.length, pooled ? done.finally(() => BufferPool.shared.release(data)) : done, h.cookie);
  }

  private outOfRange(h: RequestHeader): boolean {
    return h.offset > this.size || h.length > this.size - h.offset;
  }

  private dispatch(h: RequestHeader): void {
    const allowed = ALLOWED_FLAGS[h.type];
    const badFlags = allowed !== undefined && (h.flags & ~allowed) !== 0;
    const store = this.exp.store;
    const fua = (h.flags & CmdFlag.FUA) !== 0;
    switch (h.type) {
      case Cmd.WRITE: {
        const err = badFlags ? NbdErrno.EINVAL :
          this.readOnly ? NbdErrno.EPERM :
          h.length > MAX_PAYLOAD ? NbdErrno.EINVAL :
          this.outOfRange(h) ? NbdErrno.ENOSPC : 0;
        if (err !== 0) this.log.debug(`refusing WRITE offset=${h.offset} length=${h.length}: error ${err}`);
        const p: PendingPayload = { header: h, data: null, filled: 0, error: err };
        if (h.length === 0) this.completePayload(p);
        else this.payload = p;
        return;
      }
      case Cmd.READ: {
        const err = badFlags || h.length > MAX_PAYLOAD || this.outOfRange(h) ? NbdErrno.EINVAL : 0;
        if (err !== 0) return this.reply(h.cookie, err);
        if (h.length === 0) return this.reply(h.cookie, 0, Buffer.alloc(0));
        this.run(h.length, store.read(h.offset, h.length), h.cookie);
        return;
      }
      case Cmd.FLUSH:
        if (badFlags) return this.reply(h.cookie, NbdErrno.EINVAL);
        // Every write already answered has completed in the store, so store.flush() covers it.
        this.run(0, store.flush(), h.cookie);
        return;
      case Cmd.TRIM: {
        const err = badFlags || this.outOfRange(h) ? NbdErrno.EINVAL : this.readOnly ? NbdErrno.EPERM : 0;
        if (err !== 0) return this.reply(h.cookie, err);
        this.run(0, store.trim(h.offset, h.length, fua), h.cookie);
        return;
      }
      case Cmd.WRITE_ZEROES: {
        const err = badFlags ? NbdErrno.EINVAL : this.readOnly ? NbdErrno.EPERM : this.outOfRange(h) ? NbdErrno.ENOSPC : 0;
        if (err !== 0) return this.reply(h.cookie, err);
        const options = {
          mayPunch: (h.flags & CmdFlag.NO_HOLE) === 0,
          fast: (h.flags & CmdFlag.FAST_ZERO) !== 0,
          fua,
        };
        this.run(0, store.writeZeroes(h.offset, h.length, options), h.cookie);
        return;
      }
      case Cmd.DISC:
        void this.disconnect();
        return;
      default:
        this.log.debug(`unknown command ${h.type}; replying EINVAL`);
        this.reply(h.cookie, NbdErrno.EINVAL);
        return;
    }
  }

  private run(bytes: number, op: Promise<Buffer | void>, cookie: Buffer): void {
    this.inFlight++;
    this.inFlightBytes += bytes;
    // One then() with both handlers, no finally(): a promise fewer per request.
    op.then(
      (data) => {
        this.reply(cookie, 0, data ?? undefined);
        this.settled(bytes);
      },
      (err: unknown) => {
        this.log.warn(`I/O error on ${this.exp.store.description}: ${(err as Error).message}`);
        this.reply(cookie, toNbdErrno(err));
        this.settled(bytes);
      },
    );
  }

  private settled(bytes: number): void {
    this.inFlight--;
    this.inFlightBytes -= bytes;
    if (this.inFlight === 0) {
      const resolvers = this.drainedResolvers;
      this.drainedResolvers = [];
      for (const r of resolvers) r();
    }
    if (this.paused) this.maybeResume();
  }

  private reply(cookie: Buffer, error: number, data?: Buffer): void {
    if (this.socket.destroyed || this.socket.writableEnded) return;
    if (!this.corked) {
      // Replies completing in the same tick leave in one write.
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeSimpleReply(error, cookie));
    // The read buffer goes back to the pool once the kernel has the bytes (or the socket is gone).
    if (error === 0 && data && data.length > 0) this.socket.write(data, () => BufferPool.shared.release(data));
  }
}
