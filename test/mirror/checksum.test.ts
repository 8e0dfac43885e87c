// Checksum resync: a target that already holds a copy (shipped disk image, the manual's "Avoiding Full
// Resynchronizations") receives only the chunks whose hashes differ.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inSync, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, sha256File, tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const CHUNK = 64 * 1024;

describe('checksum resync', () => {
  const dir = tempDir('sum');
  const agents: Agent[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('extending to a copy sends nothing; after divergence only the differing chunks go', async () => {
    const srcDisk = path.join(dir, 'src.img');
    const tgtDisk = path.join(dir, 'tgt.img');
    makeRandomFile(srcDisk, SIZE, 77);
    fs.copyFileSync(srcDisk, tgtDisk); // the shipped image
    const src = await startAgent(path.join(dir, 'adam'), 'adam');
    const tgt = await startAgent(path.join(dir, 'eve'), 'eve');
    agents.push(src, tgt);
    await tandemOk(src, 'create', 'sum', '--disk', srcDisk);
    await tandemOk(tgt, 'accept', 'sum', '--disk', tgtDisk);
    const out = await tandemOk(src, 'extend', 'sum', '--target', 'eve', '--address', tgt.address, '--checksum');
    expect(out).toContain('a checksum resync starts now');
    const st = await waitTargets(src, 'sum', inSync);
    expect(st.targets[0]).toMatchObject({ resyncBytes: 0, checksumCompared: SIZE / CHUNK, checksumMatched: SIZE / CHUNK });
    expect(st.targets[0]!.bytesSent).toBeLessThan(64 * 1024); // requests and nothing else

    // Damage 5 chunks of the target behind the agent's back (a bad disk, a botched copy).
    await tandemOk(src, 'pause', 'sum');
    await waitTargets(src, 'sum', (t) => t.status === 'Paused');
    const fd = fs.openSync(tgtDisk, 'r+');
    for (const c of [0, 7, 100, 250, SIZE / CHUNK - 1]) fs.writeSync(fd, Buffer.alloc(100, 0xee), 0, 100, c * CHUNK + 17);
    fs.closeSync(fd);
    expect(sha256File(tgtDisk)).not.toBe(sha256File(srcDisk));
    const before = (await src.status('sum')).targets[0]!;
    await tandemOk(src, 'fullresync', 'sum', '--checksum');
    const after = await waitTargets(src, 'sum', (t) => inSync(t) && t.checksumCompared - before.checksumCompared === SIZE / CHUNK);
    const t = after.targets[0]!;
    expect(t.resyncBytes - before.resyncBytes).toBe(5 * CHUNK);
    expect(t.checksumMatched - before.checksumMatched).toBe(SIZE / CHUNK - 5);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
  });
});
