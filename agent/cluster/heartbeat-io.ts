// Heartbeat I/O: a small TLS listener of its own (--heartbeat HOST:PORT, kept apart from the replication
// listener so neither's limits affect the other) and, per peer and comm path, one outgoing connection
// that carries a heartbeat line every LCMHBEATTIME. Both ends use the cluster's node certificates
// (mutual TLS 1.3, agent/replication/transport.ts): a peer without a valid certificate of this cluster
// is dropped in the handshake and its beats never count. A line must name the node its certificate
// names. Bounded everywhere: handshake deadline, line size, idle time, connection count.
import net from 'node:net';
import { connectReplication, createReplicationServer, type NodeCredentials } from '../replication/transport.js';
import type { Logger } from '../log.js';
import { decodeHeartbeat, encodeHeartbeat, HeartbeatFormatError, MAX_HEARTBEAT_BYTES, type Heartbeat } from './heartbeat-wire.js';
import { pathName, splitHostPort, type ClusterPeer } from './commpaths.js';

const MAX_CONNECTIONS = 128;

export interface HeartbeatIoOptions {
  node: string;
  creds: NodeCredentials | null;
  heartbeatMs: number;
  log: Logger;
  /** A valid heartbeat from `h.node`, received on the comm path named `path` (as this end names it). */
  onHeartbeat(h: Heartbeat, path: string): void;
}

const plain = (a: string | undefined) => (a ?? '').replace(/^::ffff:/, '');

interface Sender {
  key: string;
  peer: string;
  local: string;
  host: string;
  port: number;
  socket: net.Socket | null;
  ready: boolean;
  lastError: string;
}

export class HeartbeatIo {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private senders = new Map<string, Sender>();
  private seq = 0;
  private closed = false;
  port = 0;

  constructor(private readonly o: HeartbeatIoOptions) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createReplicationServer({
      creds: this.o.creds,
      onSocket: (socket, peerNode) => this.accept(socket, peerNode),
      onRefused: (reason, remote) => this.refused(`heartbeat connection${remote ? ` from ${plain(remote)}` : ''} refused: ${reason}`),
    });
    server.maxConnections = MAX_CONNECTIONS;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new Error(`cannot listen for heartbeats on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use; choose another with --heartbeat HOST:PORT' : e.message}`)));
      server.listen(port, host, () => resolve());
    });
    server.on('error', (e) => this.o.log.warn(`heartbeat listener: ${e.message}`));
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  private readonly refusals = new Map<string, number>();

  /** A peer retrying every beat is logged once a minute per reason, not every second. */
  private refused(line: string): void {
    const now = Date.now();
    const last = this.refusals.get(line);
    if (last !== undefined && now - last < 60_000) return;
    if (this.refusals.size > 1000) this.refusals.clear();
    this.refusals.set(line, now);
    this.o.log.warn(line);
  }

  private accept(socket: net.Socket, certNode: string | null): void {
    if (this.closed) return void socket.destroy();
    this.sockets.add(socket);
    const pathKey = pathName(plain(socket.localAddress), plain(socket.remoteAddress));
    // A silent connection is dropped: the sender reconnects on its next beat.
    socket.setTimeout(Math.max(10_000, this.o.heartbeatMs * 4), () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => this.sockets.delete(socket));
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const h = decodeHeartbeat(line);
          if (certNode !== null && h.node !== certNode) {
            this.refused(`heartbeat naming ${h.node} from a peer whose certificate is for ${certNode} ignored; connection dropped`);
            return void socket.destroy();
          }
          this.o.onHeartbeat(h, pathKey);
        } catch (err) {
          // Whatever a peer sends, this agent goes on: the connection is dropped, the beat not counted.
          const why = err instanceof HeartbeatFormatError ? `malformed heartbeat (${err.message})` : `heartbeat not taken (${(err as Error).message})`;
          this.refused(`${why} from ${certNode ?? plain(socket.remoteAddress)}; connection dropped`);
          return void socket.destroy();
        }
      }
      if (buf.length > MAX_HEARTBEAT_BYTES) {
        this.refused(`heartbeat line from ${certNode ?? plain(socket.remoteAddress)} longer than ${MAX_HEARTBEAT_BYTES} bytes; connection dropped`);
        socket.destroy();
      }
    });
    socket.resume(); // plain TCP sockets arrive paused
  }

  /** The comm paths to send on (called when they change). */
  setPeers(peers: readonly ClusterPeer[]): void {
    const next = new Map<string, Sender>();
    for (const p of peers) {
      for (const c of p.paths) {
        const key = `${p.node} ${c.local} ${c.remote}`;
        const old = this.senders.get(key);
        if (old) next.set(key, old);
        else {
          const { host, port } = splitHostPort(c.remote, 'remote address');
          next.set(key, { key, peer: p.node, local: c.local, host, port, socket: null, ready: false, lastError: '' });
        }
      }
    }
    for (const [key, s] of this.senders) if (!next.has(key)) s.socket?.destroy();
    this.senders = next;
  }

  /** One beat on every path: connects where there is no connection, writes where there is one. */
  beat(content: Omit<Heartbeat, 'v' | 'node' | 'seq'>): void {
    if (this.closed) return;
    const line = encodeHeartbeat({ v: 1, node: this.o.node, seq: this.seq++, ...content });
    for (const s of this.senders.values()) {
      if (s.socket && s.ready) {
        // A peer that does not read is not fed without bound: skip the beat, it is just missed.
        if (s.socket.writableLength < 4 * MAX_HEARTBEAT_BYTES) s.socket.write(line);
      } else if (!s.socket) this.connect(s);
    }
  }

  private connect(s: Sender): void {
    const c = connectReplication({ host: s.host, port: s.port, localAddress: s.local === '0.0.0.0' ? undefined : s.local, expectedPeer: s.peer, creds: this.o.creds });
    s.socket = c.socket;
    s.ready = false;
    // A handshake that hangs would miss beats: give up after two beat times (at least 2 s) and retry.
    const deadline = setTimeout(() => c.socket.destroy(), Math.max(2_000, 2 * this.o.heartbeatMs));
    c.socket.on('error', () => undefined);
    c.socket.on('data', () => undefined); // nothing comes back; drain anything that does
    c.socket.once('close', () => {
      clearTimeout(deadline);
      if (this.senders.get(s.key) === s && s.socket === c.socket) {
        s.socket = null;
        s.ready = false;
      }
    });
    c.ready.then(() => {
      clearTimeout(deadline);
      if (s.socket === c.socket) s.ready = true;
      s.lastError = '';
    }, (e: Error) => {
      if (e.message !== s.lastError) this.o.log.warn(`heartbeat to ${s.peer} on ${s.local} -> ${s.host}:${s.port}: ${e.message}`);
      s.lastError = e.message;
    });
  }

  /** The graceful stop: a last beat saying so on every connected path, then close (bounded). */
  async close(lastBeat?: Omit<Heartbeat, 'v' | 'node' | 'seq'>): Promise<void> {
    if (lastBeat) {
      const line = encodeHeartbeat({ v: 1, node: this.o.node, seq: this.seq++, ...lastBeat });
      const flushed = [...this.senders.values()].filter((s) => s.socket && s.ready).map((s) => new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1_000);
        s.socket!.end(line, () => {
          clearTimeout(t);
          resolve();
        });
      }));
      await Promise.all(flushed);
    }
    this.closed = true;
    for (const s of this.senders.values()) s.socket?.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
