// The manual's Rewind and Recover Data on real ext4 over loop devices and real agents: files v1, a
// bookmark, the files overwritten (v2); the mirror paused; the view at the bookmark mounted read-only
// shows v1 while the target still holds v2; then (a) move applications to the target: it goes in
// service with v1 and the old source gets only the chunks that differ, or (b) copy data manually and
// resume: the target gets only the chunks written meanwhile.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { callAgent } from '../../agent/control/json-rpc.js';
import { findMount } from '../../agent/resources/filesystem.js';
import { inSync, makeDisk, startAgent, tandemOk, waitStatus, waitTargets, type Agent } from '../helpers/agents.js';
import { runOk, sha256, sha256File, tempDir } from '../helpers/tools.js';

const isRoot = process.getuid?.() === 0;
const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const TAG = 'datarep-rw';

const agents: Agent[] = [];
const cleanups: Array<() => Promise<void>> = [];

interface Setup {
  dir: string;
  mnt: string;
  adam: Agent;
  eve: Agent;
  adamDisk: string;
  eveDisk: string;
  logdir: string;
  v1: Record<string, string>;
  v2: Record<string, string>;
  late: string;
}

const files = (mnt: string, names: string[]) => Object.fromEntries(names.map((n) => [n, sha256(fs.readFileSync(path.join(mnt, n)))]));

function writeFiles(mnt: string, fill: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < 4; i++) {
    const data = Buffer.alloc(300_000 + i * 4096, fill + i);
    fs.writeFileSync(path.join(mnt, `file${i}`), data);
    out[`file${i}`] = sha256(data);
  }
  return out;
}

/** Two agents, ext4 on adam's disk protected as a file-system resource, eve its target with a rewind log. */
async function setUp(name: string): Promise<Setup> {
  const dir = tempDir(`rewind-fs-${name}`);
  const image = makeDisk(path.join(dir, 'adam-disk.img'), SIZE);
  const adamDisk = (await runOk('losetup', ['--find', '--show', image])).trim();
  cleanups.push(async () => {
    await runOk('losetup', ['-d', adamDisk]).catch(() => undefined);
  });
  await runOk('mkfs.ext4', ['-q', '-F', adamDisk]);
  const mnt = path.join(dir, 'data');
  fs.mkdirSync(mnt);
  const adam = await startAgent(path.join(dir, 'adam'), 'adam');
  const eve = await startAgent(path.join(dir, 'eve'), 'eve');
  agents.push(eve, adam);
  cleanups.push(async () => {
    for (const m of [mnt, path.join(eve.home, 'run', 'rewind', TAG)]) if (findMount(m)) await runOk('umount', [m]).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await runOk('mount', [adamDisk, mnt]);
  await callAgent(path.join(adam.home, 'run', 'control.sock'), 'resource.create', {
    request: { type: 'existing', switchback: 'intelligent', server: 'adam', mountPoint: mnt, dataKeeperTag: TAG, fileSystemTag: 'ext4-data', bitmapFile: path.join(dir, 'bitmap'), asyncReplication: false },
  });
  const eveDisk = makeDisk(path.join(dir, 'eve.img'), SIZE);
  await tandemOk(eve, 'accept', TAG, '--disk', eveDisk);
  const logdir = path.join(dir, 'eve-rewind-log');
  expect((await eve.program('mirror_settings', TAG, 'logdir', logdir)).code).toBe(0);
  await tandemOk(adam, 'extend', TAG, '--target', 'eve', '--address', eve.address);
  await waitTargets(adam, TAG, inSync, 120_000);

  const v1 = writeFiles(mnt, 0x10);
  await runOk('sync', ['-f', mnt]);
  const marked = await tandemOk(adam, 'bookmark', TAG, 'before the upgrade');
  expect(marked).toBe('bookmark "before the upgrade" marked in the rewind log on eve\n');
  const v2 = writeFiles(mnt, 0x80);
  await runOk('sync', ['-f', mnt]);
  await waitTargets(adam, TAG, inSync);
  return { dir, mnt, adam, eve, adamDisk, eveDisk, logdir, v1, v2, late: '' };
}

/** Dialogs 1–7: pause, write on the source meanwhile, open the view at the bookmark, look, close it. */
async function rewindAndLook(s: Setup): Promise<void> {
  const { adam, eve, mnt } = s;
  // Not paused: refused, nothing changes.
  const notPaused = await eve.tandem('rewind', TAG, '--bookmark', 'before the upgrade');
  expect(notPaused.code).toBe(1);
  expect(notPaused.stderr).toContain(`adam is replicating into this target, so its data changes: a rewound view needs the mirror paused. On adam run: mirror_action ${TAG} pause adam eve`);

  expect((await adam.program('mirror_action', TAG, 'pause', 'adam', 'eve')).stdout).toBe(`${TAG}: pause adam -> eve\n`);
  await waitStatus(eve, TAG, (m) => !m.source, 'eve paused');
  // Applications go on writing on the source while the administrator explores.
  fs.writeFileSync(path.join(mnt, 'late'), Buffer.alloc(200_000, 0x5a));
  s.late = sha256(fs.readFileSync(path.join(mnt, 'late')));
  await runOk('sync', ['-f', mnt]);

  const listed = await tandemOk(eve, 'bookmarks', TAG);
  expect(listed).toMatch(new RegExp(`^${TAG}: rewind log ${s.logdir}/${TAG}.rewind, \\d+ entries \\(.+\\), from \\S+Z to \\S+Z\\n\\S+Z  before the upgrade\\n$`));
  const unknown = await eve.tandem('rewind', TAG, '--bookmark', 'after lunch');
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain(`no bookmark "after lunch" in the rewind log of "${TAG}"; bookmarks: "before the upgrade" (tandem bookmarks ${TAG})`);
  const tooEarly = await eve.tandem('rewind', TAG, '--time', '2020-01-01T00:00:00Z');
  expect(tooEarly.code).toBe(1);
  expect(tooEarly.stderr).toMatch(new RegExp(`the rewind log of "${TAG}" begins at \\S+Z; 2020-01-01T00:00:00.000000Z is before it. Choose a time from \\S+Z to \\S+Z`));

  const eveBefore = sha256File(s.eveDisk);
  const out = await tandemOk(eve, 'rewind', TAG, '--bookmark', 'before the upgrade');
  const viewMount = path.join(eve.home, 'run', 'rewind', TAG);
  expect(out).toContain(`  mounted read-only at ${viewMount}\n`);
  expect(findMount(viewMount)?.options).toMatch(/^ro\b/);
  expect(files(viewMount, Object.keys(s.v1))).toEqual(s.v1);
  expect(fs.existsSync(path.join(viewMount, 'late'))).toBe(false);
  expect(() => fs.writeFileSync(path.join(viewMount, 'file0'), 'x')).toThrow(/EROFS/);
  // The target itself still holds v2: its disk did not change while exploring.
  expect(sha256File(s.eveDisk)).toBe(eveBefore);
  const st = await eve.status(TAG);
  expect(st.rewindLog).toMatchObject({ kept: true, bookmarks: 1, view: { mountPoint: viewMount } });
  // The manual's dialog 10: copy what is to be kept to a safe place.
  fs.copyFileSync(path.join(viewMount, 'file0'), path.join(s.dir, 'saved-file0'));
  expect(await tandemOk(eve, 'rewind', TAG, '--close')).toBe(`${TAG}: the rewound view is closed\n`);
  expect(findMount(viewMount)).toBeNull();
  expect(sha256File(s.eveDisk)).toBe(eveBefore);
  expect(sha256(fs.readFileSync(path.join(s.dir, 'saved-file0')))).toBe(s.v1.file0);
}

describe.skipIf(!isRoot)('rewind and recover data (needs root: loop devices, ext4)', () => {
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop();
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('(a) move applications to the target: it goes in service with the rewound data; the old source gets only the chunks that differ', async () => {
    const s = await setUp('move');
    const { adam, eve, mnt } = s;
    // The log cannot be on a mirrored disk.
    const onMirror = await adam.program('mirror_settings', TAG, 'logdir', path.join(mnt, 'rewind'));
    expect(onMirror.code).toBe(1);
    expect(onMirror.stderr).toContain(`logdir ${path.join(mnt, 'rewind')} is on mirror "${TAG}" (inside ${mnt}, where its file system ext4-data is mounted); the rewind log cannot be on a mirrored disk: choose a folder on another disk`);
    const onEve = await eve.program('mirror_settings', TAG, 'logdir', path.join(mnt, 'x'));
    expect(onEve.code).toBe(1);
    expect(onEve.stderr).toContain(`is on mirror "${TAG}"`);
    expect((await eve.status(TAG)).rewindLog.dir).toBe(s.logdir);

    await rewindAndLook(s);
    // Recovery needs the mirror resumed (it is a switchover).
    const paused = await eve.tandem('recover', TAG, '--bookmark', 'before the upgrade');
    expect(paused.code).toBe(1);
    expect(paused.stderr).toContain(`moving applications to eve is a switchover, which needs the mirror resumed: on adam run mirror_action ${TAG} resume adam eve`);
    await adam.program('mirror_action', TAG, 'resume', 'adam', 'eve');
    await waitTargets(adam, TAG, inSync);

    const out = await tandemOk(eve, 'recover', TAG, '--bookmark', 'before the upgrade');
    expect(out).toMatch(new RegExp(`^${TAG} rewound to \\S+Z and switched over: in service on eve; \\d+ blocks \\(\\d+ bytes\\) written back, and only their chunks go to adam, now its target\\n$`));
    const rewritten = Number(/\((\d+) bytes\)/.exec(out)![1]);
    expect(rewritten).toBeGreaterThan(0);
    expect(rewritten).toBeLessThan(SIZE / 8);
    // The new source has v1 (and not what was written after the bookmark), mounted where it was.
    const onEveNow = await eve.status(TAG);
    expect(onEveNow).toMatchObject({ role: 'source', state: 'in service', fileSystem: { mountPoint: mnt, mounted: true } });
    expect(files(mnt, Object.keys(s.v1))).toEqual(s.v1);
    expect(fs.existsSync(path.join(mnt, 'late'))).toBe(false);
    // The old source is resynced partially: only the chunks the rewind wrote back.
    const done = await waitTargets(eve, TAG, inSync, 60_000);
    expect(done.targets[0]!.node).toBe('adam');
    expect(done.targets[0]!.bytesSent).toBeGreaterThan(0);
    expect(done.targets[0]!.bytesSent).toBeLessThan(SIZE / 4);
    expect((await adam.status(TAG))).toMatchObject({ role: 'target', source: 'eve' });
    // Unmounted (ext4 stops writing), every write acknowledged: both disks hold the same bytes.
    await tandemOk(eve, 'outofservice', TAG);
    expect(sha256File(s.adamDisk)).toBe(sha256File(s.eveDisk));
  });

  it('(b) copy data manually, then resume: the mirror resumes from the source, resyncing only the chunks written meanwhile', async () => {
    const s = await setUp('resume');
    const { adam, mnt } = s;
    const before = (await adam.status(TAG)).targets[0]!.resyncBytes;
    await rewindAndLook(s);
    await adam.program('mirror_action', TAG, 'resume', 'adam', 'eve');
    const st = await waitTargets(adam, TAG, inSync);
    const resynced = st.targets[0]!.resyncBytes - before;
    expect(resynced).toBeGreaterThan(0);
    expect(resynced).toBeLessThan(SIZE / 4);
    // The target holds the source's data again (v2 and the file written while paused).
    await tandemOk(adam, 'outofservice', TAG);
    expect(sha256File(s.eveDisk)).toBe(sha256File(s.adamDisk));
    expect(files(s.dir, ['saved-file0'])).toEqual({ 'saved-file0': s.v1.file0 });
    expect(findMount(mnt)).toBeNull();
  });
});
