// JSON-RPC 2.0 over a root-only Unix socket, one JSON object per line.
import fs from 'node:fs';
import net from 'node:net';
import type { Logger } from '../log.js';

export class RpcError extends Error {
  constructor(message: string, readonly code = -32000) {
    super(message);
  }
}

/** What a handler may do beyond answering: push notifications on the caller's connection (agent.watch). */
export interface CallContext {
  notify(method: string, params: unknown): void;
  /** Runs when the caller's connection closes. */
  onClose(listener: () => void): void;
}

export type Handler = (params: Record<string, unknown>, context: CallContext) => Promise<unknown> | unknown;

const MAX_LINE = 1024 * 1024;

export class ControlServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly handlers: Record<string, Handler>,
    private readonly log: Logger,
  ) {}

  async listen(path: string): Promise<void> {
    if (fs.existsSync(path)) {
      const inUse = await new Promise<boolean>((resolve) => {
        const probe = net.connect(path);
        probe.once('connect', () => {
          probe.destroy();
          resolve(true);
        });
        probe.once('error', () => resolve(false));
      });
      if (inUse) throw new Error(`another agent is already running with control socket ${path}; stop it first or use another TANDEM_HOME`);
      fs.rmSync(path, { force: true });
    }
    // allowHalfOpen: a client may send its requests and close its side (echo … | tandem ctl); it still
    // gets every answer before the connection closes.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.serve(socket));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(oldMask);
    }
    fs.chmodSync(path, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    let inFlight = 0;
    let clientDone = false;
    const endIfDone = () => {
      if (clientDone && inFlight === 0 && !socket.destroyed) socket.end();
    };
    socket.once('end', () => {
      clientDone = true;
      endIfDone();
    });
    const context: CallContext = {
      notify: (method, params) => {
        if (!socket.destroyed) socket.write(JSON.stringify({ jsonrpc: '2.0', method, params }) + '\n');
      },
      onClose: (listener) => socket.once('close', listener),
    };
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      buffered += text;
      if (buffered.length > MAX_LINE && !buffered.includes('\n')) {
        socket.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'request line too long' } }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        inFlight++;
        void this.handle(line, context).then((reply) => {
          inFlight--;
          if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(reply) + '\n');
          endIfDone();
        });
      }
    });
  }

  private async handle(line: string, context: CallContext): Promise<unknown> {
    let req: { id?: unknown; method?: unknown; params?: unknown };
    try {
      req = JSON.parse(line);
    } catch {
      return { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error: not JSON' } };
    }
    const id = req.id ?? null;
    if (typeof req.method !== 'string') return { jsonrpc: '2.0', id, error: { code: -32600, message: 'invalid request: no method' } };
    const handler = this.handlers[req.method];
    if (!handler) return { jsonrpc: '2.0', id, error: { code: -32601, message: `unknown method "${req.method}"` } };
    const params = req.params && typeof req.params === 'object' && !Array.isArray(req.params) ? (req.params as Record<string, unknown>) : {};
    try {
      return { jsonrpc: '2.0', id, result: (await handler(params, context)) ?? null };
    } catch (err) {
      const code = err instanceof RpcError ? err.code : -32000;
      if (!(err instanceof RpcError)) this.log.error(`${req.method} failed: ${(err as Error).stack}`);
      return { jsonrpc: '2.0', id, error: { code, message: (err as Error).message } };
    }
  }
}

/** One call to a local agent's control socket. */
export function callAgent(socketPath: string, method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the agent did not answer "${method}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? `no agent is running (nothing listening on ${socketPath}); start it with: tandem-agent run`
        : e.code === 'EACCES' ? `permission denied on ${socketPath}; the control socket is root-only: use sudo` : e.message));
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      socket.destroy();
      const reply = JSON.parse(text.slice(0, nl)) as { result?: unknown; error?: { message: string } };
      if (reply.error) reject(new RpcError(reply.error.message));
      else resolve(reply.result);
    });
    socket.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) + '\n');
  });
}
