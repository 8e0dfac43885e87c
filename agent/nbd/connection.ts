// One client connection: the handshake, then the transmission phase.
import type { Socket } from 'node:net';
import { ByteQueue } from './byte-queue.js';
import { negotiate, type ExportCatalog } from './handshake.js';
import { TransmissionSession } from './transmission.js';
import type { Logger } from '../log.js';

/** A client that has not finished the handshake by then is dropped, so idle sockets cannot pile up. */
export const HANDSHAKE_TIMEOUT_MS = 30_000;

export class NbdConnection {
  /** Handshake bytes only; in transmission the session consumes received bytes directly. */
  private readonly queue = new ByteQueue();
  private waiter: { n: number; resolve: (b: Buffer | null) => void } | null = null;
  private session: TransmissionSession | null = null;
  private closed = false;
  readonly done: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly exports: ExportCatalog,
    private readonly log: Logger,
  ) {
    socket.setNoDelay?.(true);
    this.done = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (err) => this.log.debug(`socket error: ${err.message}`));
    socket.once('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  /**
   * Received bytes. They are borrowed (see adoptSocket): kept only as copies. Returns false to stop
   * reading until the session asks for more.
   */
  onBytes(bytes: Buffer): boolean {
    if (this.session) return this.session.feed(bytes);
    this.queue.push(Buffer.from(bytes));
    this.wake();
    return true;
  }

  /** Where the next read should land (a large payload's own buffer), or null for the shared buffer. */
  nextReceiveBuffer(): Buffer | null {
    return this.session ? this.session.nextReceiveBuffer() : null;
  }

  async start(): Promise<void> {
    const timer = setTimeout(() => {
      this.log.debug('handshake timed out');
      this.socket.destroy();
    }, HANDSHAKE_TIMEOUT_MS);
    const result = await negotiate(
      { read: (n) => this.read(n), write: (b) => void (!this.socket.destroyed && this.socket.write(b)) },
      this.exports,
    ).finally(() => clearTimeout(timer));
    if (result.kind === 'close') {
      if (result.protocolError) this.log.warn(`closing connection: ${result.reason}`);
      else this.log.debug(`closing connection: ${result.reason}`);
      this.socket.end();
      return;
    }
    const session = new TransmissionSession(this.socket, result.export, this.log);
    this.session = session;
    // Requests that arrived right behind the final option.
    if (this.queue.length > 0 && !session.feed(this.queue.drain())) this.socket.pause();
  }

  /** Finish requests in flight and close (server shutdown). */
  shutdown(): Promise<void> {
    if (this.session) return this.session.disconnect();
    this.socket.destroy();
    return Promise.resolve();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(n: number): Promise<Buffer | null> {
    if (this.queue.length >= n) return Promise.resolve(this.queue.take(n));
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = { n, resolve };
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.queue.length >= w.n) {
      this.waiter = null;
      w.resolve(this.queue.take(w.n));
    } else if (this.closed) {
      this.waiter = null;
      w.resolve(null);
    }
  }
}
