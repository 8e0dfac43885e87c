// The export against real NBD clients: libnbd's nbdinfo and nbdcopy, qemu-io, fio's nbd engine.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRandomFile, runOk, sha256, sha256File, startExport, tempDir, type RunningExport } from '../helpers/tools.js';

const MiB = 1024 * 1024;

describe('real NBD clients', () => {
  let dir: string;
  let disk: string;
  let exp: RunningExport;

  beforeAll(async () => {
    dir = tempDir('clients');
    disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 64 * MiB);
    exp = await startExport({ file: disk, socket: path.join(dir, 'nbd.sock'), name: 'disk1' });
  });

  afterAll(async () => {
    expect(await exp.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('nbdinfo reports the size, the flags and the block sizes', async () => {
    const info = JSON.parse(await runOk('nbdinfo', ['--json', exp.uri]));
    const e = info.exports[0];
    expect(info.protocol).toBe('newstyle-fixed');
    expect(e['export-name']).toBe('disk1');
    expect(e['export-size']).toBe(64 * MiB);
    expect(e).toMatchObject({
      is_read_only: false, can_flush: true, can_fua: true, can_trim: true, can_zero: true,
      can_fast_zero: true, can_multi_conn: true, can_df: false,
      block_size_minimum: 1, block_size_preferred: 4096, block_size_maximum: 32 * MiB,
    });
  });

  it('nbdinfo --list shows the export by name with its description', async () => {
    const out = await runOk('nbdinfo', ['--list', exp.uri]);
    expect(out).toContain('export="disk1"');
    expect(out).toContain(`description: Tandem export of ${disk}`);
  });

  it('qemu-io writes patterns at many offsets and sizes and reads every one back', async () => {
    const cases: Array<[number, number]> = [
      [0, 512], [512, 4096], [5001, 1], [8191, 2], [65537, 70000], [MiB - 7, 15], [3 * MiB + 123, MiB + 333],
      [10 * MiB, 4 * MiB], [64 * MiB - 4096, 4096], [32 * MiB + 1, 31],
    ];
    const cmds: string[] = [];
    cases.forEach(([off, len], i) => cmds.push('-c', `write -P ${0x11 + i} ${off} ${len}`));
    cases.forEach(([off, len], i) => cmds.push('-c', `read -P ${0x11 + i} ${off} ${len}`));
    const out = await runOk('qemu-io', ['-f', 'raw', ...cmds, exp.uri]);
    expect(out).not.toMatch(/Pattern verification failed|error|failed/i);
    expect(out.match(/^read /gm)?.length).toBe(cases.length);
    // And the bytes really are in the backing file, where qemu-io said.
    const fd = fs.openSync(disk, 'r');
    cases.forEach(([off, len], i) => {
      const b = Buffer.alloc(len);
      fs.readSync(fd, b, 0, len, off);
      expect(b.every((x) => x === 0x11 + i)).toBe(true);
    });
    fs.closeSync(fd);
  });

  it('qemu-io zeroes (with and without holes), discards and flushes', async () => {
    const out = await runOk('qemu-io', ['-f', 'raw',
      '-c', 'write -P 0x5a 40M 8M', '-c', 'write -z 40M 1M', '-c', 'write -z -u 42M 6M', '-c', 'flush',
      '-c', 'read -P 0 40M 1M', '-c', 'read -P 0x5a 41M 1M', '-c', 'read -P 0 42M 6M',
      '-c', 'write -P 0x33 50M 1M', '-c', 'discard 50M 1M', '-c', 'write -P 0x44 50M 4k', '-c', 'read -P 0x44 50M 4k',
      exp.uri]);
    expect(out).not.toMatch(/verification failed|error/i);
  });

  it('nbdcopy copies 48 MiB in and out over several connections with equal sha256', async () => {
    const src = path.join(dir, 'src.img');
    const back = path.join(dir, 'back.img');
    const data = makeRandomFile(src, 48 * MiB, 7);
    await runOk('nbdcopy', ['--connections=4', '--requests=32', src, exp.uri]);
    await runOk('nbdcopy', [exp.uri, back]);
    const copy = fs.readFileSync(back);
    expect(sha256(copy.subarray(0, 48 * MiB))).toBe(sha256(data));
    expect(sha256(fs.readFileSync(disk).subarray(0, 48 * MiB))).toBe(sha256(data));
    expect(sha256File(back)).toBe(sha256File(disk));
  });

  it('fio (nbd engine) random writes verify with crc32c at queue depth 32', async () => {
    const out = await runOk('fio', [
      '--name=verify', '--ioengine=nbd', `--uri=${exp.uri}`, '--rw=randwrite', '--bs=4k', '--bsrange=512-128k',
      '--iodepth=32', '--size=32M', '--offset=16M', '--verify=crc32c', '--verify_fatal=1', '--do_verify=1',
      '--verify_state_save=0', // fio would otherwise leave a state file in the working directory
      '--output-format=json',
    ], { timeoutMs: 180_000 });
    const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
    expect(job.error).toBe(0);
    expect(job.write.io_bytes).toBeGreaterThanOrEqual(32 * MiB);
    expect(job.read.io_bytes).toBeGreaterThanOrEqual(32 * MiB); // the verify pass read everything back
  });
});
