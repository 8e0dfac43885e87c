// Browser mode end to end: the bundled server (`npm run serve`'s program) and the built renderer in a
// real Chromium. The page reaches the backend with the token from its URL and shows live state.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openConsolePage, startConsoleSession, type ConsoleSession } from './console-server.js';
import { REPO, tempDir } from '../helpers/tools.js';

const dataDir = tempDir('e2e-browser-mode');
const shots = path.join(REPO, 'test-output', 'screenshots');
let session: ConsoleSession | undefined;

beforeAll(async () => {
  fs.mkdirSync(shots, { recursive: true });
  session = await startConsoleSession(dataDir);
});

afterAll(() => session?.stop());

describe('browser mode', () => {
  it('the page opens with the token, runs under its CSP, and opens the local lab from the welcome screen', async () => {
    const { page, problems } = await openConsolePage(session!.browser, session!.server.url);
    await page.getByRole('region', { name: 'Welcome' }).getByText('Cluster: No cluster').waitFor();
    await page.getByRole('button', { name: 'Open Local Lab' }).click();
    // The Open Local Lab wizard: 3 nodes by default.
    const wizard = page.getByRole('dialog', { name: 'Open Local Lab' });
    await wizard.getByRole('button', { name: 'Open', exact: true }).click();
    await wizard.getByRole('button', { name: 'Done', exact: true }).click({ timeout: 60_000 });
    const heads = page.getByRole('grid', { name: 'Resource states by server' }).getByRole('columnheader');
    await expect.poll(async () => heads.allInnerTexts(), { timeout: 60_000 }).toEqual(['node1\nconnected', 'node2\nconnected', 'node3\nconnected']);
    await page.screenshot({ path: path.join(shots, 'browser-mode-local-lab.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('without the token the page says it cannot reach the backend', async () => {
    const page = await session!.browser.newPage();
    await page.goto(session!.server.url.replace(/\?token=.*/, ''));
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').innerText()).toContain('cannot reach the console backend');
    await page.close();
  });
});
