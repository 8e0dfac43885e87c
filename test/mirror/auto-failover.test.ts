// Automatic failover with three real agents on loopback (LCMHBEATTIME=1, LCMNUMHBEATS=3): heartbeats
// over mutual TLS on every comm path, the highest-priority in-sync target takes over by itself when the
// source is killed, the other target follows with a partial resync; scenario 2 (the only other copy
// resyncing) fails over nowhere and says why; Confirm Failover waits for lk_confirmso.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TargetStatus } from '../../common/mirror-status.js';
import type { ClusterStatus } from '../../agent/cluster/manager.js';
import { callAgent } from '../../agent/control/json-rpc.js';
import { agentLayout } from '../../common/agent-layout.js';
import { freePort, makeDisk, startAgent, tandemOk, waitStatus, waitTargets, writeExport, inSync, type Agent } from '../helpers/agents.js';
import { AGENT_BUNDLE, run, sha256File, tempDir } from '../helpers/tools.js';
import { createClusterCa } from '../helpers/pki.js';

const SIZE = 16 * 1024 * 1024;
const tag = 'datarep-ext3';
const FAST = { LCMHBEATTIME: '1', LCMNUMHBEATS: '3', TANDEM_PROBE_MS: '3000' };
/** Detection is 3 s; a loaded 2-core CI machine gets a generous bound on top. */
const FAILOVER_BOUND_MS = 30_000;

const running: Agent[] = [];
interface Node { agent: Agent; hb: number; disk: string }

async function cluster(name: string, names: string[], opts: { env?: Record<string, string> } = {}): Promise<{ dir: string; nodes: Record<string, Node> }> {
  const dir = tempDir(`auto-failover-${name}`);
  const nodes: Record<string, Node> = {};
  for (const n of names) {
    const hb = await freePort();
    const agent = await startAgent(path.join(dir, n), n, undefined, { ...FAST, ...opts.env }, { args: ['--heartbeat', `127.0.0.1:${hb}`] });
    running.push(agent);
    nodes[n] = { agent, hb, disk: makeDisk(path.join(dir, `${n}.img`), SIZE) };
  }
  for (const a of names) for (const b of names) if (a !== b) await tandemOk(nodes[a]!.agent, 'commpath', 'add', b, '--local', '127.0.0.1', '--remote', `127.0.0.1:${nodes[b]!.hb}`);
  return { dir, nodes };
}

async function clusterStatus(a: Agent): Promise<ClusterStatus> {
  return JSON.parse(await tandemOk(a, 'cluster', 'status', '--json')) as ClusterStatus;
}

async function poll<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = FAILOVER_BOUND_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await f();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not happen within ${timeoutMs / 1000} s (last: ${String(last)})`);
}

const allAlive = (a: Agent, peers: string[]) => poll(`${a.node} sees ${peers.join(', ')} alive`, async () => {
  const st = await clusterStatus(a);
  return peers.every((p) => st.servers.find((s) => s.name === p)?.state === 'alive') && st;
});

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/** n1 the source, n2 and n3 its synchronous targets, in sync, with data written. */
async function mirrored(name: string) {
  const c = await cluster(name, ['n1', 'n2', 'n3']);
  const { n1, n2, n3 } = c.nodes as Record<'n1' | 'n2' | 'n3', Node>;
  for (const a of [n1, n2, n3]) await allAlive(a.agent, ['n1', 'n2', 'n3'].filter((x) => x !== a.agent.node));
  await tandemOk(n1.agent, 'create', tag, '--disk', n1.disk);
  for (const t of [n2, n3]) {
    await tandemOk(t.agent, 'accept', tag, '--disk', t.disk);
    await tandemOk(n1.agent, 'extend', tag, '--target', t.agent.node, '--address', t.agent.address, '--no-initial-sync');
  }
  await waitTargets(n1.agent, tag, inSync);
  return { ...c, n1, n2, n3 };
}

async function saveFlags(a: Agent, flags: Array<{ server: string; confirmFailoverFrom: string[]; blockResourceFailover: boolean }>): Promise<void> {
  await callAgent(agentLayout(a.home).controlSocket, 'resource.savedatabase', { database: { version: 1, resources: [], flags } });
}

describe('automatic failover (three agents, LCMHBEATTIME=1, LCMNUMHBEATS=3)', () => {
  afterEach(async () => {
    for (const a of running.splice(0)) await a.kill9();
  });

  it('kill -9 the source: n2 (priority 2) becomes source by itself, n3 follows it with a partial resync, both hold every write', async () => {
    const { n1, n2, n3 } = await mirrored('kill');
    await writeExport(n1.agent, tag, 'write -P 0x5a 1M 256k', 'write -P 0x6b 7M 64k');
    await waitTargets(n1.agent, tag, inSync);
    const dry = await tandemOk(n3.agent, 'failover', '--dry-run', 'n1');
    expect(dry).toContain('if n1 failed now (dry run, nothing done): quorum kept (2 of 3 servers, 2 needed)');
    expect(dry).toContain(`${tag}: no action: n1 failed; n2 takes over: n2 (priority 2) chosen: highest priority with an in-sync copy; n3 (priority 3) follows n2 as a target`);
    expect((await n2.agent.status(tag)).role).toBe('target'); // the dry run did nothing

    const killedAt = Date.now();
    await n1.agent.kill9();
    await waitStatus(n2.agent, tag, (m) => m.role === 'source' && m.state === 'in service', 'n2 in service', FAILOVER_BOUND_MS);
    const tookMs = Date.now() - killedAt;
    expect(tookMs).toBeGreaterThanOrEqual(2_000); // not before the peers could miss three beats
    expect(n2.agent.log()).toMatch(/cluster decision for datarep-ext3: in service: n1 failed; quorate \(2 of 3 servers, 2 needed\); n2 \(priority 2\) chosen/);

    const followed = await poll('n3 in sync with n2', async () => {
      const st = await n2.agent.status(tag);
      return st.targets.find((t) => t.node === 'n3' && inSync(t));
    }) as TargetStatus;
    expect(followed.resyncBytes).toBeLessThan(SIZE);
    expect((await n3.agent.status(tag))).toMatchObject({ role: 'target', source: 'n2', consistent: true });
    expect(sha256File(n2.disk)).toBe(sha256File(n3.disk));
    expect(readAt(n3.disk, 1024 * 1024, 256 * 1024).equals(Buffer.alloc(256 * 1024, 0x5a))).toBe(true);
    expect(readAt(n2.disk, 7 * 1024 * 1024, 64 * 1024).equals(Buffer.alloc(64 * 1024, 0x6b))).toBe(true);
    const st = await clusterStatus(n3.agent);
    expect(st.servers.find((s) => s.name === 'n1')).toMatchObject({ state: 'failed' });
    expect(st.servers.find((s) => s.name === 'n2')).toMatchObject({ state: 'alive' });
    expect(st.quorum).toMatchObject({ quorate: true, votes: 2, needed: 2 });
    // The new source takes writes, and n3 gets them.
    await writeExport(n2.agent, tag, 'write -P 0x7c 3M 4k');
    await poll('n3 in sync after a write on n2', async () => (await n2.agent.status(tag)).targets.find((t) => t.node === 'n3' && inSync(t)));
    expect(sha256File(n2.disk)).toBe(sha256File(n3.disk));
  }, 180_000);

  it('a graceful stop (SIGTERM) of the source is announced: stopped, never failed, no failover', async () => {
    const { n1, n2, n3 } = await mirrored('stop');
    expect(await n1.agent.stop()).toBe(0);
    const st = await poll('n2 sees n1 stopped', async () => {
      const s = await clusterStatus(n2.agent);
      return s.servers.find((x) => x.name === 'n1')?.state === 'stopped' && s;
    });
    expect(st.quorum).toMatchObject({ votes: 2, needed: 2 });
    // Well past the detection time, nothing happened, and the decision says why.
    await new Promise((r) => setTimeout(r, 5_000));
    for (const t of [n2, n3]) {
      expect((await t.agent.status(tag)).role).toBe('target');
      expect((await clusterStatus(t.agent)).servers.find((x) => x.name === 'n1')?.state).toBe('stopped');
    }
    expect((await clusterStatus(n2.agent)).decisions).toEqual([expect.objectContaining({ tag, kind: 'none', reason: 'n1 is stopped: no failover' })]);
  }, 120_000);

  it('Confirm Failover On: the failover waits; lk_confirmso -n blocks it; after the source returns and fails again, -y proceeds', async () => {
    const { n1, n2 } = await mirrored('confirm');
    await saveFlags(n2.agent, [{ server: 'n2', confirmFailoverFrom: ['n1'], blockResourceFailover: false }]);
    await n1.agent.kill9();
    const pending = await poll('a pending confirmation on n2', async () => (await clusterStatus(n2.agent)).pending[0]);
    expect(pending).toMatchObject({ tag, failed: 'n1' });
    expect(pending.secondsLeft).toBeGreaterThan(500); // CONFIRMSOTO 600 by default
    expect((await n2.agent.tandem('cluster', 'status')).stdout).toMatch(new RegExp(`pending confirmation: failover of ${tag} from n1, \\d+ s left \\(then CONFIRMSODEF=0, it proceeds\\): lk_confirmso -y -s n1 \\| lk_confirmso -n -s n1`));
    expect((await n2.agent.status(tag)).role).toBe('target');

    const no = await n2.agent.program('lk_confirmso', '-n', '-s', 'n1');
    expect(no.stdout).toBe(`failover of ${tag} from n1 blocked on n2\n`);
    await poll('the block recorded', async () => (await clusterStatus(n2.agent)).decisions.find((d) => d.reason.includes('blocked (lk_confirmso -n)')));
    expect((await n2.agent.status(tag)).role).toBe('target');
    const none = await n2.agent.program('lk_confirmso', '-y', '-s', 'n1');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no failover from n1 is waiting for confirmation on n2');

    // n1 returns: it is still the source (nobody took over), and its targets rejoin.
    const back = await startAgent(n1.agent.home, 'n1', n1.agent.port, FAST, { args: ['--heartbeat', `127.0.0.1:${n1.hb}`] });
    running.push(back);
    await waitTargets(back, tag, inSync, 60_000);
    await allAlive(n2.agent, ['n1', 'n3']);
    await back.kill9();
    await poll('a new pending confirmation on n2', async () => (await clusterStatus(n2.agent)).pending[0]);
    const yes = await n2.agent.tandem('confirmso', '-y', '-s', 'n1');
    expect(yes.stdout).toBe(`failover of ${tag} from n1 confirmed: it proceeds on n2\n`);
    await waitStatus(n2.agent, tag, (m) => m.role === 'source' && m.state === 'in service', 'n2 in service after -y', FAILOVER_BOUND_MS);
  }, 240_000);

  it('scenario 2: the only other copy is resyncing when the source dies: no failover, and cluster status says why', async () => {
    const c = await cluster('s2', ['n1', 'n2', 'n3']);
    const { n1, n2 } = c.nodes as Record<'n1' | 'n2', Node>;
    await allAlive(n1.agent, ['n2', 'n3']);
    fs.writeFileSync(n1.disk, Buffer.alloc(SIZE, 0x33));
    await tandemOk(n1.agent, 'create', tag, '--disk', n1.disk, '--resync-rate', String(512 * 1024));
    await tandemOk(n2.agent, 'accept', tag, '--disk', n2.disk);
    await tandemOk(n1.agent, 'extend', tag, '--target', 'n2', '--address', n2.agent.address);
    await waitTargets(n1.agent, tag, (t) => t.status === 'Resyncing' && t.percentSynced > 0);
    await allAlive(n2.agent, ['n1', 'n3']);
    await new Promise((r) => setTimeout(r, 1_500)); // a heartbeat of n1 carrying the resync's progress
    await n1.agent.kill9();
    const why = await poll('n2 explains why it does not take over', async () => (await clusterStatus(n2.agent)).decisions.find((d) => d.tag === tag && d.reason.startsWith('n1 failed')));
    expect(why.reason).toMatch(/^n1 failed; nobody takes over: n2 \(priority 2\) skipped: resyncing, \d+ % done; its copy is incomplete \(manual, scenario 2\); no failover: no surviving server holds a usable copy of what n1 served$/);
    expect((await n2.agent.tandem('cluster', 'status')).stdout).toContain(`${tag}: no action: n1 failed; nobody takes over: n2 (priority 2) skipped: resyncing`);
    expect((await n2.agent.status(tag)).role).toBe('target');
  }, 120_000);

  it('a peer with another CA\'s certificate is ignored: its heartbeats never count, it is declared failed', async () => {
    const dir = tempDir('auto-failover-ca');
    const hbA = await freePort();
    const hbM = await freePort();
    const alice = await startAgent(path.join(dir, 'alice'), 'alice', undefined, FAST, { args: ['--heartbeat', `127.0.0.1:${hbA}`] });
    running.push(alice);
    const mallory = await startAgent(path.join(dir, 'mallory'), 'mallory', undefined, FAST, { args: ['--heartbeat', `127.0.0.1:${hbM}`], security: await createClusterCa() });
    running.push(mallory);
    await tandemOk(alice, 'commpath', 'add', 'mallory', '--local', '127.0.0.1', '--remote', `127.0.0.1:${hbM}`);
    await tandemOk(mallory, 'commpath', 'add', 'alice', '--local', '127.0.0.1', '--remote', `127.0.0.1:${hbA}`);
    const st = await poll('alice declares mallory failed', async () => {
      const s = await clusterStatus(alice);
      return s.servers.find((x) => x.name === 'mallory' && x.state === 'failed') && s;
    });
    expect(st.servers.find((x) => x.name === 'mallory')!.paths).toEqual([expect.objectContaining({ state: 'down', lastHeartbeat: null })]);
    expect(alice.log()).toContain(`heartbeat to mallory on 127.0.0.1 -> 127.0.0.1:${hbM}: cannot connect to mallory at 127.0.0.1:${hbM}: the peer's certificate is not from this cluster's CA`);
    // Mallory retries every beat; the refusals are logged once, not every second.
    expect(alice.log().match(/heartbeat connection.* refused: /g)?.length ?? 0).toBeLessThanOrEqual(2);
  }, 60_000);

  it('bad settings are refused at agent start with the name and the fix', async () => {
    const home = tempDir('auto-failover-settings');
    const env = { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: '', LCMHBEATTIME: '0' };
    const r = await run(process.execPath, [AGENT_BUNDLE, 'run', '--node', 'n1', '--replication', '127.0.0.1:0', '--insecure-plaintext'], { env, timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toContain('LCMHBEATTIME=0 (environment) is below the minimum 1; set LCMHBEATTIME to the seconds between heartbeats, at least 1 (default 5)');
    fs.mkdirSync(path.join(home, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(home, 'etc', 'tandem.conf'), 'QUORUM_MODE=majorty\n');
    const r2 = await run(process.execPath, [AGENT_BUNDLE, 'run', '--node', 'n1', '--replication', '127.0.0.1:0', '--insecure-plaintext'], { env: { ...env, LCMHBEATTIME: '' }, timeoutMs: 30_000 });
    expect(r2.code).toBe(1);
    expect(r2.stdout + r2.stderr).toContain(`QUORUM_MODE=majorty (${path.join(home, 'etc', 'tandem.conf')}:1) is unknown; set QUORUM_MODE to majority (default), witness (with WITNESS=HOST:PORT) or none (only with FENCE_CMD)`);
  }, 60_000);
});
