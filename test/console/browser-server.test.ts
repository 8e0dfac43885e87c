// Browser mode's server: only this machine, only with the token, only our Origin and Host; every call
// validated like the IPC handlers; events pushed to the page.
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConsoleBackend } from '../../electron/backend/console-backend.js';
import { startBrowserServer, type BrowserServer } from '../../electron/backend/browser-server.js';
import { AGENT_BUNDLE, tempDir } from '../helpers/tools.js';

const dataDir = tempDir('browser-server');
const staticDir = path.join(dataDir, 'static');
let backend: ConsoleBackend;
let server: BrowserServer;

beforeAll(async () => {
  fs.mkdirSync(staticDir);
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Tandem</title>');
  fs.writeFileSync(path.join(dataDir, 'secret.txt'), 'not served');
  backend = new ConsoleBackend({ dataDir, agentBundle: AGENT_BUNDLE });
  server = await startBrowserServer({ backend, staticDir });
});

afterAll(async () => {
  await server.close();
  await backend.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function get(pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path: pathname, headers }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

/** Opens the API socket; resolves with the socket or the HTTP status it was refused with. */
function open(query: string, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api${query}`, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
}

interface Reply { id?: unknown; result?: unknown; error?: { message: string }; event?: { type: string } }

function client(ws: WebSocket) {
  const replies: Reply[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(d.toString()) as Reply));
  let next = 1;
  return {
    replies,
    async call(method: string, args: unknown[]): Promise<Reply> {
      const id = next++;
      ws.send(JSON.stringify({ id, method, args }));
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = replies.find((x) => x.id === id);
        if (r) return r;
        if (Date.now() > deadline) throw new Error(`no reply to ${method}`);
        await new Promise((res) => setTimeout(res, 20));
      }
    },
  };
}

describe('browser-mode server', () => {
  it('listens on 127.0.0.1 only and prints a URL with a long random token', () => {
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[A-Za-z0-9_-]{32}$`));
  });

  it('serves the renderer with a strict CSP, nothing outside its folder, and refuses foreign Host headers', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect((await get('/../secret.txt')).status).toBe(404);
    expect((await get('/%2e%2e/secret.txt')).status).toBe(404);
    expect((await get('/', { host: 'evil.example:80' })).status).toBe(421);
  });

  it('refuses the API without the token, with a wrong token, from another origin', async () => {
    expect(await open('')).toBe(401);
    expect(await open('?token=wrong')).toBe(401);
    expect(await open(`?token=${server.token}`, { origin: 'http://evil.example' })).toBe(403);
    expect(await open(`?token=${server.token}`, { host: 'evil.example' })).toBe(421);
  });

  it('answers calls, validates every argument and names what is wrong', async () => {
    const ws = await open(`?token=${server.token}`, { origin: `http://127.0.0.1:${server.port}` });
    expect(ws).toBeInstanceOf(WebSocket);
    const c = client(ws as WebSocket);
    expect((await c.call('cluster', [])).result).toMatchObject({ mode: 'none', servers: [] });
    expect((await c.call('deleteEverything', [])).error?.message).toBe('unknown console method "deleteEverything"');
    expect((await c.call('openLocalLab', [99])).error?.message).toMatch(/^openLocalLab: invalid argument at 0: .*8/);
    expect((await c.call('addServer', [{ name: 'bad name!', ssh: { host: 'h' } }])).error?.message).toMatch(/^addServer: invalid argument at 0\.name: a server name is/);
    expect((await c.call('agentCall', ['node1', 'system.exec', {}])).error?.message).toMatch(/at 1: an agent method is like "mirror.status"/);
    (ws as WebSocket).send('{not json');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.replies.some((r) => r.error?.message.startsWith('not a JSON message'))).toBe(true);
    // The connection survives bad input.
    expect((await c.call('cluster', [])).result).toMatchObject({ mode: 'none' });
    (ws as WebSocket).close();
  });

  it('imports host keys from an OpenSSH known_hosts file (hashed), and says what is wrong with a bad path', async () => {
    const ws = (await open(`?token=${server.token}`)) as WebSocket;
    const c = client(ws);
    const file = path.join(dataDir, 'user_known_hosts');
    fs.writeFileSync(file, 'server1.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n');
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    expect((await c.call('importKnownHosts', [file])).result).toEqual({ imported: 1, skipped: 0, file });
    expect(fs.readFileSync(path.join(dataDir, 'known_hosts'), 'utf8')).toMatch(/^\|1\|/);
    expect((await c.call('importKnownHosts', ['relative/known_hosts'])).error?.message).toBe('relative/known_hosts: give an absolute path to a known_hosts file');
    expect((await c.call('importKnownHosts', ['/nonexistent/known_hosts'])).error?.message).toBe('/nonexistent/known_hosts does not exist; nothing imported');
    ws.close();
  });

  it('pushes events: opening the local lab shows up as cluster events with the servers connected', async () => {
    const ws = (await open(`?token=${server.token}`)) as WebSocket;
    const c = client(ws);
    const r = await c.call('openLocalLab', [2]);
    expect(r.error).toBeUndefined();
    const deadline = Date.now() + 20_000;
    while (!c.replies.some((x) => x.event?.type === 'cluster' && (x.event as unknown as { cluster: { servers: Array<{ connection: { state: string } }> } }).cluster.servers.filter((s) => s.connection.state === 'connected').length === 2)) {
      if (Date.now() > deadline) throw new Error(`no cluster event with both lab nodes connected: ${JSON.stringify(c.replies).slice(0, 2000)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
    expect((await c.call('closeLocalLab', [])).result).toMatchObject({ mode: 'none' });
    ws.close();
  });
});
