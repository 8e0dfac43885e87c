// Replicate Existing File System on real ext4 over loop devices: after creation the same files are on
// the mirror device, mounted where the file system was; after a switchover they are on the other node,
// mounted there; the manual's eligible-disk filters through the control socket.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { callAgent } from '../../agent/control/json-rpc.js';
import { findMount } from '../../agent/resources/filesystem.js';
import type { DiskCandidate } from '../../common/hierarchy.js';
import { inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { runOk, sha256, tempDir } from '../helpers/tools.js';

const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;

describe.skipIf(!isRoot)('file system resources (needs root)', () => {
  const loops: string[] = [];
  const agents: Agent[] = [];
  let dir = '';
  afterAll(async () => {
    for (const a of agents) await a.stop(); // SIGTERM: the agent unmounts and detaches what it mounted
    const mnt = path.join(dir, 'sdr');
    if (dir && findMount(mnt)) await runOk('umount', [mnt]).catch(() => undefined);
    for (const l of loops) await runOk('losetup', ['-d', l]).catch(() => undefined);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Replicate Existing File System: the files stay, on the NetRAID device; a switchover mounts them on the other node', async () => {
    dir = tempDir('fs-resource');
    const image = makeDisk(path.join(dir, 'adam-disk.img'), 64 * MiB);
    const disk = (await runOk('losetup', ['--find', '--show', image])).trim();
    loops.push(disk);
    await runOk('mkfs.ext4', ['-q', '-F', disk]);
    const mnt = path.join(dir, 'sdr');
    fs.mkdirSync(mnt);
    await runOk('mount', [disk, mnt]);
    const files: Record<string, string> = {};
    for (let i = 0; i < 5; i++) {
      const data = Buffer.alloc(200_000 + i * 1000, i + 1);
      fs.writeFileSync(path.join(mnt, `file${i}`), data);
      files[`file${i}`] = sha256(data);
    }
    await runOk('umount', [mnt]).then(() => runOk('mount', [disk, mnt])); // written out to the disk
    const check = () => {
      for (const [name, hash] of Object.entries(files)) expect(sha256(fs.readFileSync(path.join(mnt, name))), name).toBe(hash);
    };

    const adam = await startAgent(path.join(dir, 'adam'), 'adam');
    const eve = await startAgent(path.join(dir, 'eve'), 'eve');
    agents.push(eve, adam);
    const control = (a: Agent) => path.join(a.home, 'run', 'control.sock');

    const listed = (await callAgent(control(adam), 'resource.disks', {})) as { disks: DiskCandidate[]; fileSystems: Array<{ mountPoint: string; eligible: boolean }> };
    expect(listed.disks.find((d) => d.path === disk)).toMatchObject({ eligible: false, reasons: [`mounted at ${mnt}`] });
    expect(listed.fileSystems.find((f) => f.mountPoint === mnt)).toMatchObject({ eligible: true });

    const bad = callAgent(control(adam), 'resource.create', { request: { type: 'existing', switchback: 'intelligent', server: 'adam', mountPoint: '/nonexistent-mount', dataKeeperTag: 'datarep-x', fileSystemTag: 'ext4-x', bitmapFile: '', asyncReplication: false } });
    await expect(bad).rejects.toThrow('the hierarchy request has errors: mountPoint');

    const created = (await callAgent(control(adam), 'resource.create', {
      request: { type: 'existing', switchback: 'intelligent', server: 'adam', mountPoint: mnt, dataKeeperTag: 'datarep-ext4-sdr', fileSystemTag: 'ext4-sdr', bitmapFile: path.join(dir, 'bitmap_ext4-sdr'), asyncReplication: false },
    })) as { tag: string; device: string; mountPoint: string };
    expect(created).toMatchObject({ tag: 'datarep-ext4-sdr', disk: disk, mountPoint: mnt });
    expect(findMount(mnt)?.source).toBe(created.device);
    expect(created.device).not.toBe(disk);
    check();
    const st = await adam.status('datarep-ext4-sdr');
    expect(st.fileSystem).toMatchObject({ tag: 'ext4-sdr', mountPoint: mnt, fstype: 'ext4', mounted: true, device: created.device });

    // A mounted disk is already protected: offered neither as source nor target.
    const again = (await callAgent(control(adam), 'resource.disks', {})) as { disks: DiskCandidate[] };
    expect(again.disks.find((d) => d.path === disk)!.eligible).toBe(false);

    const eveDisk = makeDisk(path.join(dir, 'eve.img'), 64 * MiB);
    await tandemOk(eve, 'accept', 'datarep-ext4-sdr', '--disk', eveDisk);
    const asyncRefused = await adam.tandem('extend', 'datarep-ext4-sdr', '--target', 'eve', '--address', eve.address, '--mode', 'async');
    expect(asyncRefused.stderr).toContain('was created without asynchronous replication; extend it with --mode sync');
    await tandemOk(adam, 'extend', 'datarep-ext4-sdr', '--target', 'eve', '--address', eve.address);
    await waitTargets(adam, 'datarep-ext4-sdr', inSync);

    // Switchover: adam unmounts, eve becomes source and mounts the file system at the same place.
    expect(await tandemOk(eve, 'inservice', 'datarep-ext4-sdr')).toContain('switched over: in service on eve');
    const onEve = await eve.status('datarep-ext4-sdr');
    expect(onEve.fileSystem).toMatchObject({ mountPoint: mnt, mounted: true });
    expect(findMount(mnt)?.source).toBe(onEve.fileSystem!.device!);
    // The device now is eve's NetRAID device: a loop over eve's own attachment of its export.
    expect((await runOk('losetup', ['-n', '-O', 'BACK-FILE', onEve.fileSystem!.device!])).trim()).toContain(path.join(eve.home, 'run', 'attach'));
    check();
    expect((await adam.status('datarep-ext4-sdr')).role).toBe('target');
    // Written on eve, replicated back to adam.
    fs.writeFileSync(path.join(mnt, 'after-switchover'), 'written on eve\n');
    await runOk('sync', []);
    await waitTargets(eve, 'datarep-ext4-sdr', inSync);
  });
});
