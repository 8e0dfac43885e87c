// Browser mode end to end: the bundled server (`npm run serve`'s program) and the built renderer in a
// real Chromium. The page reaches the backend with the token from its URL and shows live state.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser.js';
import { REPO, tempDir } from '../helpers/tools.js';

const dataDir = tempDir('e2e-browser-mode');
const shots = path.join(REPO, 'test-output', 'screenshots');
let server: ChildProcess;
let url = '';
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(shots, { recursive: true });
  server = spawn(process.execPath, [path.join(REPO, 'resources', 'console', 'serve.cjs'), '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  server.stdout!.on('data', (d) => (out += d));
  server.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 15_000;
  while (!/open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.test(out)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`the browser-mode server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  url = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/.exec(out)![1]!;
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('browser mode', () => {
  it('the page opens with the token, runs under its CSP, and opens the local lab', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(url);
    await page.getByText('Cluster: No cluster').waitFor();
    await page.getByRole('button', { name: 'Open Local Lab' }).click();
    const rows = page.getByRole('table', { name: 'Servers' }).locator('tbody tr');
    await expect.poll(async () => rows.count(), { timeout: 30_000 }).toBe(3);
    await expect.poll(async () => (await rows.allInnerTexts()).every((t) => t.includes('connected')), { timeout: 30_000 }).toBe(true);
    await page.screenshot({ path: path.join(shots, 'browser-mode-local-lab.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('without the token the page says it cannot reach the backend', async () => {
    const page = await browser.newPage();
    await page.goto(url.replace(/\?token=.*/, ''));
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('cannot reach the console backend');
    await page.close();
  });
});
