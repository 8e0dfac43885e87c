// The rewind log through real agents: a bookmark sent by the source marks the same point on every
// target; the rewound view is served read-only over NBD (read by qemu-img); kill -9 of a target while
// writes stream in leaves a journal that reopens and still gives the right view; bad input refused.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inSync, makeDisk, startAgent, tandemOk, waitStatus, waitTargets, writeExport, type Agent } from '../helpers/agents.js';
import { run, runOk, sha256, tempDir } from '../helpers/tools.js';

const SIZE = 16 * 1024 * 1024;
const TAG = 'vol';
const running: Agent[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const a of running.splice(0)) await a.kill9();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Reads the rewound view's read-only export whole, with a real NBD client. */
async function readView(a: Agent, dir: string): Promise<string> {
  const out = path.join(dir, `${a.node}-view.raw`);
  fs.rmSync(out, { force: true });
  await runOk('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', `nbd+unix:///${TAG}?socket=${path.join(a.home, 'run', `${TAG}.rewind.nbd.sock`)}`, out]);
  return sha256(fs.readFileSync(out));
}

describe('rewind log through real agents', () => {
  it('a bookmark marks the same point on every target; kill -9 of a target while journalling keeps its log usable', async () => {
    const dir = tempDir('rewind-agents');
    dirs.push(dir);
    const adam = await startAgent(path.join(dir, 'adam'), 'adam');
    const eve = await startAgent(path.join(dir, 'eve'), 'eve');
    const sophia = await startAgent(path.join(dir, 'sophia'), 'sophia');
    running.push(adam, eve, sophia);
    await tandemOk(adam, 'create', TAG, '--disk', makeDisk(path.join(dir, 'adam.img'), SIZE));
    for (const t of [eve, sophia]) {
      await tandemOk(t, 'accept', TAG, '--disk', makeDisk(path.join(dir, `${t.node}.img`), SIZE));
      await t.program('mirror_settings', TAG, 'logdir', path.join(dir, `${t.node}-log`));
      await tandemOk(adam, 'extend', TAG, '--target', t.node, '--address', t.address, '--no-initial-sync');
    }
    await waitTargets(adam, TAG, inSync);

    // Bad input: no bookmark name; a bookmark without a log on this node; a view on the source.
    expect((await adam.tandem('bookmark', TAG)).code).toBe(2);
    const onSource = await adam.tandem('rewind', TAG, '--bookmark', 'x');
    expect(onSource.stderr).toContain(`this node (adam) is the source of "${TAG}"; a rewound view is opened on a target (targets: eve, sophia): run this there`);
    expect((await adam.tandem('rewind', TAG)).stderr).toContain('rewind needs --time TIME or --bookmark NAME');
    const badTime = await eve.tandem('rewind', TAG, '--time', 'yesterday');
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('--time "yesterday" is not a time: use ISO 8601 (UTC), e.g. 2026-11-30T18:01:02.123456Z');

    await writeExport(adam, TAG, 'write -P 0x11 0 1M', 'write -P 0x22 3M 64k');
    const atMark = Buffer.alloc(SIZE);
    atMark.fill(0x11, 0, 1024 * 1024);
    atMark.fill(0x22, 3 * 1024 * 1024, 3 * 1024 * 1024 + 65536);
    expect(await tandemOk(adam, 'bookmark', TAG, 'm1')).toBe('bookmark "m1" marked in the rewind log on eve, sophia\n');
    await writeExport(adam, TAG, 'write -P 0x33 512k 1M', 'write -P 0x44 8M 4k', 'write -z 0 64k');
    await waitTargets(adam, TAG, inSync);

    // Each target: paused, the view at m1 is the data as it was at m1, the same on both.
    await adam.program('mirror_action', TAG, 'pause', 'adam', 'eve', 'sophia');
    for (const t of [eve, sophia]) {
      await waitStatus(t, TAG, (m) => !m.source, `${t.node} paused`);
      const out = await tandemOk(t, 'rewind', TAG, '--bookmark', 'm1');
      expect(out).toContain(`  read-only export: nbd+unix:///${TAG}?socket=${path.join(t.home, 'run', `${TAG}.rewind.nbd.sock`)}\n`);
      expect(await readView(t, dir)).toBe(sha256(atMark));
      // Read-only: a write through the export is refused.
      const w = await run('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', `nbd+unix:///${TAG}?socket=${path.join(t.home, 'run', `${TAG}.rewind.nbd.sock`)}`]);
      expect(`${w.stdout}${w.stderr}`).toMatch(/read-only|Operation not permitted|permission/i);
    }

    // kill -9 of eve while writes stream in: its journal is reopened (a torn tail cut off) and the
    // view at m1 is still exact.
    await tandemOk(eve, 'rewind', TAG, '--close');
    await adam.program('mirror_action', TAG, 'resume', 'adam', 'eve');
    await waitTargets(adam, TAG, (t) => t.node !== 'eve' || t.status === 'Fully Operational');
    const before = (await eve.status(TAG)).rewindLog.entries ?? 0;
    let writerDone = false;
    // The writer goes to the source, which keeps going without the killed target: it must succeed.
    const writer = writeExport(adam, TAG, ...Array.from({ length: 2000 }, (_, i) => `write -P ${(i % 200) + 1} ${(1 + (i % 8)) * 1024 * 1024} 256k`))
      .finally(() => (writerDone = true));
    // Mid-journal: eve has journalled some of these writes, and more are coming.
    const journalDeadline = Date.now() + 60_000;
    while (((await eve.status(TAG)).rewindLog.entries ?? 0) < before + 10) {
      if (Date.now() > journalDeadline || writerDone) throw new Error('eve did not journal the writes');
      await new Promise((r) => setTimeout(r, 20));
    }
    await eve.kill9();
    expect(writerDone, 'the writer finished before eve was killed: the kill was not mid-journal').toBe(false);
    await writer;
    running.splice(running.indexOf(eve), 1);
    const eve2 = await startAgent(eve.home, 'eve', eve.port);
    running.push(eve2);
    await waitTargets(adam, TAG, (t) => t.node !== 'eve' || inSync(t), 60_000);
    await adam.program('mirror_action', TAG, 'pause', 'adam', 'eve');
    await waitStatus(eve2, TAG, (m) => !m.source, 'eve paused again');
    const st = await eve2.status(TAG);
    expect(st.rewindLog).toMatchObject({ kept: true, bookmarks: 1 });
    await tandemOk(eve2, 'rewind', TAG, '--bookmark', 'm1');
    expect(await readView(eve2, dir)).toBe(sha256(atMark));
    const text = await tandemOk(eve2, 'status', TAG);
    expect(text).toMatch(new RegExp(`\n  rewind log: ${path.join(dir, 'eve-log')}, \\d+ entries \\(.+\\), from \\S+Z, 1 bookmark; rewound view at \\S+Z open\n$`));
  });
});
