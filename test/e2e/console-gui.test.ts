// The console's main window in a real Chromium against browser mode and the local lab (three real
// agents on this machine): the hierarchy tree and the grid's states, live resync progress, the
// Properties Panel's tabs, pause/resume from the mirror toolbar changing the grid cell, settings and
// priorities with their errors, the Output Panel's CLI equivalents, keyboard menus and right-click menus.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { openConsolePage, startConsoleSession, type ConsoleServer, type ConsoleSession } from './console-server.js';
import { REPO, tempDir } from '../helpers/tools.js';
import type { ResourceDatabase } from '../../common/resource-database.js';

const dataDir = tempDir('e2e-console-gui');
const shots = path.join(REPO, 'test-output', 'screenshots');
const TAG = 'datarep-data';
let session: ConsoleSession | undefined;
let server: ConsoleServer;
let page: Page;
let problems: string[];

const disk = (node: string) => path.join(dataDir, 'local-lab', node, 'disks', 'disk1.img');
const shot = (name: string) => page.screenshot({ path: path.join(shots, `gui-${name}.png`) });
const cell = (server: string) => page.getByRole('gridcell', { name: new RegExp(`^${TAG} on ${server}:`) });
/** What a cell says, as one line. */
const cellText = async (server: string) => (await cell(server).innerText()).replace(/\s+/g, ' ').trim();
const outputCommands = () => page.getByRole('region', { name: 'Output Panel' }).locator('tbody tr').allInnerTexts();
const focusedText = () => page.evaluate<string>("document.activeElement?.textContent?.trim() ?? ''");

/** The pid of the local lab's agent whose TANDEM_HOME is `home` (this test's own lab, not anyone else's). */
function labAgentPid(home: string): number {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (env.includes(`TANDEM_HOME=${home}`) && cmd.includes('run')) return Number(entry);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  throw new Error(`no agent with TANDEM_HOME=${home}`);
}

beforeAll(async () => {
  fs.mkdirSync(shots, { recursive: true });
  session = await startConsoleSession(dataDir);
  server = session.server;
  // The cluster as a user's wizards would leave it: a mirror on node1, extended to node2 (sync) and
  // node3 (async), an application resource over it — made through the same console API the page uses.
  await server.call('openLocalLab', 3);
  // 32 MiB/s: the 256 MiB initial resync lasts long enough to be watched.
  await server.call('agentCall', 'node1', 'mirror.create', { tag: TAG, disk: disk('node1'), resyncRate: 32 << 20 });
  for (const n of ['node2', 'node3']) await server.call('agentCall', n, 'mirror.accept', { tag: TAG, disk: disk(n) });
  const db = await server.call<ResourceDatabase>('resourceDatabase');
  await server.call('saveResourceDatabase', {
    version: db.version, flags: [],
    resources: [
      { tag: TAG, kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'node1', priority: 1 }, { server: 'node2', priority: 10 }, { server: 'node3', priority: 20 }] },
      { tag: 'app', kind: 'generic', dependsOn: [TAG], switchback: 'intelligent', instances: [{ server: 'node1', priority: 1 }, { server: 'node2', priority: 10 }] },
    ],
  });
  ({ page, problems } = await openConsolePage(session.browser, server.url, { width: 1440, height: 900 }));
});

afterAll(() => session?.stop());

describe('console main window', () => {
  it('shows the hierarchy tree and the grid; a resync progresses live and turns into Target', async () => {
    const tree = page.getByRole('tree', { name: 'Resource hierarchies' });
    await expect.poll(() => tree.getByRole('treeitem').allInnerTexts(), { timeout: 30_000 }).toEqual([
      expect.stringMatching(/^▾\s*app\s*ISU on node1$/), expect.stringMatching(/^datarep-data$/),
    ]);
    await expect.poll(async () => cellText('node1'), { timeout: 30_000 }).toBe('Source ISU'); // no target yet: unprotected
    expect(await page.getByRole('gridcell', { name: 'app is not defined on node3' }).count()).toBe(1);

    const n2 = (await server.call<{ replication: string }>('agentCall', 'node2', 'agent.info', {})).replication;
    const n3 = (await server.call<{ replication: string }>('agentCall', 'node3', 'agent.info', {})).replication;
    await server.call('agentCall', 'node1', 'mirror.extend', { tag: TAG, node: 'node2', address: n2, mode: 'sync' });
    await server.call('agentCall', 'node1', 'mirror.extend', { tag: TAG, node: 'node3', address: n3, mode: 'async' });

    // The resync shows in the cell: Resyncing, a progress bar with % and speed.
    await expect.poll(async () => cellText('node2'), { timeout: 30_000 }).toMatch(/^Resyncing OSU \d+% · \d+K\/sec$/);
    expect(await cellText('node1')).toBe('Source ISP');
    await cell('node2').click();
    await page.getByRole('tab', { name: 'Replication Status' }).click();
    await shot('resyncing');
    const pct = Number(/(\d+)%/.exec(await cell('node2').innerText())![1]);
    await expect.poll(async () => Number(/(\d+)%/.exec(await cell('node2').innerText())?.[1] ?? 100), { timeout: 60_000 }).toBeGreaterThan(pct);
    await server.call('agentCall', 'node1', 'mirror.settings', { tag: TAG, setting: 'resyncrate', value: '0' });
    for (const n of ['node2', 'node3']) await expect.poll(async () => cellText(n), { timeout: 120_000 }).toBe('Target OSS');
    await expect.poll(() => tree.getByRole('treeitem').first().innerText(), { timeout: 30_000 }).toMatch(/app\s*ISP on node1$/);
  });

  it('Replication Status shows every field of the manual’s dialog for the selected target', async () => {
    const panel = page.getByRole('tabpanel');
    const field = async (name: string) => (await panel.locator(`[data-field="${name}"]`).innerText()).trim();
    await expect.poll(() => field('status'), { timeout: 30_000 }).toBe('Fully Operational');
    expect(await field('synced')).toBe('100.0%');
    expect(await field('type')).toBe('Synchronous');
    expect(await field('direction')).toMatch(/^node1 → node2 \(127\.0\.0\.1:\d+\)$/);
    expect(await field('bitmap')).toMatch(/datarep-data\.bitmap: 4096 chunks of 64\.0 KiB, 0 dirty \(0\.0%\)$/);
    expect(await field('rewind')).toBe('disabled');
    expect(await field('compression')).toBe('off (level 0)');
    expect(await field('queue')).toBe('0 of 256 writes');
    expect(await page.getByRole('img', { name: 'Throughput and queue depth to node2 over the last two minutes' }).locator('canvas').count()).toBeGreaterThan(0);
    await shot('replication-status');
  });

  it('pause and resume from the mirror toolbar change the grid cell live; the Output Panel shows the CLI commands', async () => {
    await page.getByRole('toolbar', { name: 'Mirror toolbar' }).getByRole('button', { name: 'Pause Mirror' }).click();
    await expect.poll(async () => cellText('node2'), { timeout: 30_000 }).toBe('Paused OSS');
    expect(await cellText('node3')).toBe('Target OSS');
    await expect.poll(() => page.locator('[data-field="status"]').innerText(), { timeout: 30_000 }).toBe('Paused');
    expect(await page.locator('[data-field="reason"]').count()).toBe(0); // a pause is no failure
    await shot('paused');
    await page.getByRole('toolbar', { name: 'Mirror toolbar' }).getByRole('button', { name: 'Resume Mirror' }).click();
    await expect.poll(async () => cellText('node2'), { timeout: 60_000 }).toBe('Target OSS');
    const lines = await outputCommands();
    expect(lines.some((l) => /node1\tPause Mirror|node1\tmirror\.pause/.test(l) && l.includes('mirror_action datarep-data pause node2') && l.includes('OK'))).toBe(true);
    expect(lines.some((l) => l.includes('mirror_action datarep-data resume node2') && l.includes('OK'))).toBe(true);
  });

  it('Set Compression Level: a bad value is refused beside the field, a good one runs mirror_settings on every server', async () => {
    await page.getByRole('toolbar', { name: 'Mirror toolbar' }).getByRole('button', { name: 'Set Compression Level' }).click();
    const dialog = page.getByRole('dialog', { name: /Set Compression Level/ });
    await dialog.getByLabel('Network compression level (0–9)').fill('12');
    await dialog.getByRole('button', { name: 'OK' }).click();
    expect(await dialog.getByRole('alert').innerText()).toBe('the compression level is a whole number from 0 (off) to 9 (best)');
    await shot('compression-dialog');
    await dialog.getByLabel('Network compression level (0–9)').fill('3');
    await dialog.getByRole('button', { name: 'OK' }).click();
    await expect.poll(async () => (await outputCommands()).filter((l) => l.includes('mirror_settings datarep-data compress 3') && l.includes('OK')).length, { timeout: 30_000 }).toBe(3);
    await expect.poll(() => page.locator('[data-field="compression"]').innerText(), { timeout: 30_000 }).toBe('off on this connection; level 3 from the next pause and resume');
  });

  it('Equivalencies: a priority already used is shown at its field; a free one is saved on every server', async () => {
    await page.getByRole('tab', { name: 'Equivalencies' }).click();
    const input = page.getByLabel('Priority of datarep-data on node2');
    await input.fill('1');
    await page.getByRole('tabpanel').getByRole('button', { name: 'Apply' }).click();
    expect(await page.getByRole('tabpanel').getByRole('alert').innerText()).toBe('priority 1 of "datarep-data" is already used on node1; each server needs its own');
    expect(await input.getAttribute('aria-invalid')).toBe('true');
    await shot('equivalencies-error');
    await input.fill('5');
    await page.getByRole('tabpanel').getByRole('button', { name: 'Apply' }).click();
    await expect.poll(async () => (await server.call<ResourceDatabase>('resourceDatabase')).resources[0]!.instances.map((i) => i.priority), { timeout: 30_000 }).toEqual([1, 5, 20]);
    expect((await outputCommands()).some((l) => l.includes('Save resource database') && l.includes('OK'))).toBe(true);
  });

  it('server properties: Confirm Failover On and Block Resource Failover On are saved in the resource database', async () => {
    await page.getByRole('columnheader', { name: 'Server node3: connected' }).click();
    await page.getByLabel('Confirm failover from node1 to node3').check();
    await page.getByLabel('Block resource failover on node2').check();
    await shot('server-properties');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(async () => (await server.call<ResourceDatabase>('resourceDatabase')).flags, { timeout: 30_000 }).toEqual([
      { server: 'node2', confirmFailoverFrom: [], blockResourceFailover: true },
      { server: 'node3', confirmFailoverFrom: ['node1'], blockResourceFailover: false },
    ]);
  });

  it('the menus work from the keyboard: F10, arrows, Enter and Escape', async () => {
    await page.keyboard.press('F10');
    expect(await focusedText()).toBe('File');
    await page.keyboard.press('ArrowRight');
    expect(await focusedText()).toBe('Edit');
    await page.keyboard.press('ArrowDown');
    expect(await focusedText()).toMatch(/^Server/);
    await page.keyboard.press('ArrowDown');
    expect(await focusedText()).toMatch(/^Resource/);
    await page.keyboard.press('ArrowRight');
    expect(await focusedText()).toBe('Extend Resource Hierarchy…');
    expect(await page.getByRole('menu', { name: 'Resource' }).isVisible()).toBe(true);
    await shot('menu-edit-resource');
    await page.keyboard.press('Escape');
    expect(await focusedText()).toMatch(/^Resource/);
    expect(await page.getByRole('menu', { name: 'Resource' }).count()).toBe(0);
    await page.keyboard.press('Escape');
    expect(await focusedText()).toBe('Edit');
    expect(await page.getByRole('menu').count()).toBe(0);
    // View → Output Panel toggles the panel.
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('Enter');
    expect(await focusedText()).toMatch(/Properties Panel$/);
    await page.keyboard.press('ArrowDown');
    expect(await page.getByRole('menuitemcheckbox', { name: 'Output Panel' }).getAttribute('aria-checked')).toBe('true');
    await page.keyboard.press('Enter');
    expect(await page.getByRole('region', { name: 'Output Panel' }).count()).toBe(0);
    expect(await page.getByRole('menu').count()).toBe(0);
    await page.keyboard.press('F10');
    await page.keyboard.press('ArrowLeft'); // wraps to Help
    expect(await focusedText()).toBe('Help');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowUp'); // opens View at its last item
    expect(await focusedText()).toMatch(/Output Panel$/);
    await page.keyboard.press('Enter');
    expect(await page.getByRole('region', { name: 'Output Panel' }).count()).toBe(1);
    // Toolbars: arrows move between their buttons.
    await page.getByRole('toolbar', { name: 'Global toolbar' }).getByRole('button', { name: 'Properties Panel' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await focusedText()).toBe('Output');
    await page.keyboard.press('ArrowLeft');
    expect(await focusedText()).toBe('Properties');
  });

  it('right-click (and Shift+F10) on a cell opens the resource menu with the server preselected', async () => {
    await cell('node2').click({ button: 'right' });
    const menu = page.getByRole('menu', { name: `Resource ${TAG}` });
    await menu.waitFor();
    expect(await menu.getByRole('menuitem').allInnerTexts()).toEqual(expect.arrayContaining(['Pause Mirror', 'Resume Mirror', 'Force Mirror Online…', 'Full Resync…', 'Extend Resource Hierarchy…', 'Properties']));
    expect(await focusedText()).toBe('Extend Resource Hierarchy…');
    await shot('context-menu');
    await page.keyboard.press('Escape');
    expect(await menu.count()).toBe(0);
    expect(await page.evaluate<string | null>("document.activeElement?.getAttribute('aria-label') ?? null")).toMatch(/^datarep-data on node2:/);
    // Keyboard: Shift+F10 on the focused cell, then Pause Mirror from the menu.
    await page.keyboard.press('Shift+F10');
    await menu.waitFor();
    await menu.getByRole('menuitem', { name: 'Pause Mirror' }).click();
    await expect.poll(async () => cellText('node2'), { timeout: 30_000 }).toBe('Paused OSS');
    await server.call('agentCall', 'node1', 'mirror.resume', { tag: TAG });
    await expect.poll(async () => cellText('node2'), { timeout: 60_000 }).toBe('Target OSS');
    await shot('main-window');
  });

  it('a server whose agent dies is shown as such; its cells say Unknown; the source shows the target Out Of Sync', async () => {
    const home = path.join(dataDir, 'local-lab', 'node3');
    const pid = labAgentPid(home);
    process.kill(pid, 'SIGKILL');
    const head = page.getByRole('columnheader', { name: /^Server node3: / });
    await expect.poll(() => head.getAttribute('aria-label'), { timeout: 60_000 }).toBe('Server node3: failed');
    expect(await head.innerText()).toMatch(/node3\s+failed/);
    await expect.poll(() => cellText('node3'), { timeout: 30_000 }).toBe('Unknown');
    expect(await cell('node3').getAttribute('title')).toMatch(/^node3 is failed: the lab agent stopped/);
    await cell('node1').click();
    await page.getByRole('tab', { name: 'Replication Status' }).click();
    const toNode3 = page.getByRole('article', { name: 'Replication from node1 to node3' });
    await expect.poll(() => toNode3.locator('[data-field="status"]').innerText(), { timeout: 60_000 }).toBe('Out Of Sync');
    expect(await toNode3.locator('[data-field="reason"]').count()).toBe(1);
    expect(await cellText('node1')).toBe('Source ISP'); // node2 still mirrors
    await shot('server-failed');
  });

  it('every control has a name a screen reader can say', async () => {
    // Open everything that holds controls: the Edit → Resource menu, each properties tab.
    const unnamed = async () => page.evaluate<string[]>(`(() => {
      const sel = 'button, input, select, textarea, [role=menuitem], [role=menuitemcheckbox], [role=tab], [role=gridcell], [role=treeitem], [role=columnheader], [role=toolbar], [role=menu], [role=dialog], progress';
      const name = (el) => {
        const by = el.getAttribute('aria-labelledby');
        if (by) return by.split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
        if (el.getAttribute('aria-label')) return el.getAttribute('aria-label').trim();
        if (el.id && document.querySelector('label[for="' + el.id + '"]')) return document.querySelector('label[for="' + el.id + '"]').textContent.trim();
        return (el.textContent ?? '').trim() || (el.getAttribute('title') ?? '').trim();
      };
      return [...document.querySelectorAll(sel)].filter((el) => el.getClientRects().length > 0 && !name(el)).map((el) => el.outerHTML.slice(0, 120));
    })()`);
    await cell('node2').click();
    for (const tab of ['General', 'Relations', 'Equivalencies', 'Replication Status']) {
      await page.getByRole('tab', { name: tab }).click();
      expect(await unnamed(), tab).toEqual([]);
    }
    await page.getByRole('menubar').getByRole('menuitem', { name: 'Edit' }).click();
    await page.getByRole('menuitem', { name: 'Resource' }).click();
    expect(await unnamed(), 'menus').toEqual([]);
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    await page.getByRole('columnheader', { name: /^Server node1/ }).click();
    expect(await unnamed(), 'server properties').toEqual([]);
  });

  it('produced no console errors (CSP or otherwise)', () => {
    expect(problems).toEqual([]);
  });
});
