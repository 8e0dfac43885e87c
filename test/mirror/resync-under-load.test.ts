// Resync while applications write: chunks being resynced are locked against writes, chunks not yet
// resynced keep their bit through writes, so the disks end identical whatever the interleaving.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportUri, inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, runOk, sha256File, tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;

/** A few hundred 4 KiB writes at random places: each touches a small part of one chunk. */
function fioSprinkle(uri: string, count: number, seed: number): Promise<string> {
  return runOk('fio', [
    '--name=sprinkle', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=8', '--norandommap',
    `--size=${SIZE}`, `--number_ios=${count}`, `--randseed=${seed}`, '--output-format=terse',
  ], { timeoutMs: 120_000 });
}

function fioLoad(uri: string, seconds: number, seed: number): Promise<string> {
  return runOk('fio', [
    '--name=load', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bsrange=512-128k', '--iodepth=16',
    `--size=${SIZE}`, '--time_based', `--runtime=${seconds}`, `--randseed=${seed}`, '--output-format=terse',
  ], { timeoutMs: 120_000 });
}

describe('resync under application writes', () => {
  const dir = tempDir('load');
  const agents: Agent[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('full resync, then a partial one after losing the target, both with random writes running: disks identical', async () => {
    const srcDisk = path.join(dir, 'src.img');
    makeRandomFile(srcDisk, SIZE, 5);
    const tgtDisk = makeDisk(path.join(dir, 'tgt.img'), SIZE);
    const src = await startAgent(path.join(dir, 'adam'), 'adam');
    let tgt = await startAgent(path.join(dir, 'eve'), 'eve');
    agents.push(src);
    // Slow the resync down (16 MiB/s) so that it overlaps the writes for several seconds.
    await tandemOk(src, 'create', 'busy', '--disk', srcDisk, '--resync-rate', String(16 * MiB));
    await tandemOk(tgt, 'accept', 'busy', '--disk', tgtDisk);
    let loadDone = false;
    const load = fioLoad(exportUri(src, 'busy'), 5, 1).finally(() => (loadDone = true));
    await tandemOk(src, 'extend', 'busy', '--target', 'eve', '--address', tgt.address, '--mode', 'async');
    // The resync and the writes overlap: the target is seen Resyncing, part done, while fio still writes.
    await waitTargets(src, 'busy', (t) => t.status === 'Resyncing' && t.resyncBytes > 0, 30_000);
    expect(loadDone, 'fio finished before the resync was seen under way').toBe(false);
    await load;
    await waitTargets(src, 'busy', (t) => inSync(t) && t.queueDepth === 0, 90_000);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));

    // Lose the target, write, bring it back while writing again.
    await tgt.kill9();
    await fioLoad(exportUri(src, 'busy'), 1, 2);
    const load2 = fioLoad(exportUri(src, 'busy'), 3, 3);
    tgt = await startAgent(tgt.home, 'eve', tgt.port);
    agents.push(tgt);
    await load2;
    await waitTargets(src, 'busy', (t) => inSync(t) && t.queueDepth === 0, 90_000);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });

  it('a resync cut short by losing the target, with writes landing in chunks it had not reached yet, finishes right', async () => {
    const src = agents[0]!;
    let tgt = agents[agents.length - 1]!;
    const tgtDisk = path.join(dir, 'tgt.img');
    const srcDisk = path.join(dir, 'src.img');
    await tandemOk(src, 'pause', 'busy');
    await fioLoad(exportUri(src, 'busy'), 2, 4); // every chunk dirty, the target stale everywhere
    await tandemOk(src, 'resume', 'busy');
    // Partial writes into chunks the resync has not reached yet, acknowledged by the target…
    await fioSprinkle(exportUri(src, 'busy'), 300, 5);
    // …then the target dies before the resync gets to them, and nothing else is written.
    expect((await src.status('busy')).targets[0]!.status).toBe('Resyncing');
    await tgt.kill9();
    tgt = await startAgent(tgt.home, 'eve', tgt.port);
    agents.push(tgt);
    await waitTargets(src, 'busy', (t) => inSync(t) && t.queueDepth === 0, 90_000);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });
});
