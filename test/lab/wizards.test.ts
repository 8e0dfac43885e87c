// The console's wizards in Chromium (browser mode) against the network-namespace lab: three servers
// added through Add Server (each host key compared with the node's own and trusted in the page, the
// agent deployed with its steps shown, comm paths), a DataKeeper resource created and extended to two
// targets (sync, then async), data written through the export on the source, pause and resume,
// Resyncing → Target, a switchover with In Service, and the hierarchy deleted.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../e2e/browser.js';
import { startConsoleServer, type ConsoleServer } from '../e2e/console-server.js';
import { WizardDriver } from '../e2e/wizard-driver.js';
import { tempDir } from '../helpers/tools.js';
import { createLab, type Lab, type LabNode } from './lab.js';

const isRoot = process.getuid?.() === 0;
const TAG = 'datarep-web';
const CA_PASSPHRASE = 'lab-cluster-ca-passphrase';

let lab: Lab;
let dataDir: string;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
const problems: string[] = [];
/** What passed, for the report: each stage of the scenario is recorded when it is done. */
const passed: string[] = [];

const sha = (disk: string) => crypto.createHash('sha256').update(fs.readFileSync(disk)).digest('hex');

describe.skipIf(!isRoot)('the wizards against the network-namespace lab, in a real browser', () => {
  beforeAll(async () => {
    dataDir = tempDir('lab-wizards');
    lab = await createLab({ nodes: 3, disksPerNode: 2, diskMiB: 64 });
    server = await startConsoleServer(dataDir);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
      if (m.type() === 'error' || m.type() === 'warning') console.log(`page ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(server.url);
  }, 180_000);

  afterAll(async () => {
    console.log(`lab wizard scenario — passed stages: ${passed.join(', ') || 'none'}`);
    // A file system left mounted on a NetRAID device would outlive the node's agent: take it down first.
    await server?.call('deleteHierarchy', 'datarep-ext4-web').catch(() => undefined);
    await browser?.close();
    await server?.stop();
    await lab?.teardown();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('add 3 servers, deploy, create, extend sync + async, write, pause/resume, Resyncing → Target, switch over, delete', async () => {
    const w = new WizardDriver(page, 'netlab');
    onTestFailed(() => w.shot('FAILED'));
    const nodes = lab.nodes as [LabNode, LabNode, LabNode];

    // ---- A host key refused: the server is not reached, and Cancel takes it out again ----
    await page.getByRole('button', { name: 'Add Server…' }).click();
    let refused = w.dialog('Add Server');
    await refused.getByLabel('Server Name', { exact: true }).fill('untrusted');
    await refused.getByLabel('Host', { exact: true }).fill(nodes[0].address);
    await refused.getByLabel('SSH agent', { exact: true }).uncheck();
    await refused.getByLabel('Key File', { exact: true }).fill(lab.clientKey.privateKeyFile);
    await w.press(refused, 'Next');
    await refused.getByRole('button', { name: 'Refuse' }).click();
    await expect.poll(async () => refused.getByRole('status').first().innerText(), { timeout: 60_000 }).toMatch(/Connection: (failed|unreachable|disconnected)/);
    await w.shot('add-refused-host-key');
    await w.press(refused, 'Next');
    expect(await refused.getByRole('alert').innerText()).toContain('untrusted is not connected yet');
    await w.press(refused, 'Cancel');
    await refused.waitFor({ state: 'detached' });
    await expect.poll(async () => (await server.call<{ servers: Array<{ name: string }> }>('cluster')).servers.map((s) => s.name), { timeout: 30_000 }).toEqual([]);
    refused = page.locator('nothing');

    // ---- Add Server ×3 ----
    for (const [i, n] of nodes.entries()) {
      if (i === 0) await page.getByRole('button', { name: 'Add Server…' }).click();
      else await w.menu('File', 'Add Server…');
      const d = w.dialog('Add Server');
      await w.atStep(d, 'Step 1 of 5: Server and SSH', `add-${n.name}-ssh`);
      await d.getByLabel('Server Name', { exact: true }).fill(n.name);
      await d.getByLabel('Host', { exact: true }).fill(n.address);
      await d.getByLabel('SSH agent', { exact: true }).uncheck();
      await d.getByLabel('Key File', { exact: true }).fill('id_ed25519');
      await w.press(d, 'Next');
      expect(await w.fieldError(d, 'Key File')).toContain('id_ed25519 is not an absolute path');
      if (i === 0) await w.shot(`add-${n.name}-keyfile-error`);
      await d.getByLabel('Key File', { exact: true }).fill(lab.clientKey.privateKeyFile);
      await w.press(d, 'Next');
      // The host key, with its SHA256 fingerprint, compared with the node's own before trusting it.
      await w.atStep(d, 'Key type', `add-${n.name}-host-key`);
      expect(await d.locator('code').first().innerText()).toBe(n.hostKeyFingerprint);
      // Asked once: in the wizard, not again by the main window.
      expect(await page.getByRole('dialog', { name: `Question from ${n.name}` }).count()).toBe(0);
      await d.getByRole('button', { name: 'Trust this key' }).click();
      await d.getByText('Connection: connected').waitFor({ timeout: 60_000 });
      await w.shot(`add-${n.name}-connected`);
      await w.press(d, 'Next');
      await w.atStep(d, 'Step 3 of 5: Deploy Agent', `add-${n.name}-deploy`);
      await w.press(d, 'Deploy');
      // The cluster CA's passphrase (a new CA for the first server; to unlock it later), asked in the wizard.
      const next = d.getByText('Step 4 of 5: Comm Paths');
      const ask = d.getByLabel('Passphrase');
      for (let tries = 0; tries < 600 && !(await next.isVisible()); tries++) {
        if (await ask.isVisible()) {
          await ask.fill(CA_PASSPHRASE);
          await w.shot(`add-${n.name}-ca-passphrase`);
          await d.getByRole('button', { name: 'Send' }).click();
        }
        await page.waitForTimeout(250);
      }
      await w.atStep(d, 'Step 4 of 5: Comm Paths', `add-${n.name}-comm-paths`);
      const progress = await d.getByRole('list', { name: 'Deployment steps' }).count();
      expect(progress).toBe(0); // the progress list belongs to the previous step
      if (i > 0) {
        // Defaults: this server's host and each other server's, one path per other server.
        expect(await d.getByLabel(`Address of ${n.name}`).first().inputValue()).toBe(n.address);
        expect(await d.getByLabel('Address of node1').inputValue()).toBe(nodes[0].address);
      }
      await w.press(d, 'Finish');
      await w.atStep(d, `${n.name} is in the cluster, its agent is running`, `add-${n.name}-done`);
      await w.press(d, 'Done');
      await d.waitFor({ state: 'detached' });
    }
    const cluster = await server.call<{ servers: Array<{ name: string; agent: { running: boolean } }>; commPaths: unknown[] }>('cluster');
    expect(cluster.servers.map((s) => [s.name, s.agent.running])).toEqual([['node1', true], ['node2', true], ['node3', true]]);
    expect(cluster.commPaths).toHaveLength(3);
    passed.push('add 3 servers (host keys accepted in the page)', 'deploy');

    // ---- Create (DataKeeper Resource on node1's lab disk) ----
    await w.menu('Edit', 'Server', 'Create Resource Hierarchy…');
    let d = w.dialog('Create Resource Wizard');
    await w.press(d, 'Next');
    await d.getByLabel('Server', { exact: true }).selectOption('node1');
    await d.getByLabel('DataKeeper Resource', { exact: true }).check();
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 3 of 6: Disk or Mount Point', 'create-source-disk');
    await d.getByLabel('Source Disk or Partition').selectOption(nodes[0].disks[0]!);
    await w.press(d, 'Next');
    await d.getByLabel('DataKeeper Resource Tag').fill(TAG);
    await d.getByLabel('Bitmap File').fill(`/var/lib/tandem/bitmaps/${TAG}.bitmap`);
    await d.getByLabel('Enable Asynchronous Replication ?').selectOption('Yes');
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 5 of 6: Confirm', 'create-confirm');
    await w.press(d, 'Create');
    await w.atStep(d, `${TAG} was created on node1`, 'create-created');
    await w.press(d, 'Continue');
    passed.push('create');

    // ---- Extend to node2, synchronous, over the comm path ----
    d = w.dialog('Extend Resource Hierarchy');
    await w.atStep(d, 'Step 2 of 6: Target', 'extend1-target');
    await d.getByLabel('Target Server').selectOption('node2');
    await w.press(d, 'Next');
    await w.atStep(d, 'Pre-extend checks were successful', 'extend1-disk');
    await d.getByLabel('Target Disk or Partition').selectOption(nodes[1].disks[0]!);
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 4 of 6: Replication', 'extend1-replication');
    expect(await d.getByLabel('Replication Path').locator('option:checked').innerText()).toBe(`${nodes[1].address} (node2) ↔ ${nodes[0].address} (node1)`);
    await w.press(d, 'Next');
    await w.press(d, 'Extend');
    await w.atStep(d, `${TAG} was extended to node2 (synchronous replication)`, 'extend1-finish');
    await w.press(d, 'Finish');

    // ---- Extend to node3, asynchronous (Accept Defaults, then the disk and types changed) ----
    await w.menu('Edit', 'Resource', 'Extend Resource Hierarchy…');
    d = w.dialog('Extend Resource Hierarchy');
    await d.getByRole('button', { name: 'Accept Defaults' }).waitFor();
    await w.press(d, 'Accept Defaults');
    await w.atStep(d, 'Step 5 of 6: Confirm', 'extend2-defaults-confirm');
    await w.press(d, '< Back');
    await w.press(d, '< Back');
    await w.atStep(d, 'Step 3 of 6: Extend', 'extend2-disk');
    await d.getByLabel('Target Disk or Partition').selectOption(nodes[2].disks[0]!);
    await w.press(d, 'Next');
    const types = d.getByLabel('Replication Type');
    await types.nth(0).selectOption('async');
    await types.nth(1).selectOption('async');
    await w.shot('extend2-replication-async');
    await w.press(d, 'Next');
    expect(await d.getByRole('table', { name: 'Extension to make' }).innerText()).toContain('Target Server\tnode3');
    await w.press(d, 'Extend');
    await w.atStep(d, `${TAG} was extended to node3 (asynchronous replication)`, 'extend2-finish');
    await w.press(d, 'Finish');
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 180_000 }).toMatch(/: Target/);
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 180_000 }).toMatch(/: Target/);
    await w.shot('both-targets');
    passed.push('extend sync + async');

    // ---- Write through the export on node1 ----
    const write = async (...cmds: string[]) => {
      const r = await nodes[0].exec(`timeout 60 qemu-io -f raw ${cmds.map((c) => `-c '${c}'`).join(' ')} 'nbd+unix:///${TAG}?socket=/run/tandem/${TAG}.nbd.sock'`, { timeoutMs: 70_000 });
      expect(r.code, r.stderr).toBe(0);
    };
    await write('write -P 0x4e 0 8M', 'write -P 0xe4 40M 4M');
    passed.push('write through the export');

    // ---- Pause node3, write, resume (slowly): Resyncing → Target ----
    await w.cellMenu(TAG, 'node3', 'Pause Mirror');
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Paused/);
    await w.shot('paused');
    await server.call('agentCall', 'node1', 'mirror.settings', { tag: TAG, setting: 'resyncrate', value: '1000000' });
    await write('write -P 0x77 16M 8M');
    await w.cellMenu(TAG, 'node3', 'Resume Mirror');
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Resyncing/);
    await w.shot('resyncing');
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 180_000 }).toMatch(/: Target/);
    await w.shot('resynced');
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Target/);
    const want = sha(nodes[0].disks[0]!);
    await expect.poll(() => sha(nodes[1].disks[0]!), { timeout: 60_000 }).toBe(want);
    await expect.poll(() => sha(nodes[2].disks[0]!), { timeout: 60_000 }).toBe(want);
    passed.push('pause and resume', 'Resyncing → Target', 'data equal on all three');

    // ---- Switchover to node2 ----
    await w.cellMenu(TAG, 'node2', 'In Service…');
    d = w.dialog('In Service');
    await w.atStep(d, 'This is a manual switchover', 'switchover-confirm');
    await w.press(d, 'In Service');
    await w.atStep(d, 'switched over', 'switchover-done');
    await w.press(d, 'Done');
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Source/);
    await expect.poll(() => w.cell(TAG, 'node1').getAttribute('aria-label'), { timeout: 120_000 }).toMatch(/: Target/);
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 120_000 }).toMatch(/: Target/);
    await w.shot('switched-over');
    passed.push('switch over');

    // ---- Delete ----
    await w.cellMenu(TAG, 'node2', 'Delete Resource Hierarchy…');
    d = w.dialog('Delete Resource Hierarchy');
    await w.atStep(d, `Delete ${TAG} from every server`, 'delete-confirm');
    await w.press(d, 'Delete');
    await w.atStep(d, `${TAG} deleted from every server`, 'delete-done');
    await w.press(d, 'Done');
    await expect.poll(() => page.getByRole('gridcell').count(), { timeout: 60_000 }).toBe(0);
    await w.shot('deleted');
    passed.push('delete');
    expect(w.unnamed).toEqual([]);
    expect(problems).toEqual([]);
  }, 900_000);

  it('Replicate New File System: formatted and mounted on the source; Extend asks the mount point and root tag', async () => {
    const w = new WizardDriver(page, 'netlab-fs');
    onTestFailed(() => w.shot('FAILED'));
    const nodes = lab.nodes as [LabNode, LabNode, LabNode];
    await w.menu('Edit', 'Server', 'Create Resource Hierarchy…');
    let d = w.dialog('Create Resource Wizard');
    await w.press(d, 'Next');
    await d.getByLabel('Server', { exact: true }).selectOption('node1');
    await d.getByLabel('Replicate New File System', { exact: true }).check();
    await w.press(d, 'Next');
    await d.getByLabel('Source Disk or Partition').selectOption(nodes[0].disks[1]!);
    await d.getByLabel('New Mount Point').fill('/usr');
    await w.press(d, 'Next');
    expect(await w.fieldError(d, 'New Mount Point')).toBe('/usr is a system location; choose another mount point');
    await d.getByLabel('New Mount Point').fill('/srv/web');
    await d.getByLabel('New File System Type').selectOption('ext4');
    await w.shot('new-fs');
    await w.press(d, 'Next');
    // The manual's default tags: ext4 at /srv/web → ext4-web, under datarep-ext4-web.
    expect(await d.getByLabel('File System Resource Tag').inputValue()).toBe('ext4-web');
    expect(await d.getByLabel('DataKeeper Resource Tag').inputValue()).toBe('datarep-ext4-web');
    await w.press(d, 'Next');
    await w.atStep(d, `CAUTION: ${nodes[0].disks[1]} on node1 will be formatted as ext4`, 'new-fs-confirm');
    await w.press(d, 'Create');
    await w.atStep(d, 'datarep-ext4-web was created on node1 and mounted at /srv/web', 'new-fs-created');
    const mounted = await nodes[0].exec('findmnt -n -o FSTYPE /srv/web');
    expect(mounted.stdout.trim()).toBe('ext4');
    await w.press(d, 'Continue');
    d = w.dialog('Extend Resource Hierarchy');
    await d.getByLabel('Target Server').selectOption('node2');
    await w.press(d, 'Next');
    await w.atStep(d, 'Pre-extend checks were successful', 'new-fs-extend');
    expect(await d.getByLabel('Mount Point', { exact: true }).inputValue()).toBe('/srv/web');
    expect(await d.getByLabel('Root Tag').inputValue()).toBe('ext4-web');
    await d.getByLabel('Mount Point', { exact: true }).fill('/mnt/other');
    await w.press(d, 'Next');
    expect(await w.fieldError(d, 'Mount Point')).toBe('Tandem mounts "ext4-web" at the same place on every server: /srv/web');
    await d.getByLabel('Mount Point', { exact: true }).fill('/srv/web');
    await d.getByLabel('Target Disk or Partition').selectOption(nodes[1].disks[1]!);
    await w.press(d, 'Next');
    await w.press(d, 'Next');
    await w.press(d, 'Extend');
    await w.atStep(d, 'datarep-ext4-web was extended to node2', 'new-fs-extended');
    await w.press(d, 'Finish');
    await expect.poll(() => w.cell('datarep-ext4-web', 'node2').getAttribute('aria-label'), { timeout: 120_000 }).toMatch(/: Target/);
    await w.shot('new-fs-target');

    // Out of Service (as the manual advises before deleting): unmounted, the NetRAID device detached.
    await w.cellMenu('datarep-ext4-web', 'node1', 'Out of Service…');
    d = w.dialog('Out of Service');
    await w.atStep(d, 'Resources that depend on it: ext4-web', 'new-fs-out-of-service');
    await w.press(d, 'Out of Service');
    await w.atStep(d, 'out of service on node1', 'new-fs-out-of-service-done');
    await w.press(d, 'Done');
    expect((await nodes[0].exec('findmnt -n /srv/web; echo rc=$?')).stdout.trim()).toBe('rc=1');
    await w.cellMenu('datarep-ext4-web', 'node1', 'Delete Resource Hierarchy…');
    d = w.dialog('Delete Resource Hierarchy');
    await w.atStep(d, 'Delete datarep-ext4-web and ext4-web from every server', 'new-fs-delete');
    await w.press(d, 'Delete');
    await w.atStep(d, 'datarep-ext4-web, ext4-web deleted from every server', 'new-fs-deleted');
    await w.press(d, 'Done');
    expect(w.unnamed).toEqual([]);
  }, 600_000);
});
