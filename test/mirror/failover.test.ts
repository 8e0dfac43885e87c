// The manual's failover scenarios 1–4 with real agents killed (-9) and restarted: flags, refusals, the
// direction of every resync and that it is partial where the manual says so.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { inSync, makeDisk, startAgent, tandemOk, waitStatus, waitBitmapClean, waitTargets, writeExport, type Agent } from '../helpers/agents.js';
import { sha256File, tempDir } from '../helpers/tools.js';

const SIZE = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;
const tag = 'datarep-ext3';
/** A returning source gives up looking for its targets after this long (manual, scenario 3). */
const PROBE = { TANDEM_PROBE_MS: '2000' };

interface Pair {
  dir: string;
  adam: Agent;
  eve: Agent;
  adamDisk: string;
  eveDisk: string;
}

const running: Agent[] = [];
async function agent(home: string, node: string, port?: number): Promise<Agent> {
  const a = await startAgent(home, node, port, PROBE);
  running.push(a);
  return a;
}

/** adam is the source, eve its synchronous target, both in sync, with some data written. */
async function pair(name: string): Promise<Pair> {
  const dir = tempDir(`failover-${name}`);
  const adamDisk = makeDisk(path.join(dir, 'adam.img'), SIZE);
  const eveDisk = makeDisk(path.join(dir, 'eve.img'), SIZE);
  const adam = await agent(path.join(dir, 'adam'), 'adam');
  const eve = await agent(path.join(dir, 'eve'), 'eve');
  await tandemOk(adam, 'create', tag, '--disk', adamDisk);
  await tandemOk(eve, 'accept', tag, '--disk', eveDisk);
  await tandemOk(adam, 'extend', tag, '--target', 'eve', '--address', eve.address, '--no-initial-sync');
  await waitTargets(adam, tag, inSync);
  await write(adam, 'write -P 0x11 0 64k');
  await waitTargets(adam, tag, inSync);
  await waitBitmapClean(adam, tag); // bits are cleared on disk lazily: resync counts are exact after that
  return { dir, adam, eve, adamDisk, eveDisk };
}

function flag(a: Agent, name: 'last_owner' | 'data_corrupt'): boolean {
  return fs.existsSync(path.join(a.home, 'state', 'flags', `${tag}_${name}`));
}

const write = (a: Agent, ...commands: string[]) => writeExport(a, tag, ...commands);
const until = (a: Agent, ok: (m: MirrorStatus) => boolean, what: string) => waitStatus(a, tag, ok, what);

describe('failover scenarios (manual, "Failover Scenarios")', () => {
  afterEach(async () => {
    for (const a of running.splice(0)) await a.kill9();
  });

  it('scenario 1: the source fails, the target takes over; when the source returns it drops last_owner and is resynced partially from the new source', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('s1');
    expect(flag(adam, 'last_owner')).toBe(true);
    expect(flag(eve, 'last_owner')).toBe(false);
    await adam.kill9();

    const failover = await tandemOk(eve, 'inservice', tag);
    expect(failover).toBe(`${tag} in service on eve (failover from adam)\n`);
    const eveSource = await eve.status(tag);
    expect(eveSource).toMatchObject({ role: 'source', state: 'in service', lastOwner: true });
    expect(flag(eve, 'last_owner')).toBe(true);
    await write(eve, 'write -P 0x22 1M 4k', 'write -P 0x23 9M 4k'); // degraded: no backup yet

    const adam2 = await agent(adam.home, 'adam', adam.port);
    const after = await waitTargets(eve, tag, inSync);
    expect(after.targets.map((t) => t.node)).toEqual(['adam']);
    // Partial: the two chunks eve changed, not the 256 of the volume.
    expect(after.targets[0]!.resyncBytes).toBe(2 * CHUNK);
    const back = await adam2.status(tag);
    expect(back).toMatchObject({ role: 'target', lastOwner: false, source: 'eve', consistent: true });
    expect(flag(adam2, 'last_owner')).toBe(false);
    expect(flag(eve, 'last_owner')).toBe(true);
    expect(adam2.log()).toContain('now a target of eve (eve took over while this node was away)');
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
    // Direction, as mirror_status shows it on the new source.
    expect((await eve.program('mirror_status', tag)).stdout).toMatch(/^\[-\] eve -> adam\n Status: Fully Operational\n/);
  });

  it('scenario 2: the new source fails during the resync back; the half-resynced node refuses to go in service; the source resumes the resync when it returns', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('s2');
    await adam.kill9();
    await tandemOk(eve, 'inservice', tag);
    await write(eve, 'write -P 0x31 2M 4M');
    expect((await eve.program('mirror_settings', tag, 'resyncrate', String(256 * 1024))).code).toBe(0);

    const adam2 = await agent(adam.home, 'adam', adam.port);
    await until(adam2, (m) => m.role === 'target' && m.state === 'resyncing', 'the resync from eve');
    await waitTargets(eve, tag, (t) => t.status === 'Resyncing' && t.resyncBytes >= 2 * CHUNK);
    await eve.kill9();

    const refused = await adam2.tandem('inservice', tag);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('was being resynced when it lost eve; its copy is incomplete, so it cannot be brought in service (manual, scenario 2). Bring the mirror in service on eve');
    expect((await adam2.status(tag)).role).toBe('target');

    const eve2 = await agent(eve.home, 'eve', eve.port);
    expect((await eve2.program('mirror_settings', tag, 'resyncrate', '0')).code).toBe(0);
    const done = await waitTargets(eve2, tag, inSync);
    expect(done.targets[0]!.node).toBe('adam');
    expect((await eve2.status(tag)).state).toBe('in service');
    expect(await until(adam2, (m) => m.consistent === true, 'adam consistent')).toMatchObject({ role: 'target', source: 'eve' });
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
  });

  it('scenario 3: both fail, the source returns alone: data_corrupt, not in service until forced; then the target is resynced partially', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('s3');
    await eve.kill9();
    await adam.kill9();
    const adam2 = await agent(adam.home, 'adam', adam.port);
    const waiting = await until(adam2, (m) => m.dataCorrupt, 'data_corrupt');
    expect(waiting).toMatchObject({ role: 'source', state: 'starting', exportSocket: null, lastOwner: true });
    expect(flag(adam2, 'data_corrupt')).toBe(true);
    expect(flag(adam2, 'last_owner')).toBe(true); // the manual: check it before forcing
    expect(fs.existsSync(path.join(adam2.home, 'run', `${tag}.nbd.sock`))).toBe(false);
    expect((await adam2.tandem('status', tag)).stdout).toContain('starting');
    expect((await adam2.tandem('status', tag)).stdout).toContain('[last_owner, data_corrupt]');

    const wrongNode = await adam2.program('mirror_action', tag, 'force', 'eve');
    expect(wrongNode.code).toBe(2);
    expect(wrongNode.stderr).toContain(`run mirror_action ${tag} force eve on eve`);
    const forced = await adam2.program('mirror_action', tag, 'force', 'adam');
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toBe(`${tag} forced in service on adam; data_corrupt cleared\n`);
    expect(await adam2.status(tag)).toMatchObject({ state: 'in service', dataCorrupt: false });
    expect(flag(adam2, 'data_corrupt')).toBe(false);
    await write(adam2, 'write -P 0x41 3M 4k');

    const eve2 = await agent(eve.home, 'eve', eve.port);
    const st = await waitTargets(adam2, tag, inSync);
    expect(st.targets[0]!.resyncBytes).toBe(CHUNK);
    expect((await eve2.status(tag)).role).toBe('target');
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
  });

  it('scenario 4: both fail, the target returns first and does not go in service; the source does when it returns', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('s4');
    await adam.kill9();
    await eve.kill9();
    const eve2 = await agent(eve.home, 'eve', eve.port);
    const refused = await eve2.tandem('inservice', tag);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('has not seen adam since it started, so it cannot know whether adam wrote after this node went down (manual, scenario 4)');
    expect((await eve2.status(tag))).toMatchObject({ role: 'target', lastOwner: false });

    const adam2 = await agent(adam.home, 'adam', adam.port);
    const st = await waitTargets(adam2, tag, inSync);
    expect(await adam2.status(tag)).toMatchObject({ state: 'in service', dataCorrupt: false, lastOwner: true });
    expect(st.targets[0]!.resyncBytes).toBe(0);
    expect(flag(adam2, 'data_corrupt')).toBe(false);
    await write(adam2, 'write -P 0x51 5M 4k');
    await waitTargets(adam2, tag, inSync);
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
  });
});
