// Listens on a root-only Unix socket and, on request, loopback TCP; hands each client to an NbdConnection.
import fs from 'node:fs';
import net from 'node:net';
import { NbdConnection } from './connection.js';
import { adoptSocket } from './adopt-socket.js';
import type { ExportCatalog } from './handshake.js';
import type { NbdExport } from './export.js';
import type { Logger } from '../log.js';

export class ListenError extends Error {}

export class SimpleCatalog implements ExportCatalog {
  constructor(private readonly exports: NbdExport[]) {}
  lookup(name: string): NbdExport | undefined {
    if (name === '') return this.exports[0];
    return this.exports.find((e) => e.name === name);
  }
  list(): NbdExport[] {
    return [...this.exports];
  }
}

/** True for 127.0.0.0/8, ::1 and "localhost": the NBD export has no authentication of its own. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

async function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export class NbdServer {
  private readonly servers: net.Server[] = [];
  private readonly connections = new Set<NbdConnection>();
  private readonly unixPaths: string[] = [];
  private closing = false;

  constructor(
    private readonly catalog: ExportCatalog,
    private readonly log: Logger,
  ) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  async listenUnix(path: string): Promise<void> {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(path);
    } catch {
      st = undefined;
    }
    if (st) {
      if (!st.isSocket()) throw new ListenError(`${path} exists and is not a socket; choose another --socket path (it was left untouched).`);
      if (await socketInUse(path)) throw new ListenError(`${path} is in use by another running export; stop it or choose another --socket path.`);
      fs.unlinkSync(path); // stale socket from a previous run that did not exit cleanly
    }
    const server = this.makeServer();
    const oldMask = process.umask(0o177); // the socket is born root-only, not chmod-ed after a window
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new ListenError(`cannot listen on ${path}: ${err.message}`)));
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    fs.chmodSync(path, 0o600);
    this.unixPaths.push(path);
    this.servers.push(server);
  }

  /** Returns the port actually bound (useful with port 0). */
  async listenTcp(host: string, port: number): Promise<number> {
    if (!isLoopbackHost(host)) {
      throw new ListenError(`--tcp ${host}:${port} is not a loopback address; the local export has no authentication, so only 127.0.0.1, ::1 or localhost are allowed.`);
    }
    const server = this.makeServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new ListenError(err.code === 'EADDRINUSE' ? `port ${port} on ${host} is already in use; choose another --tcp port.` : `cannot listen on ${host}:${port}: ${err.message}`)),
      );
      server.listen(port, host, () => resolve());
    });
    this.servers.push(server);
    const address = server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  /**
   * Stop accepting, let every connection finish its requests in flight, close, remove socket files.
   * A client that does not hang up within `graceMs` of being told to is cut off.
   */
  async close(graceMs = 5_000): Promise<void> {
    this.closing = true;
    const stopped = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    const connections = [...this.connections];
    const finished = Promise.all(connections.map(async (c) => {
      await c.shutdown();
      await c.done;
    }));
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn(`clients still connected after ${graceMs} ms; disconnecting them`);
        connections.forEach((c) => c.destroy());
        resolve();
      }, graceMs);
    });
    await Promise.race([finished, grace]);
    clearTimeout(timer);
    await Promise.all(stopped);
    for (const p of this.unixPaths) fs.rmSync(p, { force: true });
  }

  private makeServer(): net.Server {
    let nextId = 1;
    const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      if (this.closing) {
        accepted.destroy();
        return;
      }
      const holder: { conn?: NbdConnection } = {};
      const socket = adoptSocket(accepted, (bytes) => (holder.conn ? holder.conn.onBytes(bytes) : true), () => holder.conn?.nextReceiveBuffer() ?? null);
      const conn = new NbdConnection(socket, this.catalog, this.log.child(`[conn ${nextId++}]`));
      holder.conn = conn;
      this.connections.add(conn);
      void conn.done.then(() => this.connections.delete(conn));
      conn.start().catch((err: unknown) => {
        this.log.error(`connection failed: ${(err as Error).message}`);
        socket.destroy();
      });
    });
    return server;
  }
}
