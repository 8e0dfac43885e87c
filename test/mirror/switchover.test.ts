// Switchover (in service on a target in sync), out of service, and split brain: created by a real cut in
// the replication path, detected on both sides, resolved, the survivor's data kept byte for byte.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { exportUri, freePort, inSync, makeDisk, startAgent, tandemOk, waitStatus, waitBitmapClean, waitTargets, writeExport, type Agent } from '../helpers/agents.js';
import { run, sha256File, tempDir } from '../helpers/tools.js';

const SIZE = 16 * 1024 * 1024;
const CHUNK = 64 * 1024;
const tag = 'vol';

const running: Agent[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

async function agent(home: string, node: string, port?: number): Promise<Agent> {
  const a = await startAgent(home, node, port, { TANDEM_PROBE_MS: '2000' });
  running.push(a);
  return a;
}

const write = (a: Agent, ...commands: string[]) => writeExport(a, tag, ...commands);
const until = (a: Agent, ok: (m: MirrorStatus) => boolean, what: string) => waitStatus(a, tag, ok, what);

/** A TCP relay standing for the network between two nodes; cut() drops it, mend() restores it. */
class Link {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private up = true;
  port = 0;
  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => {
      if (!this.up) return client.destroy();
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.once('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }
  async listen(): Promise<string> {
    this.port = await freePort();
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', () => r()));
    return `127.0.0.1:${this.port}`;
  }
  cut(): void {
    this.up = false;
    for (const s of this.sockets) s.destroy();
  }
  mend(): void {
    this.up = true;
  }
  close(): Promise<void> {
    this.cut();
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function pair(name: string, addressOf: (eve: Agent) => Promise<string> = async (eve) => eve.address) {
  const dir = tempDir(`switch-${name}`);
  const adamDisk = makeDisk(path.join(dir, 'adam.img'), SIZE);
  const eveDisk = makeDisk(path.join(dir, 'eve.img'), SIZE);
  const adam = await agent(path.join(dir, 'adam'), 'adam');
  const eve = await agent(path.join(dir, 'eve'), 'eve');
  await tandemOk(adam, 'create', tag, '--disk', adamDisk);
  await tandemOk(eve, 'accept', tag, '--disk', eveDisk);
  await tandemOk(adam, 'extend', tag, '--target', 'eve', '--address', await addressOf(eve), '--no-initial-sync');
  await waitTargets(adam, tag, inSync);
  await write(adam, 'write -P 0x11 0 64k');
  await waitTargets(adam, tag, inSync);
  await waitBitmapClean(adam, tag); // bits are cleared on disk lazily: resync counts are exact after that
  return { dir, adam, eve, adamDisk, eveDisk };
}

describe('switchover, out of service, split brain', () => {
  afterEach(async () => {
    for (const a of running.splice(0)) await a.kill9();
    for (const c of cleanups.splice(0)) await c();
  });

  it('in service on a target in sync switches over: the old source becomes its target, nothing is resynced that did not change', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('switch');
    const out = await tandemOk(eve, 'inservice', tag);
    expect(out).toBe(`${tag} switched over: in service on eve; adam is now its target\n`);
    expect(await eve.status(tag)).toMatchObject({ role: 'source', state: 'in service', lastOwner: true });
    const old = await until(adam, (m) => m.role === 'target' && m.source === 'eve', 'adam a target of eve');
    expect(old).toMatchObject({ lastOwner: false, consistent: true, exportSocket: null });
    expect(fs.existsSync(path.join(adam.home, 'run', `${tag}.nbd.sock`))).toBe(false);
    const st = await waitTargets(eve, tag, inSync);
    expect(st.targets[0]).toMatchObject({ node: 'adam', resyncBytes: 0 });
    await write(eve, 'write -P 0x61 4M 128k');
    await waitTargets(eve, tag, inSync);
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
    expect(fs.existsSync(path.join(eve.home, 'state', 'flags', `${tag}_last_owner`))).toBe(true);
    expect(fs.existsSync(path.join(adam.home, 'state', 'flags', `${tag}_last_owner`))).toBe(false);
    // …and back again.
    await tandemOk(adam, 'inservice', tag);
    await waitTargets(adam, tag, inSync);
    await write(adam, 'write -P 0x62 6M 4k');
    await waitTargets(adam, tag, inSync);
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
  });

  it('a switchover to a target that is still resyncing is refused, and nothing changes', async () => {
    const dir = tempDir('switch-resyncing');
    const adamDisk = makeDisk(path.join(dir, 'adam.img'), SIZE);
    const eveDisk = makeDisk(path.join(dir, 'eve.img'), SIZE);
    const adam = await agent(path.join(dir, 'adam'), 'adam');
    const eve = await agent(path.join(dir, 'eve'), 'eve');
    await tandemOk(adam, 'create', tag, '--disk', adamDisk, '--resync-rate', String(512 * 1024));
    await tandemOk(eve, 'accept', tag, '--disk', eveDisk);
    await tandemOk(adam, 'extend', tag, '--target', 'eve', '--address', eve.address);
    await until(eve, (m) => m.state === 'resyncing', 'eve resyncing');
    const refused = await eve.tandem('inservice', tag);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is being resynced from adam; a switchover to it is refused until the resync completes');
    expect(await adam.status(tag)).toMatchObject({ role: 'source', state: 'in service' });
    expect((await eve.status(tag)).role).toBe('target');
  });

  it('out of service stops the export and replication, keeps the bitmap; in service again resyncs only what changed', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('oos');
    expect(await tandemOk(adam, 'outofservice', tag)).toBe(`${tag} out of service on adam; its bitmap keeps what changed\n`);
    expect(await adam.status(tag)).toMatchObject({ state: 'out of service', exportSocket: null, targets: [] });
    const attach = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4k', exportUri(adam, tag)]);
    expect(attach.code).not.toBe(0);
    await until(eve, (m) => m.source === null, 'eve sees the source gone');
    const paused = await adam.tandem('pause', tag);
    expect(paused.stderr).toContain(`"${tag}" is out of service on this node; bring it in service first (tandem inservice ${tag})`);
    expect(await tandemOk(adam, 'inservice', tag)).toBe(`${tag} in service on adam\n`);
    await write(adam, 'write -P 0x71 8M 4k');
    const st = await waitTargets(adam, tag, inSync);
    expect(st.targets[0]!.resyncBytes).toBe(0);
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
  });

  it('out of service on the source, then in service on its target: the old source becomes the target, disks equal, only the new source holds last_owner', async () => {
    const { adam, eve, adamDisk, eveDisk } = await pair('oos-then-target');
    await tandemOk(adam, 'outofservice', tag);
    await until(eve, (m) => m.source === null, 'eve sees the source gone');
    expect(await tandemOk(eve, 'inservice', tag)).toContain(`${tag} in service on eve`);
    await write(eve, 'write -P 0x5e 1M 1M');
    // adam, out of service with data eve's descends from, gives way: it becomes eve's target.
    const old = await until(adam, (m) => m.role === 'target' && m.source === 'eve', 'adam a target of eve');
    expect(old.lastOwner).toBe(false);
    const st = await waitTargets(eve, tag, inSync);
    expect(st.targets[0]).toMatchObject({ node: 'adam', status: 'Fully Operational' });
    // Only the 1 MiB eve wrote is resynced, not the whole disk.
    expect(st.targets[0]!.resyncBytes).toBeLessThanOrEqual(1024 * 1024 + CHUNK);
    expect(sha256File(adamDisk)).toBe(sha256File(eveDisk));
    expect(fs.existsSync(path.join(eve.home, 'state', 'flags', `${tag}_last_owner`))).toBe(true);
    expect(fs.existsSync(path.join(adam.home, 'state', 'flags', `${tag}_last_owner`))).toBe(false);
    const adamSays = await adam.tandem('status', tag);
    expect(adamSays.stdout).not.toContain('last_owner');
    // In service on adam again is an ordinary switchover back.
    expect(await tandemOk(adam, 'inservice', tag)).toBe(`${tag} switched over: in service on adam; eve is now its target\n`);
  });

  it('split brain: both sides write while cut apart; detected on both, never resynced by itself; resolved, the survivor\'s data is kept', async () => {
    let relay: Link | null = null;
    const { adam, eve, adamDisk, eveDisk } = await pair('split', async (e) => {
      relay = new Link(e.port);
      cleanups.push(() => relay!.close());
      return relay.listen();
    });
    const net1 = relay as unknown as Link;
    net1.cut(); // adam -> eve is down; adam keeps running
    await waitTargets(adam, tag, (t) => t.status === 'Out Of Sync');
    await until(eve, (m) => m.source === null, 'eve loses adam');
    await tandemOk(eve, 'inservice', tag); // a failover: eve lost its source while in sync
    await write(eve, 'write -P 0xe1 2M 4k');
    await write(adam, 'write -P 0xa1 3M 4k', 'write -P 0xa2 2M 4k');
    const adamData = sha256File(adamDisk);
    net1.mend();

    const adamSees = await waitTargets(adam, tag, (t) => t.status === 'Split Brain');
    expect(adamSees.targets[0]!.lastError).toContain('split brain: adam and eve both changed "vol" while apart; nothing is resynced until you choose the survivor');
    const eveSees = await waitTargets(eve, tag, (t) => t.status === 'Split Brain');
    expect(eveSees.targets[0]!.node).toBe('adam');
    expect((await adam.program('mirror_status', tag)).stdout).toContain(' Status: Split Brain\n');
    await new Promise((r) => setTimeout(r, 1_500)); // still nothing moves
    expect(sha256File(adamDisk)).toBe(adamData);
    expect(sha256File(eveDisk)).not.toBe(adamData);

    const wrongSide = await adam.tandem('resolve', tag, '--survivor', 'adam');
    expect(wrongSide.code).toBe(1);
    expect(wrongSide.stderr).toContain('run this on the node whose changes are to be discarded');
    const resolved = await tandemOk(eve, 'resolve', tag, '--survivor', 'adam');
    expect(resolved).toContain('this node (eve) is now a target of adam');
    const st = await waitTargets(adam, tag, inSync);
    // Partial: adam's two changed chunks and eve's one (the same chunk at 2M) — the union, 2 chunks.
    expect(st.targets[0]!.resyncBytes).toBe(2 * CHUNK);
    expect(sha256File(adamDisk)).toBe(adamData);
    expect(sha256File(eveDisk)).toBe(adamData);
    expect(await eve.status(tag)).toMatchObject({ role: 'target', source: 'adam', lastOwner: false });
  });
});
