// Peers that do not speak our protocol, a target that is too small, and CLI mistakes: each refused with
// a message that names the problem, nothing written.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeHello, encodeWrite, FrameAssembler, FrameType, PROTOCOL, PROTOCOL_VERSION } from '../../agent/replication/wire.js';
import { freshGenerations } from '../../agent/mirror/generations.js';
import { makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, sha256File, tempDir, AGENT_BUNDLE, run } from '../helpers/tools.js';

const helloExtras = { generations: freshGenerations(true), members: [], sourceAddress: ':1' };

const MiB = 1024 * 1024;

/** Sends bytes to a replication port; resolves with what came back once the peer closed. */
function talk(address: string, bytes: Buffer): Promise<Buffer> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), host);
    const got: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('peer did not close within 15 s'));
    }, 15_000);
    s.on('data', (d) => got.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(got));
    });
    s.write(bytes);
  });
}

describe('replication peers and CLI errors', () => {
  const dir = tempDir('peers');
  let eve: Agent;
  let adam: Agent;
  const tgtDisk = path.join(dir, 'eve.img');
  let original: string;

  beforeAll(async () => {
    makeRandomFile(tgtDisk, 8 * MiB, 11);
    original = sha256File(tgtDisk);
    // Plain TCP (--insecure-plaintext) so that raw peers reach the replication protocol itself: these
    // tests are about what it does with garbage. Behind TLS a peer never gets that far (tls-peers.test.ts).
    eve = await startAgent(path.join(dir, 'eve'), 'eve', undefined, {}, { security: 'plaintext' });
    adam = await startAgent(path.join(dir, 'adam'), 'adam', undefined, {}, { security: 'plaintext' });
    await tandemOk(eve, 'accept', 'vol', '--disk', tgtDisk);
  });
  afterAll(async () => {
    await eve.stop();
    await adam.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('drops a peer that sends garbage; nothing is written', async () => {
    await talk(eve.address, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(eve.log()).toMatch(/dropping replication peer .*frame length/);
    expect(sha256File(tgtDisk)).toBe(original);
  });

  it('drops a peer that writes before saying HELLO', async () => {
    await talk(eve.address, encodeWrite(1, 0, [Buffer.alloc(4096, 0xee)]));
    expect(eve.log()).toContain('expected HELLO');
    expect(sha256File(tgtDisk)).toBe(original);
  });

  it('refuses an unknown protocol version with a message, then writes nothing it is sent', async () => {
    const hello = encodeHello({ protocol: PROTOCOL, version: 99, tag: 'vol', size: 8 * MiB, chunkSize: 65536, source: 'mallory', ...helloExtras });
    const back = await talk(eve.address, Buffer.concat([hello, encodeWrite(1, 0, [Buffer.alloc(4096, 0xee)])]));
    const [frame] = new FrameAssembler().push(back);
    expect(frame!.type).toBe(FrameType.REFUSE);
    expect((frame as { refusal: { message: string } }).refusal.message).toMatch(/unsupported replication protocol .* version 99.*Upgrade both agents/);
    expect(sha256File(tgtDisk)).toBe(original);
  });

  it('refuses a mirror the node is not a target of, saying what to run', async () => {
    const hello = encodeHello({ protocol: PROTOCOL, version: PROTOCOL_VERSION, tag: 'other', size: MiB, chunkSize: 65536, source: 'adam', ...helloExtras });
    const [frame] = new FrameAssembler().push(await talk(eve.address, hello));
    expect((frame as { refusal: { message: string } }).refusal.message).toContain('tandem accept other --disk DISK');
  });

  it('a target disk smaller than the source is refused, and status says why', async () => {
    const big = makeDisk(path.join(dir, 'adam.img'), 16 * MiB);
    await tandemOk(adam, 'create', 'vol', '--disk', big);
    await tandemOk(adam, 'extend', 'vol', '--target', 'eve', '--address', eve.address);
    const st = await waitTargets(adam, 'vol', (t) => /smaller than the source/.test(t.lastError), 15_000);
    expect(st.targets[0]!.status).toBe('Out Of Sync');
    expect(st.targets[0]!.lastError).toContain(`target disk ${tgtDisk} (8388608 bytes) is smaller than the source (16777216 bytes)`);
    const text = await tandemOk(adam, 'status', 'vol');
    expect(text).toContain('smaller than the source');
    expect(sha256File(tgtDisk)).toBe(original);
  });

  it('honours LKDR_ASYNC_LIMIT from the agent\'s environment, and a resync rate limit', async () => {
    const node = await startAgent(path.join(dir, 'limited'), 'limited', undefined, { LKDR_ASYNC_LIMIT: '17' }, { security: 'plaintext' });
    try {
      const disk = makeDisk(path.join(dir, 'limited.img'), 4 * MiB);
      await tandemOk(node, 'create', 'lim', '--disk', disk, '--resync-rate', '1048576');
      expect((await node.status('lim')).asyncLimit).toBe(17);
      // Honoured: a full resync of 4 MiB at 1 MiB/s takes at least ~3 s however fast the machine is
      // (a busy machine only makes it slower), and the target ends equal.
      const limDisk = makeDisk(path.join(dir, 'eve-lim.img'), 4 * MiB);
      await tandemOk(eve, 'accept', 'lim', '--disk', limDisk);
      const t0 = Date.now();
      await tandemOk(node, 'extend', 'lim', '--target', 'eve', '--address', eve.address);
      const st = await waitTargets(node, 'lim', (t) => t.status === 'Fully Operational' && t.dirtyChunks === 0, 60_000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2_500);
      expect(st.targets[0]!.resyncBytes).toBe(4 * MiB);
      expect(sha256File(limDisk)).toBe(sha256File(disk));
      const set = await node.program('mirror_settings', 'lim', 'resyncrate', '0');
      expect(set.code, set.stderr).toBe(0);
      const bad = await node.program('mirror_settings', 'lim', 'resyncrate', 'fast');
      expect(bad.stderr).toContain('resyncrate takes bytes per second');
    } finally {
      await node.stop();
    }
  });

  it('CLI mistakes are named with the fix', async () => {
    const noAgent = await run(process.execPath, [AGENT_BUNDLE, 'status'], { env: { ...process.env, TANDEM_HOME: path.join(dir, 'nobody'), TANDEM_PROGRAM: 'tandem' } });
    expect(noAgent.code).toBe(1);
    expect(noAgent.stderr).toContain('no agent is running');
    expect(noAgent.stderr).toContain('tandem-agent run');
    const unknown = await adam.tandem('pause', 'nosuch');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no mirror "nosuch" on this node (adam)');
    const badTag = await adam.tandem('create', 'bad tag', '--disk', tgtDisk);
    expect(badTag.stderr).toContain('"bad tag" is not a valid tag');
    const missingDisk = await adam.tandem('create', 'x1', '--disk', path.join(dir, 'missing.img'));
    expect(missingDisk.stderr).toContain('does not exist');
    const inUse = await eve.tandem('accept', 'again', '--disk', tgtDisk);
    expect(inUse.stderr).toContain('already protected by mirror "vol" (target)');
    const onTarget = await eve.tandem('pause', 'vol');
    expect(onTarget.stderr).toContain('is a target of "vol", not its source');
    const noTarget = await adam.tandem('extend', 'vol', '--target', 'eve');
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('--address HOST:PORT');
    const force = await adam.program('mirror_action', 'vol', 'force', 'adam', 'eve');
    expect(force.code).toBe(2);
    expect(force.stderr).toContain('force takes one system, the one to bring in service: mirror_action vol force adam');
    const unknownAction = await adam.program('mirror_action', 'vol', 'explode', 'adam');
    expect(unknownAction.code).toBe(2);
    expect(unknownAction.stderr).toContain('unknown action "explode"');
  });
});
