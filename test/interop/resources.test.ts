// Resource creation's node-side steps on real loop devices, ext4 and mounts (needs root): which disks
// are offered and why not, attaching an export as a block device, and taking over an existing
// mounted file system. Every loop device, mount, swap and child is released even if a test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bringUpResource, gatherHierarchyContext, HierarchyValidationError, planResource } from '../../agent/resources/create-resource.js';
import { attachExport, AttachError, type AttachedDevice } from '../../agent/resources/device-attach.js';
import { listDisks } from '../../agent/resources/eligible-disks.js';
import {
  BusyError, describeExisting, findMount, makeFileSystem, mountFileSystem, takeOverExisting, unmountFileSystem,
} from '../../agent/resources/filesystem.js';
import { MissingToolError } from '../../agent/resources/system-tools.js';
import { startAgent, tandemOk, type Agent } from '../helpers/agents.js';
import { run, runOk, sha256, sha256File, startExport, tempDir, type RunningExport } from '../helpers/tools.js';

const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

describe.skipIf(!isRoot)('resources on a node (needs root)', () => {
  const dir = tempDir('res');
  const loops: string[] = [];
  const mounts: string[] = [];
  const swaps: string[] = [];
  const exports: RunningExport[] = [];
  const attached: AttachedDevice[] = [];
  const children: ChildProcess[] = [];
  const agents: Agent[] = [];

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const m of mounts.reverse()) if (findMount(m)) await run('umount', ['-l', m]);
    for (const a of attached) await a.detach().catch(() => undefined);
    for (const e of exports) await e.stop();
    for (const a of agents) await a.stop();
    for (const s of swaps) await run('swapoff', [s]);
    for (const l of loops) await run('losetup', ['-d', l]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function loop(name: string, size: number): Promise<string> {
    const file = path.join(dir, name);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, size);
    const device = (await runOk('losetup', ['--find', '--show', file])).trim();
    loops.push(device);
    return device;
  }

  async function mount(device: string, at: string): Promise<void> {
    mounts.push(at);
    await mountFileSystem(device, at);
  }

  /** Writes files of assorted sizes under `root`; returns name → sha256. */
  function writeFiles(root: string): Map<string, string> {
    const written = new Map<string, string>();
    fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
    for (const [i, size] of [0, 1, 4095, 65537, 3 * MiB].entries()) {
      const name = i % 2 ? `docs/f${i}.bin` : `f${i}.bin`;
      const data = crypto.randomBytes(size);
      fs.writeFileSync(path.join(root, name), data);
      written.set(name, sha256(data));
    }
    return written;
  }

  const expectFiles = (root: string, written: Map<string, string>) => {
    for (const [name, hash] of written) expect(sha256File(path.join(root, name)), name).toBe(hash);
  };

  it('lists loop devices: the free one eligible, the mounted, swap and protected ones with their reasons', async () => {
    const free = await loop('free.img', 64 * MiB);
    const mounted = await loop('mounted.img', 64 * MiB);
    const swap = await loop('swap.img', 64 * MiB);
    const guarded = await loop('guarded.img', 64 * MiB);
    await makeFileSystem(mounted, 'ext4');
    const mnt = path.join(dir, 'mounted');
    await mount(mounted, mnt);
    await runOk('mkswap', [swap]);
    swaps.push(swap);
    await runOk('swapon', [swap]);

    const { disks, fileSystems } = await listDisks({ protectedDevices: new Set([guarded]) });
    const get = (p: string) => disks.find((d) => d.path === p);
    expect(get(free)).toEqual({ path: free, name: path.basename(free), kind: 'loop', size: 64 * MiB, fstype: null, eligible: true, reasons: [] });
    expect(get(mounted)).toMatchObject({ fstype: 'ext4', eligible: false, reasons: [`mounted at ${mnt}`] });
    expect(get(swap)).toMatchObject({ fstype: 'swap', eligible: false, reasons: ['in use as swap'] });
    expect(get(guarded)).toMatchObject({ eligible: false, reasons: ['already protected by Tandem (a mirror, target or NetRAID device)'] });
    expect(fileSystems.find((f) => f.mountPoint === mnt)).toEqual({ mountPoint: mnt, device: mounted, fstype: 'ext4', eligible: true, reasons: [] });
    const root = findMount('/');
    if (root?.source.startsWith('/dev/')) {
      expect(fileSystems.find((f) => f.mountPoint === '/')).toMatchObject({ eligible: false, reasons: expect.arrayContaining(['a system file system (/)']) });
      expect(disks.some((d) => d.reasons.includes("holds the system's /"))).toBe(true);
    }

    // As a target for a 65 MiB source, the free 64 MiB device is too small.
    const forTarget = await listDisks({ protectedDevices: new Set(), minSize: 65 * MiB });
    expect(forTarget.disks.find((d) => d.path === free)!.reasons).toEqual([`smaller than the source (${64 * MiB} < ${65 * MiB} bytes)`]);

    await runOk('swapoff', [swap]);
    swaps.splice(swaps.indexOf(swap), 1);
  });

  it('Replicate New File System: attach an export, mkfs.ext4, mount, write; detach, re-attach: files intact', async () => {
    const disk = path.join(dir, 'new.img');
    fs.writeFileSync(disk, '');
    fs.truncateSync(disk, 128 * MiB);
    const socket = path.join(dir, 'new.sock');
    const exp = await startExport({ file: disk, socket, name: 'datarep-ext4-new' });
    exports.push(exp);
    let dev = await attachExport({ socket, exportName: 'datarep-ext4-new', workDir: path.join(dir, 'attach-new') });
    attached.push(dev);
    expect(dev.device).toMatch(/^\/dev\/(loop|nbd)\d+$/);
    await makeFileSystem(dev.device, 'ext4');
    const mnt = path.join(dir, 'new');
    await mount(dev.device, mnt);
    await expect(mountFileSystem(dev.device, mnt)).rejects.toThrow(`${mnt} is already a mount point (of ${dev.device}); unmount it or choose another mount point`);
    const written = writeFiles(mnt);
    await expect(dev.detach()).rejects.toThrow(`${dev.device} is mounted at ${mnt}; unmount it before detaching`);
    await unmountFileSystem(mnt);
    await dev.detach();
    await dev.detach(); // idempotent

    dev = await attachExport({ socket, exportName: 'datarep-ext4-new', workDir: path.join(dir, 'attach-new') });
    attached.push(dev);
    const fsck = await run('e2fsck', ['-fn', dev.device]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    await mountFileSystem(dev.device, mnt);
    expectFiles(mnt, written);
    await unmountFileSystem(mnt);
    await dev.detach();
  });

  it('Replicate Existing File System: refuses while busy, then unmounts it and serves the same disk at the same mount point', async () => {
    const device = await loop('existing.img', 96 * MiB);
    await makeFileSystem(device, 'ext4');
    const mnt = path.join(dir, 'existing');
    await mount(device, mnt);
    const written = writeFiles(mnt);
    expect(describeExisting(mnt)).toMatchObject({ mountPoint: mnt, device, fstype: 'ext4' });

    // A process working in the file system keeps it busy: named, and nothing is unmounted.
    const busy = spawn('sleep', ['60'], { cwd: mnt, stdio: 'ignore' });
    children.push(busy);
    await new Promise((r) => setTimeout(r, 200));
    await expect(takeOverExisting(mnt)).rejects.toThrow(new BusyError(`${mnt} is busy: used by sleep (pid ${busy.pid}); stop them and try again`));
    expect(findMount(mnt)?.source).toBe(device);
    busy.kill('SIGKILL');
    await new Promise((r) => busy.once('exit', r));

    const taken = await takeOverExisting(mnt);
    expect(taken).toMatchObject({ mountPoint: mnt, device, fstype: 'ext4' });
    expect(findMount(mnt)).toBeNull();

    // The mirror's export serves the same disk; mounted through it at the same place: the same files.
    const socket = path.join(dir, 'existing.sock');
    exports.push(await startExport({ file: device, socket, name: 'datarep-ext4-existing' }));
    const dev = await attachExport({ socket, exportName: 'datarep-ext4-existing', workDir: path.join(dir, 'attach-existing') });
    attached.push(dev);
    await mountFileSystem(dev.device, mnt, { fstype: taken.fstype });
    expect(findMount(mnt)?.source).toBe(dev.device);
    expectFiles(mnt, written);
    await unmountFileSystem(mnt);
    await dev.detach();
  });

  it('errors name the missing tool and its package, a missing export, and a mount point with nothing on it', async () => {
    const socket = path.join(dir, 'errors.sock');
    const img = path.join(dir, 'errors.img');
    fs.writeFileSync(img, Buffer.alloc(MiB));
    exports.push(await startExport({ file: img, socket, name: 'e' }));
    const savedPath = process.env.PATH;
    try {
      process.env.PATH = '/nonexistent';
      await expect(attachExport({ socket, exportName: 'e', workDir: path.join(dir, 'attach-e'), method: 'nbdfuse' })).rejects.toThrow(
        new MissingToolError('nbdfuse', 'attach the export without the kernel NBD driver'),
      );
      await expect(makeFileSystem('/dev/null', 'ext4')).rejects.toThrow('mkfs.ext4 is not installed (needed to make an ext4 file system on /dev/null); install it: apt-get install e2fsprogs');
    } finally {
      process.env.PATH = savedPath;
    }
    const nowhere = path.join(dir, 'nowhere.sock');
    await expect(attachExport({ socket: nowhere, exportName: 'datarep-x', workDir: path.join(dir, 'attach-x') })).rejects.toThrow(
      new AttachError(`no NBD export at ${nowhere} (nothing there): is mirror datarep-x created and its agent running? (tandem status)`),
    );
    await expect(attachExport({ socket: img, exportName: 'e', workDir: path.join(dir, 'attach-x') })).rejects.toThrow(`${img} is not a socket`);
    await expect(attachExport({ socket, exportName: 'wrong-name', workDir: path.join(dir, 'attach-w'), method: 'nbdfuse' })).rejects.toThrow(/nbdfuse could not attach .* \(export wrong-name\)/);
    await expect(takeOverExisting(path.join(dir, 'empty-dir'))).rejects.toThrow(`nothing is mounted at ${path.join(dir, 'empty-dir')}`);
  });

  it('creates each type against a running agent: plan, mirror.create, bring up', async () => {
    const agent = await startAgent(path.join(dir, 'agent'), 'adam');
    agents.push(agent);
    const common = { switchback: 'intelligent', server: 'adam', bitmapFile: 'none', asyncReplication: false } as const;
    const socketOf = (tag: string) => path.join(agent.home, 'run', `${tag}.nbd.sock`);

    // Replicate Existing File System: the files survive, now under the NetRAID device.
    const disk = await loop('flow-existing.img', 64 * MiB);
    await makeFileSystem(disk, 'ext4');
    const mnt = path.join(dir, 'flow-existing');
    await mount(disk, mnt);
    const written = writeFiles(mnt);
    let ctx = await gatherHierarchyContext({ node: 'adam', tagsInUse: [], protectedDevices: new Set() });
    const existing = await planResource({ ...common, type: 'existing', mountPoint: mnt, dataKeeperTag: 'datarep-ext4-flow', fileSystemTag: 'ext4-flow' }, ctx);
    expect(existing).toMatchObject({ disk, mountPoint: mnt, fstype: 'ext4' });
    await tandemOk(agent, 'create', existing.tag, '--disk', existing.disk, '--bitmap', existing.bitmapFile);
    const up = await bringUpResource(existing, { socket: socketOf(existing.tag), workDir: path.join(dir, 'attach-flow-existing') });
    attached.push(up.attached);
    expect(findMount(mnt)?.source).toBe(up.device);
    expectFiles(mnt, written);
    await up.takeDown();
    expect(findMount(mnt)).toBeNull();

    // Replicate New File System on a free disk; the disk in use by the first mirror is refused.
    const fresh = await loop('flow-new.img', 64 * MiB);
    ctx = await gatherHierarchyContext({ node: 'adam', tagsInUse: ['datarep-ext4-flow', 'ext4-flow'], protectedDevices: new Set([disk]) });
    await expect(planResource({ ...common, type: 'new', sourceDisk: disk, mountPoint: path.join(dir, 'n'), fileSystemType: 'ext4', dataKeeperTag: 'datarep-ext4-flow', fileSystemTag: 'ext4-n' }, ctx))
      .rejects.toThrow(new HierarchyValidationError([
        { field: 'sourceDisk', message: `${disk} cannot be used: already protected by Tandem (a mirror, target or NetRAID device)` },
        { field: 'dataKeeperTag', message: 'DataKeeper Resource Tag "datarep-ext4-flow" is already in use on adam; choose a unique tag' },
      ]));
    const newMnt = path.join(dir, 'flow-new');
    const plan = await planResource({ ...common, type: 'new', sourceDisk: fresh, mountPoint: newMnt, fileSystemType: 'ext4', dataKeeperTag: 'datarep-ext4-new2', fileSystemTag: 'ext4-new2' }, ctx);
    await tandemOk(agent, 'create', plan.tag, '--disk', plan.disk, '--bitmap', plan.bitmapFile);
    mounts.push(newMnt);
    const upNew = await bringUpResource(plan, { socket: socketOf(plan.tag), workDir: path.join(dir, 'attach-flow-new') });
    attached.push(upNew.attached);
    expect(findMount(newMnt)).toMatchObject({ source: upNew.device, fstype: 'ext4' });
    await upNew.takeDown();
  });
});
