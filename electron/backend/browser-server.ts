// Browser mode: the same backend behind HTTP + WebSocket on 127.0.0.1, so the renderer runs in any
// browser (and tests drive the real UI in Chromium). Only this machine can connect; every API call needs
// the random token printed with the URL; the Host and Origin headers must be ours (DNS rebinding and
// cross-site WebSocket hijacking); every call is validated exactly as Electron's IPC handlers do.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseConsoleCall, type ConsoleEvent } from '../../common/console-api.js';
import type { ConsoleBackend } from './console-backend.js';

export interface BrowserServer {
  url: string;
  token: string;
  port: number;
  close(): Promise<void>;
}

const MAX_MESSAGE = 1024 * 1024;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2', '.ico': 'image/x-icon',
};

/** The renderer's Content Security Policy: our own scripts and styles, the API socket (browser mode), nothing else. */
export function contentSecurityPolicy(apiPort: number | null): string {
  return [
    "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self'",
    `connect-src 'self'${apiPort === null ? '' : ` ws://127.0.0.1:${apiPort}`}`, "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');
}

function tokenMatches(given: string | null, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

export async function startBrowserServer(options: { backend: ConsoleBackend; staticDir: string; port?: number; token?: string }): Promise<BrowserServer> {
  const token = options.token ?? crypto.randomBytes(24).toString('base64url');
  let port = options.port ?? 0;
  const hostOk = (host: string | undefined) => host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  const staticRoot = path.resolve(options.staticDir);

  const server = http.createServer((req, res) => {
    if (!hostOk(req.headers.host)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('wrong Host header: open the console at the address it printed\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname).replace(/^\/+/, '');
    const file = path.resolve(staticRoot, rel);
    if (!file.startsWith(staticRoot + path.sep)) {
      res.writeHead(404).end();
      return;
    }
    fs.readFile(file, (err, body) => {
      if (err) {
        if (rel === 'index.html') {
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end(`The console's GUI is not built in ${staticRoot}; run: npm run build\n`);
        } else res.writeHead(404).end();
        return;
      }
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'content-security-policy': contentSecurityPolicy(port),
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req, socket: net.Socket, head) => {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (url.pathname !== '/api') return refuse(404, 'Not Found');
    if (!hostOk(req.headers.host)) return refuse(421, 'Misdirected Request');
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`) return refuse(403, 'Forbidden');
    if (!tokenMatches(url.searchParams.get('token'), token)) return refuse(401, 'Unauthorized');
    wss.handleUpgrade(req, socket, head, (ws) => serveClient(ws, options.backend));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    token,
    port,
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function serveClient(ws: WebSocket, backend: ConsoleBackend): void {
  const send = (msg: unknown) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const unsubscribe = backend.onEvent((event: ConsoleEvent) => send({ event }));
  ws.on('close', unsubscribe);
  ws.on('message', (data, isBinary) => {
    let msg: { id?: unknown; method?: unknown; args?: unknown };
    try {
      if (isBinary) throw new Error('binary');
      msg = JSON.parse(data.toString()) as typeof msg;
    } catch {
      send({ id: null, error: { message: 'not a JSON message: send {"id": N, "method": "...", "args": [...]}' } });
      return;
    }
    const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null;
    let call: ReturnType<typeof parseConsoleCall>;
    try {
      call = parseConsoleCall(msg.method, msg.args ?? []);
    } catch (err) {
      send({ id, error: { message: (err as Error).message } });
      return;
    }
    const fn = (backend as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[call.method]!;
    fn.apply(backend, call.args).then(
      (result) => send({ id, result: result ?? null }),
      (err: Error) => send({ id, error: { message: err.message } }),
    );
  });
}
