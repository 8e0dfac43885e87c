// The manual's maximum: one source, seven targets on seven nodes, mixed synchronous and asynchronous.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportUri, inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, runOk, sha256File, tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

describe('seven targets', () => {
  const dir = tempDir('seven');
  const agents: Agent[] = [];
  const disks: string[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replicates to 7 targets at once; an eighth is refused; one paused and resumed catches up', async () => {
    for (let i = 0; i < 8; i++) {
      disks.push(makeDisk(path.join(dir, `n${i}.img`), SIZE));
      agents.push(await startAgent(path.join(dir, `n${i}`), `node${i}`));
    }
    const [src, ...targets] = agents as [Agent, ...Agent[]];
    await tandemOk(src, 'create', 'wide', '--disk', disks[0]!);
    makeRandomFile(path.join(dir, 'data'), 8 * MiB, 21);
    await runOk('nbdcopy', [path.join(dir, 'data'), exportUri(src, 'wide')]);
    for (const [i, t] of targets.entries()) {
      await tandemOk(t, 'accept', 'wide', '--disk', disks[i + 1]!);
      await tandemOk(src, 'extend', 'wide', '--target', t.node, '--address', t.address, '--mode', i % 2 ? 'async' : 'sync');
    }
    const extra = makeDisk(path.join(dir, 'extra.img'), SIZE);
    const eighth = await startAgent(path.join(dir, 'extra'), 'node8');
    agents.push(eighth);
    await tandemOk(eighth, 'accept', 'wide', '--disk', extra);
    const refused = await src.tandem('extend', 'wide', '--target', 'node8', '--address', eighth.address);
    expect(refused.stderr).toContain('already has 7 targets, the maximum');

    const st = await waitTargets(src, 'wide', inSync, 90_000);
    expect(st.targets.map((t) => t.mode)).toEqual(['sync', 'async', 'sync', 'async', 'sync', 'async', 'sync']);
    const want = sha256File(disks[0]!);
    for (const d of disks.slice(1)) expect(sha256File(d)).toBe(want);

    await tandemOk(src, 'pause', 'wide', 'node3');
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x3c 2M 1M', '-c', 'write -P 0x3d 12M 64k', exportUri(src, 'wide')]);
    const paused = await src.status('wide');
    expect(paused.targets.find((t) => t.node === 'node3')).toMatchObject({ status: 'Paused', dirtyChunks: 17 });
    expect(sha256File(disks[3]!)).not.toBe(sha256File(disks[0]!));
    await tandemOk(src, 'resume', 'wide', 'node3');
    await waitTargets(src, 'wide', inSync, 60_000);
    const now = sha256File(disks[0]!);
    for (const d of disks.slice(1)) expect(sha256File(d)).toBe(now);
  });
});
