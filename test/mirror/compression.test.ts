// Network compression: agreed per connection, set with mirror_settings (effective after pause/resume),
// shown in status; the target ends byte-identical.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportUri, inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { runOk, sha256File, tempDir } from '../helpers/tools.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;

describe('compression', () => {
  const dir = tempDir('zip');
  const agents: Agent[] = [];
  afterAll(async () => {
    for (const a of agents) await a.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('compresses resync and writes of compressible data, and mirror_settings changes it at the next resume', async () => {
    const src = await startAgent(path.join(dir, 'adam'), 'adam');
    const tgt = await startAgent(path.join(dir, 'eve'), 'eve');
    agents.push(src, tgt);
    const srcDisk = makeDisk(path.join(dir, 'src.img'), SIZE);
    const tgtDisk = makeDisk(path.join(dir, 'tgt.img'), SIZE);
    // Text-like data: compresses well but is not all zeroes.
    const text = Buffer.from('Tandem mirrors block devices between Linux servers. '.repeat(2 * 20165)).subarray(0, 2 * MiB);
    fs.writeFileSync(path.join(dir, 'text'), text);
    await tandemOk(src, 'create', 'zip', '--disk', srcDisk, '--compress', '6');
    await runOk('nbdcopy', [path.join(dir, 'text'), exportUri(src, 'zip')]);
    await tandemOk(tgt, 'accept', 'zip', '--disk', tgtDisk);
    await tandemOk(src, 'extend', 'zip', '--target', 'eve', '--address', tgt.address, '--mode', 'async');
    const st = await waitTargets(src, 'zip', inSync);
    const t = st.targets[0]!;
    expect(st.compression).toBe(6);
    expect(t.compression).toBe(6);
    expect(t.resyncBytes).toBe(SIZE);
    expect(t.bytesSent).toBeLessThan(SIZE / 10); // zeroes and text shrink a lot
    expect(t.compressionRatio).toBeGreaterThan(10);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));
    const ms = await src.program('mirror_status', 'zip');
    expect(ms.stdout).toMatch(/ Compression: level 6, ratio \d+\.\d\d\n/);
    // Writes while it is on are compressed too: 1 MiB of a repeated byte costs far less on the wire.
    const sentBefore = (await src.status('zip')).targets[0]!.bytesSent;
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 6M 1M', exportUri(src, 'zip')]);
    await waitTargets(src, 'zip', (x) => inSync(x) && x.queueDepth === 0);
    const sentForWrite = (await src.status('zip')).targets[0]!.bytesSent - sentBefore;
    expect(sentForWrite).toBeGreaterThan(0);
    expect(sentForWrite).toBeLessThan(MiB / 10);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));

    // Turn it off: stored now, used from the next connection.
    const set = await src.program('mirror_settings', 'zip', 'compress', '0');
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('takes effect at the next pause and resume');
    expect((await src.status('zip')).targets[0]!.compression).toBe(6);
    await tandemOk(src, 'pause', 'zip');
    await tandemOk(src, 'resume', 'zip');
    await waitTargets(src, 'zip', (x) => inSync(x) && x.compression === 0);
    const before = (await src.status('zip')).targets[0]!.bytesSent;
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x41 4M 1M', exportUri(src, 'zip')]);
    await waitTargets(src, 'zip', (x) => inSync(x) && x.queueDepth === 0);
    expect((await src.status('zip')).targets[0]!.bytesSent - before).toBeGreaterThanOrEqual(MiB);
    expect(sha256File(tgtDisk)).toBe(sha256File(srcDisk));

    const bad = await src.program('mirror_settings', 'zip', 'compress', '12');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('compress takes a level from 0 (off) to 9 (best)');
    const rewind = await src.program('mirror_settings', 'zip', 'logdir', '/tmp/logs');
    expect(rewind.stdout).toBe('zip: logdir set to /tmp/logs; takes effect at the next pause and resume\n');
    expect((await src.status('zip')).rewindLog).toEqual({ dir: '/tmp/logs', maxBytes: 0 });
  });
});
