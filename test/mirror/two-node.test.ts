// A two-node mirror driven through the real CLIs: initial full resync, synchronous writes, a lost
// target and its partial resync, pause/resume, full resync on demand, and the manual's CLIs.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportUri, inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, run, runOk, sha256File, tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const CHUNK = 64 * 1024;

describe('two-node mirror (adam -> eve)', () => {
  const dir = tempDir('two');
  let adam: Agent;
  let eve: Agent;
  const srcDisk = path.join(dir, 'adam.img');
  const tgtDisk = path.join(dir, 'eve.img');
  const tag = 'datarep-ext3';

  beforeAll(async () => {
    makeDisk(srcDisk, SIZE);
    makeDisk(tgtDisk, SIZE);
    adam = await startAgent(path.join(dir, 'adam'), 'adam');
    eve = await startAgent(path.join(dir, 'eve'), 'eve');
  });
  afterAll(async () => {
    await adam?.stop();
    await eve?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the mirror on adam and fills it through its NBD export before any target exists', async () => {
    const out = await tandemOk(adam, 'create', tag, '--disk', srcDisk);
    expect(out).toContain(`created mirror ${tag}`);
    const src = path.join(dir, 'data.bin');
    makeRandomFile(src, 32 * MiB, 3);
    await runOk('nbdcopy', [src, exportUri(adam, tag)]);
    expect(fs.readFileSync(srcDisk).subarray(0, 32 * MiB).equals(fs.readFileSync(src))).toBe(true);
  });

  it('extends to eve: a full resync makes the disks identical', async () => {
    await tandemOk(eve, 'accept', tag, '--disk', tgtDisk);
    await tandemOk(adam, 'extend', tag, '--target', 'eve', '--address', eve.address, '--mode', 'sync');
    const st = await waitTargets(adam, tag, inSync);
    expect(st.targets[0]).toMatchObject({ node: 'eve', mode: 'sync', status: 'Fully Operational', percentSynced: 100 });
    expect(st.targets[0]!.resyncBytes).toBe(SIZE);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('a synchronous write is on the target when the client sees it acknowledged', async () => {
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x71 5M 3M', '-c', 'write -P 0x72 40M 4k', exportUri(adam, tag)]);
    // No waiting: the acknowledgement already implied eve applied and flushed it.
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('loses eve (kill -9), keeps serving, tracks the changes, and resyncs only those chunks', async () => {
    await eve.kill9();
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x81 10M 128k', '-c', 'write -P 0x82 30M 4k', '-c', 'write -P 0x83 63M 1M', exportUri(adam, tag)]);
    const dirtyChunks = 2 + 1 + 16;
    const down = await waitTargets(adam, tag, (t) => t.status === 'Out Of Sync' && t.dirtyChunks === dirtyChunks, 10_000);
    expect(down.targets[0]!.lastError).toMatch(/eve at 127\.0\.0\.1/);
    const before = down.targets[0]!.resyncBytes;
    eve = await startAgent(eve.home, 'eve', eve.port);
    const up = await waitTargets(adam, tag, inSync);
    const sent = up.targets[0]!.resyncBytes - before;
    expect(sent).toBe(dirtyChunks * CHUNK);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('pause stops replication and tracks writes; resume resyncs them', async () => {
    const p = await tandemOk(adam, 'pause', tag);
    expect(p).toContain('eve');
    await waitTargets(adam, tag, (t) => t.status === 'Paused', 10_000);
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x91 20M 256k', exportUri(adam, tag)]);
    expect(sha256File(tgtDisk)).not.toBe(sha256File(srcDisk));
    const paused = await adam.status(tag);
    expect(paused.targets[0]!.dirtyChunks).toBe(4);
    // While paused, eve's copy is readable, read-only, through its own NBD export.
    const view = (await eve.status(tag)).exportSocket;
    expect(view).toBe(path.join(eve.home, 'run', `${tag}.target.nbd.sock`));
    const info = JSON.parse(await runOk('nbdinfo', ['--json', `nbd+unix:///${tag}?socket=${view}`])).exports[0];
    expect(info).toMatchObject({ is_read_only: true, 'export-size': SIZE });
    const copy = path.join(dir, 'view.img');
    await runOk('nbdcopy', [`nbd+unix:///${tag}?socket=${view}`, copy]);
    expect(sha256File(copy)).toBe(sha256File(tgtDisk));
    const write = await run('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', `nbd+unix:///${tag}?socket=${view}`]);
    expect(write.code).not.toBe(0);
    const before = paused.targets[0]!.resyncBytes;
    await tandemOk(adam, 'resume', tag);
    const st = await waitTargets(adam, tag, inSync);
    expect(st.targets[0]!.resyncBytes - before).toBe(4 * CHUNK);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
    expect((await eve.status(tag)).exportSocket).toBeNull(); // closed while a source writes into it
    expect(fs.existsSync(path.join(eve.home, 'run', `${tag}.target.nbd.sock`))).toBe(false);
  });

  it('mirror_status prints the manual\'s format; mirror_action takes the manual\'s syntax', async () => {
    const s = await adam.program('mirror_status', tag);
    expect(s.code).toBe(0);
    expect(s.stdout).toBe(`[-] adam -> eve\n Status: Fully Operational\n Type: Synchronous\nBitmap: ${SIZE / CHUNK} bits (chunks), 0 dirty (0.0%)\n`);
    const pause = await adam.program('mirror_action', tag, 'pause', 'adam', 'eve');
    expect(pause.code, pause.stderr).toBe(0);
    expect((await adam.program('mirror_status', tag)).stdout).toContain(' Status: Paused\n');
    const wrong = await adam.program('mirror_action', tag, 'resume', 'eve', 'adam');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('run mirror_action on the source node (eve)');
    expect((await adam.program('mirror_action', tag, 'resume', 'adam', 'eve')).code).toBe(0);
    await waitTargets(adam, tag, inSync);
  });

  it('fullresync sends every chunk again and the disks stay identical', async () => {
    const before = (await adam.status(tag)).targets[0]!.resyncBytes;
    expect((await adam.program('mirror_action', tag, 'fullresync', 'adam', 'eve')).code).toBe(0);
    const st = await waitTargets(adam, tag, (t) => inSync(t) && t.resyncBytes - before === SIZE);
    expect(st.targets[0]!.resyncBytes - before).toBe(SIZE);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('waitsync returns once the target is Fully Operational after a resync, and says why when it cannot', async () => {
    const before = (await adam.status(tag)).targets[0]!.resyncBytes;
    await tandemOk(adam, 'fullresync', tag);
    const out = await tandemOk(adam, 'waitsync', tag, '--timeout', '60');
    expect(out).toMatch(new RegExp(`^${tag}: eve in sync \\(waited \\d+\\.\\d s\\)\n$`));
    // Returned only once the whole volume was resent and acknowledged: no polling needed.
    const st = await adam.status(tag);
    expect(st.targets[0]).toMatchObject({ status: 'Fully Operational', dirtyChunks: 0 });
    expect(st.targets[0]!.resyncBytes - before).toBe(SIZE);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));

    await tandemOk(adam, 'pause', tag);
    const paused = await adam.tandem('waitsync', tag);
    expect(paused.code).toBe(1);
    expect(paused.stderr).toContain(`eve is paused and will not resync until resumed: tandem resume ${tag} eve`);
    await tandemOk(adam, 'resume', tag);
    await tandemOk(adam, 'waitsync', tag);

    await eve.kill9();
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x71 0 4k', exportUri(adam, tag)]);
    const late = await adam.tandem('waitsync', tag, '--timeout', '1');
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(new RegExp(`${tag} is not in sync after 1 s: eve Out Of Sync \\(.*eve at 127\\.0\\.0\\.1`));
    const bad = await adam.tandem('waitsync', tag, '--timeout', 'soon');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--timeout takes whole seconds from 1 to 86400, not "soon"');
    eve = await startAgent(eve.home, 'eve', eve.port);
    await tandemOk(adam, 'waitsync', tag, '--timeout', '60');
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('survives a restart of the source agent: the mirror, its export and its target come back', async () => {
    expect(await adam.stop()).toBe(0);
    adam = await startAgent(adam.home, 'adam', adam.port);
    await waitTargets(adam, tag, inSync);
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0xa1 1M 64k', exportUri(adam, tag)]);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });
});
