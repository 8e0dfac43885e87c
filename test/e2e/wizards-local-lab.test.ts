// The hierarchy wizards end to end in Chromium against browser mode and the local lab, driven through
// the real menus: open the lab, create a DataKeeper resource, extend it to two targets (sync, then
// async with Accept Defaults), write through the source's export, pause and resume, watch Resyncing turn
// into Target, switch over with In Service (refused first while resyncing), unextend and delete.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Page } from 'playwright-core';
import { WizardDriver } from './wizard-driver.js';
import { nbdUri, run, sha256File, tempDir } from '../helpers/tools.js';
import type { ClusterView } from '../../common/console-api.js';
import type { DiskCandidate } from '../../common/hierarchy.js';
import { extendDefaults, mirrorPlacement } from '../../common/wizard-rules.js';
import { openConsolePage, startConsoleSession, type ConsoleServer, type ConsoleSession } from './console-server.js';

const TAG = 'datarep-lab';
const dataDir = tempDir('e2e-wizards');
let session: ConsoleSession | undefined;
let server: ConsoleServer;
let page: Page;
let problems: string[];
const labDisk = (node: string, n = 1) => path.join(dataDir, 'local-lab', node, 'disks', `disk${n}.img`);

/** Setup through the API (the Extend wizard itself is driven above): extend `tag` to `target`'s second disk. */
async function apiExtend(tag: string, target: string, targets: number): Promise<void> {
  let cluster: ClusterView;
  const deadline = Date.now() + 60_000;
  do {
    cluster = await server.call<ClusterView>('cluster');
    if (Date.now() > deadline) throw new Error(`${tag} never showed ${targets} targets`);
  } while (mirrorPlacement(cluster, tag).targets.length !== targets || !mirrorPlacement(cluster, tag).inService);
  const disks = (await server.call<{ disks: DiskCandidate[] }>('agentCall', target, 'resource.disks', {})).disks;
  const form = extendDefaults({ cluster, db: cluster.resources, targetDisks: disks, targetBitmapDir: '/unused' }, mirrorPlacement(cluster, tag).source!, tag, target);
  await server.call('extendHierarchy', { ...form, targetDisk: labDisk(target, 2), bitmapFile: 'none' });
}

beforeAll(async () => {
  session = await startConsoleSession(dataDir);
  server = session.server;
  ({ page, problems } = await openConsolePage(session.browser, server.url, { width: 1400, height: 900 }));
});

afterAll(() => session?.stop());

describe('the wizards on the local lab, in a real browser', () => {
  it('keyboard: focus on the first field, Enter = Next (focus to the first error), Tab stays in the dialog, Escape cancels', async () => {
    const w = new WizardDriver(page, 'keys');
    const opener = page.getByRole('button', { name: 'Add Server…' });
    await opener.click();
    const d = w.dialog('Add Server');
    await w.atStep(d, 'Step 1 of 5: Server and SSH', 'add-server-empty');
    const active = () => page.evaluate<string>('document.activeElement?.id || document.activeElement?.tagName || ""');
    expect(await active()).toBe('as-name');
    await page.keyboard.type('node 9');
    await page.getByLabel('Host', { exact: true }).fill('');
    await page.getByLabel('Host', { exact: true }).press('Enter');
    expect(await w.fieldError(d, 'Server Name')).toContain('"node 9" is not a server name');
    expect(await w.fieldError(d, 'Host')).toBe('enter the host: a DNS name or an IP address');
    await expect.poll(active).toBe('as-name');
    await w.shot('add-server-errors');
    const inside: boolean[] = [];
    for (let i = 0; i < 25; i++) {
      await page.keyboard.press('Tab');
      inside.push(await page.evaluate<boolean>('!!document.activeElement?.closest("[role=dialog]")'));
    }
    expect(inside.every(Boolean)).toBe(true);
    await page.keyboard.press('Escape');
    await d.waitFor({ state: 'detached' });
    expect(await page.evaluate<string>('document.activeElement?.textContent?.trim() ?? ""')).toBe('Add Server…');
    expect(w.unnamed).toEqual([]);
  });

  it('open the lab, create, extend sync + async, write, pause/resume, Resyncing → Target, switch over, unextend, delete', async () => {
    const w = new WizardDriver(page, 'lab');
    onTestFailed(() => w.shot('FAILED'));

    // ---- Open Local Lab (the welcome screen's default) ----
    await page.getByRole('button', { name: 'Open Local Lab' }).click();
    let d = w.dialog('Open Local Lab');
    await w.atStep(d, 'Step 1 of 2: Nodes', 'local-lab-nodes');
    await d.getByLabel('Number of Nodes').fill('9');
    await w.press(d, 'Open');
    expect(await w.fieldError(d, 'Number of Nodes')).toBe('the lab has 2 to 8 nodes, not "9"');
    await w.shot('local-lab-error');
    await d.getByLabel('Number of Nodes').fill('3');
    await d.getByLabel('Number of Nodes').press('Enter'); // Enter = the main button
    await w.atStep(d, 'The local lab is open: node1, node2, node3', 'local-lab-open');
    await w.press(d, 'Done');
    await d.waitFor({ state: 'detached' });

    // ---- Create Resource Hierarchy ----
    await w.menu('Edit', 'Server', 'Create Resource Hierarchy…');
    d = w.dialog('Create Resource Wizard');
    await w.atStep(d, 'Step 1 of 6: Recovery Kit', 'create-recovery-kit');
    expect(await d.getByLabel('Recovery Kit').inputValue()).toBe('Data Replication');
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 2 of 6: Server and Type', 'create-server-type');
    await d.getByLabel('Switchback Type').selectOption('automatic');
    await w.press(d, 'Next');
    expect(await w.fieldError(d, 'Switchback Type')).toContain('Automatic Switchback is not supported for DataKeeper resources');
    await w.shot('create-switchback-error');
    await d.getByLabel('Switchback Type').selectOption('intelligent');
    await d.getByLabel('Server', { exact: true }).selectOption('node1');
    await d.getByLabel('DataKeeper Resource', { exact: true }).check();
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 3 of 6: Disk or Mount Point', 'create-source-disk');
    // The lab's two image disks are offered (nothing of this machine's own disks).
    expect(await d.getByLabel('Source Disk or Partition').locator('option').allInnerTexts()).toEqual([`${labDisk('node1', 1)} (256.0 MiB)`, `${labDisk('node1', 2)} (256.0 MiB)`]);
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 4 of 6: Tags and Bitmap', 'create-tags-bitmap');
    expect(await d.getByLabel('DataKeeper Resource Tag').inputValue()).toBe('datarep-disk1.img');
    expect(await d.getByLabel('Bitmap File').inputValue()).toBe(path.join(dataDir, 'local-lab', 'node1', 'state', 'bitmaps', 'datarep-disk1.img.bitmap'));
    await d.getByLabel('DataKeeper Resource Tag').fill('bad tag!');
    await w.press(d, 'Next');
    expect(await w.fieldError(d, 'DataKeeper Resource Tag')).toBe('DataKeeper Resource Tag "bad tag!" may hold only letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)');
    await w.shot('create-tag-error');
    await d.getByLabel('DataKeeper Resource Tag').fill(TAG);
    await d.getByLabel('Bitmap File').fill(path.join(dataDir, 'local-lab', 'node1', 'state', 'bitmaps', `${TAG}.bitmap`));
    await d.getByLabel('Enable Asynchronous Replication ?').selectOption('Yes');
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 5 of 6: Confirm', 'create-confirm');
    expect(await d.getByRole('table', { name: 'Hierarchy to create' }).innerText()).toContain(`DataKeeper Resource Tag\t${TAG}`);
    await w.press(d, 'Create');
    await w.atStep(d, `${TAG} was created on node1`, 'create-created');
    // "Extend now?": Continue opens the Pre-Extend Wizard with this server and tag.
    await w.press(d, 'Continue');

    // ---- Extend to node2, synchronous ----
    d = w.dialog('Extend Resource Hierarchy');
    await w.atStep(d, 'Step 2 of 6: Target', 'extend1-target');
    expect(await d.getByText(`Extending ${TAG} from node1.`).count()).toBe(1);
    await d.getByLabel('Target Server').selectOption('node2');
    expect(await d.getByLabel('Template Priority').inputValue()).toBe('1');
    await d.getByLabel('Target Priority').fill('1');
    await w.press(d, 'Next');
    expect(await w.fieldError(d, 'Target Priority')).toBe('priority 1 is the Template Priority; no two servers may share a priority');
    await w.shot('extend1-priority-error');
    await d.getByLabel('Target Priority').fill('2');
    await w.press(d, 'Next');
    await w.atStep(d, 'Pre-extend checks were successful', 'extend1-disk');
    expect(await d.getByLabel('Target Disk or Partition').inputValue()).toBe(labDisk('node2', 1));
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 4 of 6: Replication', 'extend1-replication');
    expect(await d.getByLabel('Replication Type').inputValue()).toBe('sync');
    await w.press(d, 'Next');
    await w.atStep(d, 'Step 5 of 6: Confirm', 'extend1-confirm');
    await w.press(d, 'Extend');
    await w.atStep(d, `${TAG} was extended to node2 (synchronous replication)`, 'extend1-finish');
    await w.press(d, 'Finish');
    await d.waitFor({ state: 'detached' });
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 90_000 }).toMatch(/: (Resyncing|Target)/);

    // ---- Extend to node3, asynchronous, from the menu with Accept Defaults ----
    await w.menu('Edit', 'Resource', 'Extend Resource Hierarchy…');
    d = w.dialog('Extend Resource Hierarchy');
    await d.getByRole('button', { name: 'Accept Defaults' }).waitFor();
    await w.shot('extend2-pre-extend');
    await w.press(d, 'Accept Defaults');
    await w.atStep(d, 'Step 5 of 6: Confirm', 'extend2-defaults-confirm');
    const summary = await d.getByRole('table', { name: 'Extension to make' }).innerText();
    expect(summary).toContain('Target Server\tnode3');
    expect(summary).toContain('Target Priority\t3');
    expect(summary).not.toContain('Template Priority'); // only on the first extend
    expect(summary).toContain('Replication node3 ↔ node1\t127.0.0.1 ↔ 127.0.0.1, synchronous');
    expect(summary).toContain('Replication node3 ↔ node2\t127.0.0.1 ↔ 127.0.0.1, synchronous');
    await w.press(d, '< Back');
    await w.atStep(d, 'Step 4 of 6: Replication', 'extend2-replication');
    const types = d.getByLabel('Replication Type');
    expect(await types.count()).toBe(2); // one per existing server: node1 and node2
    await types.nth(0).selectOption('async');
    await types.nth(1).selectOption('async');
    await w.shot('extend2-replication-async');
    await w.press(d, 'Next');
    await w.press(d, 'Extend');
    await w.atStep(d, `${TAG} was extended to node3 (asynchronous replication)`, 'extend2-finish');
    await w.press(d, 'Finish');

    // Both targets settle to Target; the status shows both modes.
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 120_000 }).toMatch(/: Target/);
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 120_000 }).toMatch(/: Target/);
    await w.shot('both-targets');

    // ---- Pause node3, write through the export, resume: Resyncing → Target ----
    await w.cellMenu(TAG, 'node3', 'Pause Mirror');
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Paused/);
    // A slow resync (1 MB/s, from the next resume) so Resyncing stays on screen long enough to see.
    await server.call('agentCall', 'node1', 'mirror.settings', { tag: TAG, setting: 'resyncrate', value: '1000000' });
    const exportSocket = path.join(dataDir, 'local-lab', 'node1', 'run', `${TAG}.nbd.sock`);
    const wr = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 0 12M', '-c', 'write -P 0x2d 100M 4M', nbdUri(exportSocket, TAG)]);
    expect(wr.code, wr.stderr).toBe(0);
    await w.shot('paused-after-write');
    await w.cellMenu(TAG, 'node3', 'Resume Mirror');
    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Resyncing/);
    await w.shot('resyncing');

    // In Service on a resyncing target is refused, with the manual's reason, beside the server.
    await w.cellMenu(TAG, 'node3', 'In Service…');
    d = w.dialog('In Service');
    await w.atStep(d, 'Step 1 of 2: Confirm', 'inservice-refused-confirm');
    await w.press(d, 'In Service');
    expect(await w.fieldError(d, 'Server')).toContain('manual switchover is prevented for DataKeeper resources during resynchronization');
    await w.shot('inservice-refused');
    await w.press(d, 'Cancel');

    await expect.poll(() => w.cell(TAG, 'node3').getAttribute('aria-label'), { timeout: 180_000 }).toMatch(/: Target/);
    await w.shot('resynced');
    const want = sha256File(labDisk('node1'));
    await expect.poll(() => sha256File(labDisk('node2')), { timeout: 30_000 }).toBe(want);
    await expect.poll(() => sha256File(labDisk('node3')), { timeout: 30_000 }).toBe(want);

    // ---- Switchover: In Service on node2 ----
    await w.cellMenu(TAG, 'node2', 'In Service…');
    d = w.dialog('In Service');
    await w.atStep(d, 'This is a manual switchover', 'switchover-confirm');
    await w.press(d, 'In Service');
    await w.atStep(d, 'switched over', 'switchover-done');
    await w.press(d, 'Done');
    await expect.poll(() => w.cell(TAG, 'node2').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Source/);
    await expect.poll(() => w.cell(TAG, 'node1').getAttribute('aria-label'), { timeout: 90_000 }).toMatch(/: Target/);
    await w.shot('switched-over');

    // ---- Dependencies, Out of Service / In Service: a second hierarchy on the same three servers ----
    await server.call('createHierarchy', { type: 'device', switchback: 'intelligent', server: 'node2', sourceDisk: labDisk('node2', 2), dataKeeperTag: 'datarep-two', bitmapFile: 'none', asyncReplication: false });
    await apiExtend('datarep-two', 'node1', 0);
    await apiExtend('datarep-two', 'node3', 1);
    await expect.poll(() => w.cell('datarep-two', 'node3').getAttribute('aria-label'), { timeout: 90_000 }).toMatch(/: Target/);
    await w.cellMenu('datarep-two', 'node2', 'Create Dependency…');
    d = w.dialog('Create Dependency');
    await w.atStep(d, 'Step 2 of 4: Child', 'dependency-child');
    await d.getByLabel('Child Resource Tag').selectOption(TAG);
    await w.press(d, 'Next');
    await w.atStep(d, `datarep-two will depend on ${TAG}`, 'dependency-confirm');
    await w.press(d, 'Create Dependency');
    await w.atStep(d, `datarep-two now depends on ${TAG} on every server`, 'dependency-done');
    await w.press(d, 'Done');
    await expect.poll(async () => (await server.call<ClusterView>('cluster')).resources.resources.find((r) => r.tag === 'datarep-two')?.dependsOn, { timeout: 30_000 }).toEqual([TAG]);
    // Deleting the child hierarchy would take the other mirror with it: refused, with the way out.
    await w.cellMenu(TAG, 'node2', 'Delete Resource Hierarchy…');
    d = w.dialog('Delete Resource Hierarchy');
    await w.atStep(d, 'Step 2 of 4: Hierarchy', 'delete-refused-dependency');
    expect(await d.getByRole('alert').innerText()).toBe('Correct the field marked in red to continue.');
    expect(await w.fieldError(d, 'Hierarchy to Delete')).toContain('"datarep-two" (a DataKeeper hierarchy of its own) depends on "datarep-lab"; delete that dependency first');
    await w.press(d, 'Cancel');
    await w.cellMenu('datarep-two', 'node2', 'Delete Dependency…');
    d = w.dialog('Delete Dependency');
    await w.atStep(d, 'Step 2 of 4: Child', 'delete-dependency-child');
    await w.press(d, 'Next');
    await w.press(d, 'Delete Dependency');
    await w.atStep(d, `datarep-two no longer depends on ${TAG}`, 'delete-dependency-done');
    await w.press(d, 'Done');

    await w.cellMenu('datarep-two', 'node2', 'Out of Service…');
    d = w.dialog('Out of Service');
    await w.atStep(d, 'WARNING: do not take the DataKeeper resource out of service', 'out-of-service-confirm');
    await w.press(d, 'Out of Service');
    await w.atStep(d, 'out of service on node2', 'out-of-service-done');
    await w.press(d, 'Done');
    await expect.poll(() => w.cell('datarep-two', 'node2').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/\(OS[UF]\)/);
    await w.shot('out-of-service');
    await w.cellMenu('datarep-two', 'node2', 'In Service…');
    d = w.dialog('In Service');
    await w.press(d, 'In Service');
    await w.atStep(d, 'in service on node2', 'in-service-again');
    await w.press(d, 'Done');
    await expect.poll(() => w.cell('datarep-two', 'node2').getAttribute('aria-label'), { timeout: 60_000 }).toMatch(/: Source/);
    await server.call('deleteHierarchy', 'datarep-two');

    // ---- Unextend node3: the server chosen by its column head, then Edit → Resource (the server dialog is skipped) ----
    await page.getByRole('columnheader', { name: /^Server node3/ }).click();
    await w.menu('Edit', 'Resource', 'Unextend Resource Hierarchy…');
    d = w.dialog('Unextend Resource Hierarchy');
    await w.atStep(d, 'Step 2 of 4: Hierarchy', 'unextend-hierarchy');
    expect(await d.getByLabel('DataKeeper Hierarchy to Unextend').inputValue()).toBe(TAG);
    await w.press(d, 'Next');
    await w.atStep(d, `Unextend ${TAG} from node3`, 'unextend-confirm');
    await w.press(d, 'Unextend');
    await w.atStep(d, `${TAG} was unextended from node3`, 'unextend-done');
    await w.press(d, 'Done');
    await page.getByRole('gridcell', { name: `${TAG} is not defined on node3` }).waitFor({ timeout: 60_000 });

    // Unextending where it is in service (right-click on node2, the source now) shows the server's dialog with the reason.
    await w.cellMenu(TAG, 'node2', 'Unextend Resource Hierarchy…');
    d = w.dialog('Unextend Resource Hierarchy');
    await w.atStep(d, 'Step 1 of 4: Target Server', 'unextend-refused');
    expect(await w.fieldError(d, 'Target Server')).toContain(`node2 is where "${TAG}" is in service; it cannot be unextended there`);
    await w.press(d, 'Cancel');

    // ---- Delete, from the right-click menu of the hierarchy on node1 ----
    await w.cellMenu(TAG, 'node1', 'Delete Resource Hierarchy…');
    d = w.dialog('Delete Resource Hierarchy');
    await w.atStep(d, `Delete ${TAG} from every server`, 'delete-confirm');
    await w.press(d, 'Delete');
    await w.atStep(d, `${TAG} deleted from every server`, 'delete-done');
    await w.press(d, 'Done');
    await expect.poll(() => page.getByRole('gridcell').count(), { timeout: 60_000 }).toBe(0);
    await w.shot('deleted');

    const output = await server.call<Array<{ action: string; command: string; ok: boolean }>>('output');
    expect(output.filter((e) => e.ok).map((e) => e.command)).toEqual(expect.arrayContaining([
      `tandem inservice ${TAG}`, `tandem unextend ${TAG} --target node3`, `tandem delete ${TAG}`,
    ]));
    expect(w.unnamed).toEqual([]);
    expect(problems).toEqual([]);
  }, 600_000);
});
