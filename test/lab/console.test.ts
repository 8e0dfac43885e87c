// The console backend against real nodes: network-namespace lab nodes with their own sshd. Deploys the
// agent over SSH (root with a key, and a sudo login with a password), upgrades it, drives a mirror
// through the console API, cuts the SSH connections while replication goes on, and checks each bad
// case ends in a clear error with nothing half-installed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterView, ConsoleEvent, DeployProgress, ServerDefinitionInput } from '../../common/console-api.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { ConsoleBackend } from '../../electron/backend/console-backend.js';
import { sshServer } from '../../electron/backend/ssh-server.js';
import { AGENT_BUNDLE, tempDir } from '../helpers/tools.js';
import { createLab, run, type Lab, type LabNode } from './lab.js';

const isRoot = process.getuid?.() === 0;
const TAG = 'labvol';
const ADMIN_PASSWORD = 'admin-lab-pw-7';
const CA_PASSPHRASE = 'cluster-ca-passphrase';

let lab: Lab;
let dataDir: string;
let backend: ConsoleBackend;
const events: ConsoleEvent[] = [];
const hostKeyPrompts: string[] = [];
/** Which lab node each console server name stands for (to check the fingerprint shown). */
const nodeOf = new Map<string, LabNode>();

function newBackend(agentBundle: string): ConsoleBackend {
  const b = new ConsoleBackend({ dataDir, agentBundle, sshConnection: sshServer });
  // The user's side of every question: compare the fingerprint with the node's own, give the secrets.
  b.onEvent((e) => {
    events.push(e);
    if (e.type !== 'prompt') return;
    const p = e.prompt;
    const node = nodeOf.get(p.server) ?? lab.nodes.find((n) => n.name === p.server);
    if (p.kind === 'host-key') {
      hostKeyPrompts.push(`${p.server} ${p.fingerprint}`);
      void b.answerPrompt(p.id, { accept: p.fingerprint === node?.hostKeyFingerprint });
    } else if (p.kind === 'passphrase') void b.answerPrompt(p.id, { secret: CA_PASSPHRASE });
    else if (p.kind === 'password' || p.kind === 'sudo-password') void b.answerPrompt(p.id, { secret: p.server === 'wrongpw' ? 'not-the-password' : ADMIN_PASSWORD });
    else void b.answerPrompt(p.id, { answers: null });
  });
  return b;
}

const rootServer = (n: LabNode, name = n.name): ServerDefinitionInput => ({
  name, ssh: { host: n.address, user: 'root', auth: ['key'], keyFile: lab.clientKey.privateKeyFile, keepaliveSeconds: 2 },
});

function progressOf(server: string): DeployProgress[] {
  return events.flatMap((e) => (e.type === 'deploy' && e.progress.server === server ? [e.progress] : []));
}

async function waitCluster(ok: (c: ClusterView) => boolean, what: string, timeoutMs = 60_000): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await backend.cluster();
    if (ok(c)) return c;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(c.servers.map((s) => [s.name, s.connection, s.mirrors.map((m) => m.targets.map((t) => t.status))]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sourceOf = (c: ClusterView): MirrorStatus | undefined => c.servers.find((s) => s.name === 'node1')?.mirrors.find((m) => m.tag === TAG);
const inSync = (m: MirrorStatus | undefined) => !!m && m.targets.length === 1 && m.targets[0]!.status === 'Fully Operational' && m.targets[0]!.dirtyChunks === 0 && m.targets[0]!.queueDepth === 0;

async function writeExport(n: LabNode, ...commands: string[]): Promise<void> {
  const r = await n.exec(`timeout 30 qemu-io -f raw ${commands.map((c) => `-c '${c}'`).join(' ')} 'nbd+unix:///${TAG}?socket=/run/tandem/${TAG}.nbd.sock'`, { timeoutMs: 40_000 });
  if (r.code !== 0) throw new Error(`qemu-io on ${n.name}: ${r.stderr}`);
}

const sha = (disk: string) => crypto.createHash('sha256').update(fs.readFileSync(disk)).digest('hex');

describe.skipIf(!isRoot)('the console over SSH, against lab nodes', () => {
  beforeAll(async () => {
    dataDir = tempDir('console-lab');
    lab = await createLab({
      nodes: 5, disksPerNode: 1, diskMiB: 64,
      users: [{ name: 'admin', password: ADMIN_PASSWORD, sudo: 'password' }],
      nodeOptions: { 4: { withoutNode: true }, 5: { optSizeKiB: 256 } },
    });
    backend = newBackend(AGENT_BUNDLE);
  }, 90_000);

  afterAll(async () => {
    await backend?.close();
    await lab?.teardown();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('connects after the user accepts each host key (fingerprint shown), with a key as root and with a password + sudo', async () => {
    const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    await backend.addServer(rootServer(n1));
    await backend.addServer(rootServer(n2));
    await backend.addServer({ name: 'node3', ssh: { host: n3.address, user: 'admin', auth: ['password'], keepaliveSeconds: 2 } });
    for (const name of ['node1', 'node2', 'node3']) {
      const v = await backend.connect(name);
      expect(v.connection.state).toBe('connected');
      expect(v.connection.message).toContain('the Tandem agent is not installed: deploy it');
    }
    expect(hostKeyPrompts.sort()).toEqual([n1, n2, n3].map((n) => `${n.name} ${n.hostKeyFingerprint}`).sort());
    expect(fs.readFileSync(path.join(dataDir, 'known_hosts'), 'utf8')).toContain(n1.hostKeyPublic.split(' ')[1]);
  });

  it('deploys to three nodes step by step; the agents run with the manual CLIs on the PATH', async () => {
    for (const name of ['node1', 'node2', 'node3']) {
      const v = await backend.deploy(name);
      expect(v.agent).toEqual({ version: '0.1.0', running: true });
      const steps = progressOf(name).filter((p) => p.state === 'done').map((p) => p.step);
      expect(steps).toEqual(['check-os', 'check-node', 'upload', 'verify', 'install', 'certificate', 'start', 'check-version']);
      expect(progressOf(name).some((p) => p.step === 'upload' && p.done === p.total && (p.total ?? 0) > 0)).toBe(true);
    }
    const n3 = lab.nodes[2]!;
    const r = await n3.exec('ls /usr/local/sbin; stat -c %a /var/lib/tandem/tls/node.key; mirror_status nothing; echo rc=$?');
    expect(r.stdout).toMatch(/mirror_action[\s\S]*tandem\n/);
    expect(r.stdout).toContain('600');
    // The cluster CA key stays on the console, encrypted.
    expect(fs.readFileSync(path.join(dataDir, 'ca', 'ca.key'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(fs.existsSync(path.join(dataDir, 'secrets.json'))).toBe(false); // browser-mode backend: nothing remembered
  }, 180_000);

  it('drives a mirror through the console API; status arrives by the event stream', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    await backend.agentCall('node1', 'mirror.create', { tag: TAG, disk: n1.disks[0] });
    await backend.agentCall('node2', 'mirror.accept', { tag: TAG, disk: n2.disks[0] });
    const info = (await backend.agentCall('node2', 'agent.info', {})) as { replication: string };
    const port = info.replication.split(':').pop();
    await backend.agentCall('node1', 'mirror.extend', { tag: TAG, node: 'node2', address: `${n2.address}:${port}`, mode: 'sync' });
    await writeExport(n1, 'write -P 0x3c 0 8M', 'write -P 0xc3 40M 4M');
    await waitCluster((c) => inSync(sourceOf(c)), 'node1 → node2 Fully Operational');
    expect(sha(n2.disks[0]!)).toBe(sha(n1.disks[0]!));
  }, 120_000);

  it('cut SSH: replication goes on without the console, and the console reconnects by itself', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    // Kill the per-connection sshd processes (the listener stays): the console's connections drop.
    const mark = events.length;
    for (const n of [n1, n2]) {
      const killed = await run('pkill', ['-KILL', '-P', String(n.sshd.pid())]);
      expect(killed.code, `no SSH session of the console's on ${n.name} to cut`).toBe(0);
    }
    // The console saw each connection drop (it may be back already, so look at what it reported since).
    const sawDrop = (name: string) => events.slice(mark).some((e) => e.type === 'cluster' && e.cluster.servers.some((s) => s.name === name && s.connection.state !== 'connected'));
    const dropDeadline = Date.now() + 30_000;
    while (!(sawDrop('node1') && sawDrop('node2'))) {
      if (Date.now() > dropDeadline) throw new Error(`the console never reported the cut: node1 ${sawDrop('node1')}, node2 ${sawDrop('node2')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await writeExport(n1, 'write -P 0x77 20M 6M');
    const status = await n1.exec(`tandem status ${TAG} --json`);
    expect(status.code, status.stderr).toBe(0);
    const deadline = Date.now() + 30_000;
    while (!inSync((JSON.parse((await n1.exec(`tandem status ${TAG} --json`)).stdout) as MirrorStatus[])[0])) {
      if (Date.now() > deadline) throw new Error('the mirror did not get back in sync');
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(sha(n2.disks[0]!)).toBe(sha(n1.disks[0]!));
    const back = await waitCluster((c) => ['node1', 'node2'].every((name) => {
      const s = c.servers.find((x) => x.name === name)!;
      return s.connection.state === 'connected' && s.agent.running;
    }) && inSync(sourceOf(c)), 'the console to reconnect and see the mirror in sync', 60_000);
    expect(sourceOf(back)!.targets[0]!.node).toBe('node2');
  }, 120_000);

  it('upgrade: a new agent version replaces the old, the mirror and its data stay', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const dir = tempDir('upgrade-bundle');
    const bundle = path.join(dir, 'tandem-agent.cjs');
    const text = fs.readFileSync(AGENT_BUNDLE, 'utf8').replace('TANDEM_VERSION = "0.1.0"', 'TANDEM_VERSION = "0.1.1-lab"');
    fs.writeFileSync(bundle, text);
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ file: 'tandem-agent.cjs', version: '0.1.1-lab', sha256: crypto.createHash('sha256').update(text).digest('hex'), size: Buffer.byteLength(text) }));
    await backend.close();
    backend = newBackend(bundle);
    for (const name of ['node1', 'node2']) await backend.connect(name);
    for (const name of ['node2', 'node1']) expect((await backend.deploy(name)).agent.version).toBe('0.1.1-lab');
    await writeExport(n1, 'write -P 0x99 50M 2M');
    await waitCluster((c) => inSync(sourceOf(c)), 'the mirror in sync after the upgrade', 60_000);
    expect(sha(n2.disks[0]!)).toBe(sha(n1.disks[0]!));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('a corrupted upload is refused and the installed agent keeps running', async () => {
    const dir = tempDir('corrupt-bundle');
    const bundle = path.join(dir, 'tandem-agent.cjs');
    fs.copyFileSync(AGENT_BUNDLE, bundle);
    fs.copyFileSync(path.join(path.dirname(AGENT_BUNDLE), 'manifest.json'), path.join(dir, 'manifest.json'));
    fs.appendFileSync(bundle, '\n// changed after the build\n');
    await backend.close();
    backend = newBackend(bundle);
    await backend.connect('node3');
    await expect(backend.deploy('node3')).rejects.toThrow(/the agent uploaded to node3 is corrupted: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}.*nothing was installed/);
    const r = await lab.nodes[2]!.exec('ls -a /opt/tandem; echo \'{"jsonrpc":"2.0","id":1,"method":"agent.info"}\' | tandem ctl');
    expect(r.stdout).not.toContain('.upload');
    expect(r.stdout).toContain('"version":"0.1.0"');
    fs.rmSync(dir, { recursive: true, force: true });
    await backend.close();
    backend = newBackend(AGENT_BUNDLE);
  }, 120_000);

  it('a node without Node.js, a full disk, an unreachable host, a wrong password: clear errors, nothing half-installed', async () => {
    const [, , , n4, n5] = lab.nodes as LabNode[];
    await backend.addServer(rootServer(n4!, 'node4'));
    await backend.connect('node4');
    await expect(backend.deploy('node4')).rejects.toThrow(/Node.js (is not installed|on node4 cannot run).*the agent needs Node.js 18 or newer. Install it/);
    expect((await n4!.exec('ls -A /opt/tandem')).stdout.trim()).toBe('');

    await backend.addServer(rootServer(n5!, 'node5'));
    await backend.connect('node5');
    await expect(backend.deploy('node5')).rejects.toThrow(/the upload to node5 failed: no space left in \/opt\/tandem.*Nothing was installed/);
    expect((await n5!.exec('ls -A /opt/tandem; ls /usr/local/sbin')).stdout.trim()).toMatch(/^(bin)?$/);

    await backend.addServer({ name: 'ghost', ssh: { host: lab.bridgeAddress.replace(/\d+$/, '250'), user: 'root', auth: ['key'], keyFile: lab.clientKey.privateKeyFile } });
    await expect(backend.connect('ghost')).rejects.toThrow(/ghost: cannot reach 10\.77\.\d+\.250:22/);

    nodeOf.set('wrongpw', lab.nodes[2]!);
    await backend.addServer({ name: 'wrongpw', ssh: { host: lab.nodes[2]!.address, user: 'admin', auth: ['password'] } });
    await expect(backend.connect('wrongpw')).rejects.toThrow(/wrongpw: .*(authentication|password)/i);
    expect((await backend.cluster()).servers.find((s) => s.name === 'wrongpw')!.connection.state).toBe('failed');
  }, 120_000);

  it('uninstall removes the agent and keeps the state and the disk data', async () => {
    const n2 = lab.nodes[1]!;
    const before = sha(n2.disks[0]!);
    await backend.connect('node2');
    await backend.uninstall('node2');
    const r = await n2.exec('ls -A /opt/tandem 2>/dev/null; echo ---; ls /var/lib/tandem; echo ---; ls /usr/local/sbin');
    const [opt, state, sbin] = r.stdout.split('---\n');
    expect(opt!.trim()).toBe('');
    expect(state).toContain('mirrors.json');
    expect(sbin!.trim()).toBe('');
    expect(sha(n2.disks[0]!)).toBe(before);
  }, 60_000);
});
