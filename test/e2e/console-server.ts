// The browser-mode server as a user starts it (`npm run serve`'s bundled program), plus a client of its
// WebSocket API for a test to set up what it then looks at in the browser (the same calls the page makes).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import WebSocket from 'ws';
import { REPO } from '../helpers/tools.js';
import { launchChromium } from './browser.js';

export interface ConsoleServer {
  url: string;
  call<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  stop(): Promise<void>;
}

export async function startConsoleServer(dataDir: string): Promise<ConsoleServer> {
  const server: ChildProcess = spawn(process.execPath, [path.join(REPO, 'resources', 'console', 'serve.cjs'), '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  server.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!/open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.test(out)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`the browser-mode server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)![1]!;
  const u = new URL(url);
  const ws = new WebSocket(`ws://${u.host}/api?token=${u.searchParams.get('token')}`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
    if (!p) return;
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(msg.error.message));
    else p.resolve(msg.result);
  });
  return {
    url,
    call: <T>(method: string, ...args: unknown[]) => new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      ws.send(JSON.stringify({ id, method, args }));
    }),
    async stop() {
      ws.close();
      if (server.exitCode === null) {
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    },
  };
}

export interface ConsoleSession {
  server: ConsoleServer;
  browser: Browser;
  /** Closes the browser, stops the server and removes `dataDir`. */
  stop(): Promise<void>;
}

/** The browser-mode server on `dataDir` and a Chromium to look at it: one test file's set-up. */
export async function startConsoleSession(dataDir: string): Promise<ConsoleSession> {
  const server = await startConsoleServer(dataDir);
  const browser = await launchChromium().catch(async (e: unknown) => {
    await server.stop();
    throw e;
  });
  return {
    server,
    browser,
    async stop() {
      await browser.close();
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A page on `url`; console errors and uncaught page errors (CSP violations among them) go to `problems`. */
export async function openConsolePage(browser: Browser, url: string, viewport?: { width: number; height: number }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage(viewport ? { viewport } : {});
  const problems: string[] = [];
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(url);
  return { page, problems };
}
