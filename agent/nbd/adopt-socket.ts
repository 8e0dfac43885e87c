// Reading client sockets into one reused buffer.
//
// A net.Socket's 'data' events each bring a fresh 64 KiB Buffer: one read(2) per 64 KiB, one
// allocation (page faults, GC) per read. Node's `onread` option instead reads into a buffer we own,
// as much as the kernel has, but net.Server offers no way to pass it for accepted sockets. So the
// server accepts paused and the connection's handle is re-wrapped in a Socket that has `onread`.
// Receiving went from ~2.2 to ~4.4 GB/s on a Unix socket (docs/benchmarks.md). `_handle` is private
// to Node; if it is ever missing, the plain 'data' path is used.
import net from 'node:net';

/** Shared by every connection: each callback consumes its bytes before returning (one thread). */
const RECEIVE_BUFFER = Buffer.allocUnsafeSlow(4 * 1024 * 1024);

type Receiver = (bytes: Buffer) => boolean;
/**
 * Where the next read(2) should land: a buffer the receiver owns (a large payload's own buffer, so the
 * kernel copies it in place, with no copy out of the shared buffer), or null for the shared buffer.
 */
type NextBuffer = () => Buffer | null;

interface HandleCarrier {
  _handle?: unknown;
}

export const userBufferSupported = (): boolean => process.env.TANDEM_NBD_USER_BUFFER !== '0';

/**
 * Takes a socket accepted with `pauseOnConnect` and returns the socket to use from now on, delivering
 * received bytes to `receive` (which returns false to pause reading).
 */
export function adoptSocket(accepted: net.Socket, receive: Receiver, nextBuffer?: NextBuffer): net.Socket {
  const carrier = accepted as unknown as HandleCarrier;
  if (userBufferSupported() && carrier._handle) {
    const handle = carrier._handle;
    carrier._handle = undefined; // the accepted Socket must not close the handle it no longer owns
    const socket = new net.Socket({
      handle,
      readable: true,
      writable: true,
      onread: {
        // Asked after every read (and once at the start) for the buffer of the next one.
        buffer: nextBuffer ? () => nextBuffer() ?? RECEIVE_BUFFER : RECEIVE_BUFFER,
        callback: (n: number, buf: Uint8Array) => receive(Buffer.from(buf.buffer, buf.byteOffset, n)),
      },
    } as net.SocketConstructorOpts);
    accepted.destroy(); // lets net.Server forget it; the connection lives on in `socket`
    socket.resume();
    return socket;
  }
  accepted.on('data', (chunk: Buffer) => {
    if (receive(chunk) === false) accepted.pause();
  });
  accepted.resume();
  return accepted;
}
