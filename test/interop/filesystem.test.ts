// The NetRAID use case: attach the export as a block device, mkfs.ext4, mount, write files, and find
// them intact after unmounting, detaching and restarting the export.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attachExport, type Attached } from '../helpers/attach.js';
import { run, runOk, sha256, sha256File, startExport, tempDir, type RunningExport } from '../helpers/tools.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('ext4 on the export through nbdfuse + losetup (needs root)', () => {
  const dir = tempDir('fs');
  const disk = path.join(dir, 'disk.img');
  const mnt = path.join(dir, 'mnt');
  const socket = path.join(dir, 'nbd.sock');
  let exp: RunningExport | undefined;
  let attached: Attached | undefined;
  const written = new Map<string, string>();

  afterAll(async () => {
    await run('umount', [mnt]);
    await attached?.detach();
    await exp?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('mkfs.ext4, mount, write files, unmount', async () => {
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 256 * 1024 * 1024);
    fs.mkdirSync(mnt);
    exp = await startExport({ file: disk, socket });
    attached = await attachExport(socket, dir);
    expect(attached.device).toMatch(/^\/dev\/loop\d+$/);
    await runOk('mkfs.ext4', ['-q', '-F', attached.device], { timeoutMs: 180_000 });
    await runOk('mount', [attached.device, mnt]);
    fs.mkdirSync(path.join(mnt, 'docs'));
    const sizes = [0, 1, 4095, 4096, 65537, 1 << 20, 8 << 20];
    for (const [i, size] of sizes.entries()) {
      const name = i % 2 ? `docs/file-${i}.bin` : `file-${i}.bin`;
      const data = crypto.randomBytes(size);
      fs.writeFileSync(path.join(mnt, name), data);
      written.set(name, sha256(data));
    }
    await runOk('sync', []);
    await runOk('umount', [mnt]);
  });

  it('after detaching and restarting the export, the file system is clean and every file intact', async () => {
    await attached!.detach();
    attached = undefined;
    expect(await exp!.stop()).toBe(0);
    expect(fs.existsSync(socket)).toBe(false); // removed on a clean stop
    exp = await startExport({ file: disk, socket });
    attached = await attachExport(socket, dir);
    const fsck = await run('e2fsck', ['-fn', attached.device]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    await runOk('mount', [attached.device, mnt]);
    for (const [name, hash] of written) expect(sha256File(path.join(mnt, name)), name).toBe(hash);
    await runOk('umount', [mnt]);
  });
});
