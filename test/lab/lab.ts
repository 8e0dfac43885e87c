// A cluster on one Linux machine, as root (DESIGN "Test lab"). Each node is a network namespace joined
// by a veth pair to a bridge in the host namespace, with its own address in a /24 private to the lab;
// it runs a real sshd (./sshd.ts) in its own mount namespace, where per-node directories are
// bind-mounted over the agent's real default paths, so an agent started through ssh with no
// TANDEM_HOME keeps to its node. Disks are loop devices over sparse files. Faults are real: the link
// goes down, tc shapes it, kill -9 ends the agent.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSshd, type Sshd, type SshdUser } from './sshd.js';

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface LabNodeOptions {
  /** Hide /usr/bin/node (and every other node on PATH) in this node: a node without Node.js. */
  withoutNode?: boolean;
  /** /opt/tandem is a tmpfs of this size (KiB): the disk fills up during an upload. */
  optSizeKiB?: number;
}

export interface LabOptions {
  /** 1–8. */
  nodes: number;
  /** Loop devices per node (default 2). */
  disksPerNode?: number;
  /** Size of each disk (default 64 MiB; sparse). */
  diskMiB?: number;
  /** Further sshd users; root is always there and always accepts the lab's client key. */
  users?: SshdUser[];
  /** Per node, keyed by its number (1 for node1). */
  nodeOptions?: Record<number, LabNodeOptions>;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
}

export interface LabNode {
  /** 1-based. */
  index: number;
  /** 'node1' … (also its host name inside the node). */
  name: string;
  netns: string;
  address: string;
  sshPort: number;
  /** Loop devices (/dev/loopN) that belong to this node. Loop devices are global: every node sees all. */
  disks: string[];
  /** The veth end in the host namespace (what cutLink and netem act on). */
  veth: string;
  hostKeyPublic: string;
  hostKeyFingerprint: string;
  sshd: Sshd;
  /** The node's directory in the lab's temp dir (its /var/lib/tandem etc. live under root/). */
  dir: string;
  /** Runs `sh -c command` inside the node (its network and mount namespaces), as root. Never throws for a non-zero exit. */
  exec(command: string, opts?: ExecOptions): Promise<RunResult>;
}

export interface NetemOptions {
  delayMs?: number;
  lossPercent?: number;
  rateMbit?: number;
}

export interface Lab {
  /** 1–250: the lab's number in names (tlab<id>-n1) and in its subnet (10.77.<id>.0/24). */
  id: number;
  dir: string;
  bridge: string;
  bridgeAddress: string;
  nodes: LabNode[];
  clientKey: { privateKeyFile: string; publicKey: string };
  /** A known_hosts file with every node's host key. */
  knownHostsFile: string;
  /** Arguments for the OpenSSH client to log in as `user` (default root), checking the host key. */
  sshArgs(node: NodeRef, user?: string): string[];
  /** Runs `command` on the node through the real ssh client as root. */
  ssh(node: NodeRef, command: string, opts?: ExecOptions): Promise<RunResult>;
  node(ref: NodeRef): LabNode;
  cutLink(node: NodeRef): Promise<void>;
  restoreLink(node: NodeRef): Promise<void>;
  /** Delay, loss and rate on the node's link (both directions of the host-side veth); null clears. */
  netem(node: NodeRef, options: NetemOptions | null): Promise<void>;
  /** Process ids of this node's agent daemons (`… tandem-agent[.cjs] run …` in its namespaces). */
  agentPids(node: NodeRef): number[];
  /** kill -9 of this node's agent daemon(s) only; resolves with how many were killed. */
  killAgent(node: NodeRef): Promise<number>;
  teardown(): Promise<void>;
}

export type NodeRef = LabNode | string | number;

const PREFIX = 'tlab';
const SUBNET_BASE = '10.77';
const NODE_PATHS = ['/var/lib/tandem', '/run/tandem', '/opt/tandem', '/etc/tandem', '/usr/local/sbin'];
const labDirOf = (id: number) => path.join(os.tmpdir(), `tandem-${PREFIX}${id}`);

/** Runs a program with a bound time; resolves with its output and exit code. */
export function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
        const killed = err && (err as { killed?: boolean }).killed;
        resolve({ stdout, stderr: killed ? `${stderr}\n(${cmd} timed out after ${opts.timeoutMs ?? 60_000} ms)` : stderr, code: err ? ((err as { code?: number }).code ?? 124) : 0 });
      });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

async function ok(cmd: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}${r.stdout.trim() ? ` (stdout: ${r.stdout.trim()})` : ''}`);
  return r.stdout;
}

const quiet = (cmd: string, args: string[]) => run(cmd, args, { timeoutMs: 15_000 }).catch(() => null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readInt(file: string): number | null {
  try {
    const n = parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

async function netnsNames(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list'], { timeoutMs: 10_000 });
  return r.stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter(Boolean);
}

async function linkNames(): Promise<string[]> {
  const r = await run('ip', ['-o', 'link', 'show'], { timeoutMs: 10_000 });
  return r.stdout.split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '').filter(Boolean);
}

/** Loop devices whose backing file lies in a lab's temp dir: [device, backing file]. */
async function labLoopDevices(id?: number): Promise<Array<[string, string]>> {
  const r = await run('losetup', ['-l', '-n', '--raw', '-O', 'NAME,BACK-FILE'], { timeoutMs: 10_000 });
  const marker = id === undefined ? `/tandem-${PREFIX}` : `/tandem-${PREFIX}${id}/`;
  return r.stdout.split('\n').map((l) => {
    const i = l.indexOf(' ');
    return [l.slice(0, i), l.slice(i + 1)] as [string, string];
  }).filter(([dev, back]) => dev && back.includes(marker) && (id !== undefined || /\/tandem-tlab\d+\//.test(back)));
}

/** Every process whose network namespace is `netns`, or whose mount namespace is `mntNs` (a /proc/PID/ns/mnt link text). */
function processesIn(netns: string | null, mntNs: string | null): number[] {
  const pids = new Set<number>();
  if (netns) try {
    const out = execFileSync('ip', ['netns', 'pids', netns], { timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    for (const p of out.split(/\s+/)) if (p) pids.add(Number(p));
  } catch {
    // no such namespace
  }
  if (mntNs) {
    for (const e of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        if (fs.readlinkSync(`/proc/${e}/ns/mnt`) === mntNs) pids.add(Number(e));
      } catch {
        // gone
      }
    }
  }
  pids.delete(process.pid);
  return [...pids];
}

async function killAndWait(pids: number[], timeoutMs = 5_000): Promise<void> {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const deadline = Date.now() + timeoutMs;
  // A killed process stays a zombie until its parent reaps it; those hold nothing that matters here.
  const running = (p: number) => {
    try {
      return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  while (pids.some(running) && Date.now() < deadline) await sleep(50);
}

async function tearDownId(id: number, mntNamespaces: string[] = []): Promise<void> {
  const tag = `${PREFIX}${id}`;
  const namespaces = (await netnsNames()).filter((n) => n.startsWith(`${tag}-`));
  const pids = new Set<number>();
  for (const ns of namespaces) for (const p of processesIn(ns, null)) pids.add(p);
  for (const m of mntNamespaces) for (const p of processesIn(null, m)) pids.add(p);
  await killAndWait([...pids]);
  for (const [dev] of await labLoopDevices(id)) await quiet('losetup', ['-d', dev]);
  for (const ns of namespaces) await quiet('ip', ['netns', 'del', ns]);
  for (const l of await linkNames()) if (l.startsWith(tag) && /^tlab\d+(br|v\d+)$/.test(l) && l.match(/^tlab(\d+)/)?.[1] === String(id)) await quiet('ip', ['link', 'del', l]);
  fs.rmSync(labDirOf(id), { recursive: true, force: true });
  // A loop device still open while it was detached goes away when it is closed: wait for that.
  const deadline = Date.now() + 5_000;
  while ((await labLoopDevices(id)).length > 0 && Date.now() < deadline) await sleep(100);
}

/**
 * Removes what crashed earlier labs left: tlab* namespaces (and their processes), bridges, veths,
 * loop devices over lab disks and temp dirs. A lab whose owning process is still alive is left alone.
 */
export async function cleanupStaleLabs(): Promise<number[]> {
  const ids = new Set<number>();
  for (const n of await netnsNames()) {
    const m = /^tlab(\d+)-/.exec(n);
    if (m) ids.add(Number(m[1]));
  }
  for (const l of await linkNames()) {
    const m = /^tlab(\d+)(br|v\d+)$/.exec(l);
    if (m) ids.add(Number(m[1]));
  }
  for (const [, back] of await labLoopDevices()) {
    const m = /\/tandem-tlab(\d+)\//.exec(back);
    if (m) ids.add(Number(m[1]));
  }
  for (const e of fs.readdirSync(os.tmpdir())) {
    const m = /^tandem-tlab(\d+)$/.exec(e);
    if (m) ids.add(Number(m[1]));
  }
  const removed: number[] = [];
  for (const id of ids) {
    const owner = readInt(path.join(labDirOf(id), 'owner.pid'));
    if (owner !== null && owner !== process.pid && alive(owner)) continue;
    if (owner === process.pid) continue; // a live lab of this very process
    await tearDownId(id);
    removed.push(id);
  }
  return removed;
}

/** Claims a free lab number: its temp dir is created atomically and holds the owner's pid. */
async function claimId(): Promise<number> {
  const namespaces = await netnsNames();
  const links = await linkNames();
  const routes = await run('ip', ['-4', 'route', 'show'], { timeoutMs: 10_000 });
  for (let id = 1; id <= 250; id++) {
    if (namespaces.some((n) => n.startsWith(`${PREFIX}${id}-`)) || links.some((l) => new RegExp(`^${PREFIX}${id}(br|v\\d)`).test(l))) continue;
    if (routes.stdout.includes(`${SUBNET_BASE}.${id}.`)) continue;
    try {
      fs.mkdirSync(labDirOf(id), { mode: 0o755 });
    } catch {
      continue;
    }
    fs.writeFileSync(path.join(labDirOf(id), 'owner.pid'), String(process.pid));
    return id;
  }
  throw new Error('no free lab number (1–250): tear down old labs (npm run lab cleans stale ones)');
}

/** The node programs sh would find on PATH (and what their links resolve to). */
function nodeBinaries(): string[] {
  const out = new Set<string>();
  for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    const p = path.join(dir, 'node');
    try {
      if (!fs.statSync(p).isFile()) continue;
      // /bin is often a link to /usr/bin: mount over the real file once.
      out.add(fs.realpathSync(p));
    } catch {
      // not there
    }
  }
  return [...out];
}

/** tbf needs a bucket of at least rate/HZ: 10 ms of traffic, and never under 16 KiB. */
function tbfBurstKiB(rateMbit: number): number {
  return Math.max(16, Math.ceil((rateMbit * 1e6) / 8 / 100 / 1024));
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function createLab(options: LabOptions): Promise<Lab> {
  const count = options.nodes;
  if (!Number.isInteger(count) || count < 1 || count > 8) throw new Error(`nodes must be 1–8, not ${count}`);
  if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, loop devices, mounts)');
  const disksPerNode = options.disksPerNode ?? 2;
  const diskMiB = options.diskMiB ?? 64;
  await cleanupStaleLabs();
  const id = await claimId();
  const dir = labDirOf(id);
  const tag = `${PREFIX}${id}`;
  const bridge = `${tag}br`;
  const bridgeAddress = `${SUBNET_BASE}.${id}.1`;
  const mntNamespaces: string[] = [];
  let tornDown = false;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    for (const n of nodes) await n.sshd.stop().catch(() => undefined);
    await tearDownId(id, mntNamespaces);
  };
  const nodes: LabNode[] = [];
  try {
    // Client key.
    const privateKeyFile = path.join(dir, 'client_key');
    await ok('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `tandem-lab-${id}`, '-f', privateKeyFile]);
    const publicKey = fs.readFileSync(privateKeyFile + '.pub', 'utf8').trim();
    const users: SshdUser[] = [...(options.users ?? [])];
    const root = users.find((u) => u.name === 'root');
    if (root) root.authorizedKeys = [...(root.authorizedKeys ?? []), publicKey];
    else users.unshift({ name: 'root', authorizedKeys: [publicKey] });

    // Bridge.
    await ok('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await ok('ip', ['addr', 'add', `${bridgeAddress}/24`, 'dev', bridge]);
    await ok('ip', ['link', 'set', bridge, 'up']);

    const hosts = ['127.0.0.1 localhost', `${bridgeAddress} lab-host`, ...Array.from({ length: count }, (_, i) => `${SUBNET_BASE}.${id}.${11 + i} node${i + 1}`)].join('\n') + '\n';
    const binaries = nodeBinaries();

    const makeNode = async (index: number): Promise<LabNode> => {
      const name = `node${index}`;
      const netns = `${tag}-n${index}`;
      const veth = `${tag}v${index}`;
      const address = `${SUBNET_BASE}.${id}.${10 + index}`;
      const nodeDir = path.join(dir, name);
      const nodeOptions = options.nodeOptions?.[index] ?? {};
      // Network: namespace, veth to the bridge, address.
      await ok('ip', ['netns', 'add', netns]);
      await ok('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
      await ok('ip', ['link', 'set', veth, 'master', bridge, 'up']);
      await ok('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
      await ok('ip', ['-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      await ok('ip', ['-n', netns, 'link', 'set', 'eth0', 'up']);
      // Disks.
      const disks: string[] = [];
      fs.mkdirSync(path.join(nodeDir, 'disks'), { recursive: true });
      for (let d = 1; d <= disksPerNode; d++) {
        const file = path.join(nodeDir, 'disks', `disk${d}.img`);
        fs.writeFileSync(file, '');
        fs.truncateSync(file, diskMiB * 1024 * 1024);
        disks.push((await ok('losetup', ['-f', '--show', file])).trim());
      }
      // Its own copies of the agent's default paths.
      const binds: Array<[string, string]> = [];
      for (const p of NODE_PATHS) {
        const src = path.join(nodeDir, 'root', p);
        fs.mkdirSync(src, { recursive: true });
        if (!(p === '/opt/tandem' && nodeOptions.optSizeKiB)) binds.push([src, p]);
      }
      fs.writeFileSync(path.join(nodeDir, 'hosts'), hosts);
      fs.writeFileSync(path.join(nodeDir, 'hostname'), `${name}\n`);
      binds.push([path.join(nodeDir, 'hosts'), '/etc/hosts'], [path.join(nodeDir, 'hostname'), '/etc/hostname']);
      const setup: string[] = [];
      if (nodeOptions.optSizeKiB) setup.push(`mkdir -p /opt/tandem; mount -t tmpfs -o size=${Math.ceil(nodeOptions.optSizeKiB)}k,mode=0755 tandem-opt /opt/tandem`);
      if (nodeOptions.withoutNode) for (const b of binaries) setup.push(`mount --bind /dev/null ${shq(b)}`);
      const sshd = await startSshd({ dir: path.join(nodeDir, 'sshd'), netns, listenAddress: address, port: 22, users, binds, setup, hostname: name });
      const pid = sshd.pid();
      mntNamespaces.push(fs.readlinkSync(`/proc/${pid}/ns/mnt`));
      const node: LabNode = {
        index, name, netns, address, sshPort: 22, disks, veth, sshd, dir: nodeDir,
        get hostKeyPublic() {
          return sshd.hostKeyPublic;
        },
        get hostKeyFingerprint() {
          return sshd.hostKeyFingerprint;
        },
        exec: (command, opts = {}) => run('nsenter', ['-t', String(sshd.pid()), '-m', '-n', '-u', '--wd=/', 'sh', '-c', command], {
          ...opts,
          env: opts.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' },
        }),
      };
      return node;
    };
    for (const n of await Promise.all(Array.from({ length: count }, (_, i) => makeNode(i + 1)))) nodes.push(n);

    const knownHostsFile = path.join(dir, 'known_hosts');
    const writeKnownHosts = () => fs.writeFileSync(knownHostsFile, nodes.map((n) => `${n.address} ${n.hostKeyPublic}\n${n.name} ${n.hostKeyPublic}`).join('\n') + '\n');
    writeKnownHosts();

    const nodeOf = (ref: NodeRef): LabNode => {
      const n = typeof ref === 'object' ? ref : typeof ref === 'number' ? nodes[ref - 1] : nodes.find((x) => x.name === ref || x.address === ref);
      if (!n) throw new Error(`no node ${String(typeof ref === 'object' ? ref.name : ref)} in lab ${id}`);
      return n;
    };
    const sshArgs = (ref: NodeRef, user = 'root') => {
      const n = nodeOf(ref);
      writeKnownHosts(); // host keys may have been rotated
      return ['-i', privateKeyFile, '-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes',
        '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR', '-p', String(n.sshPort), `${user}@${n.address}`];
    };
    // Nodes reach each other over the bridge (br_netfilter passes bridged frames to iptables: a
    // FORWARD policy of DROP, as Docker sets, would cut them off). Checked once, with a bounded wait.
    if (nodes.length > 1) {
      const a = nodes[0]!;
      const b = nodes[1]!;
      const probe = `exec 3<>/dev/tcp/${b.address}/22`;
      const r = await a.exec(`i=0; while [ $i -lt 30 ]; do timeout 2 bash -c '${probe}' 2>/dev/null && exit 0; i=$((i+1)); sleep 0.1; done; exit 1`, { timeoutMs: 15_000 });
      if (r.code !== 0) {
        throw new Error(`${a.name} cannot reach ${b.name} (${b.address}:22) across bridge ${bridge}. If /proc/sys/net/bridge/bridge-nf-call-iptables is 1, iptables' FORWARD chain sees bridged traffic: allow it (iptables -I FORWARD -i ${bridge} -o ${bridge} -j ACCEPT) or set the sysctl to 0`);
      }
    }
    // The PID namespace is the host's: every node sees every process, so "this node's" goes by namespace.
    const agentPids = (ref: NodeRef): number[] => {
      const n = nodeOf(ref);
      const mnt = fs.readlinkSync(`/proc/${n.sshd.pid()}/ns/mnt`);
      return processesIn(n.netns, mnt).filter((p) => {
        try {
          const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          return argv.some((a) => /tandem-agent(\.cjs)?$/.test(a)) && argv.includes('run') && !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'));
        } catch {
          return false;
        }
      });
    };
    const lab: Lab = {
      id, dir, bridge, bridgeAddress, nodes,
      clientKey: { privateKeyFile, publicKey },
      knownHostsFile,
      sshArgs,
      ssh: (ref, command, opts = {}) => run('ssh', [...sshArgs(ref), command], { timeoutMs: 60_000, ...opts }),
      node: nodeOf,
      async cutLink(ref) {
        await ok('ip', ['link', 'set', nodeOf(ref).veth, 'down']);
      },
      async restoreLink(ref) {
        await ok('ip', ['link', 'set', nodeOf(ref).veth, 'up']);
      },
      async netem(ref, o) {
        const n = nodeOf(ref);
        // Outgoing of the host-side veth is incoming of the node; the node's eth0 shapes what it sends.
        const devices: Array<string[]> = [['dev', n.veth], ['-n', n.netns, 'dev', 'eth0']];
        for (const d of devices) {
          const [pre, dev] = d[0] === '-n' ? [['-n', d[1]!], d.slice(2)] : [[], d];
          await quiet('tc', [...pre, 'qdisc', 'del', ...dev, 'root']);
          if (!o || (!o.delayMs && !o.lossPercent && !o.rateMbit)) continue;
          if (o.delayMs || o.lossPercent) {
            const args = [...pre, 'qdisc', 'add', ...dev, 'root', 'netem'];
            if (o.delayMs) args.push('delay', `${o.delayMs}ms`);
            if (o.lossPercent) args.push('loss', `${o.lossPercent}%`);
            if (o.rateMbit) args.push('rate', `${o.rateMbit}mbit`);
            const r = await run('tc', args, { timeoutMs: 10_000 });
            if (r.code !== 0) {
              throw new Error(`tc netem failed on ${n.name}: ${r.stderr.trim()}${/unknown/i.test(r.stderr) ? ' (this kernel has no sch_netem: CONFIG_NET_SCH_NETEM; only rateMbit works, through tbf)' : ''}`);
            }
          } else {
            // Rate alone: tbf, which kernels without netem usually still have.
            await ok('tc', [...pre, 'qdisc', 'add', ...dev, 'root', 'tbf', 'rate', `${o.rateMbit}mbit`, 'burst', `${tbfBurstKiB(o.rateMbit ?? 1)}kb`, 'latency', '400ms']);
          }
        }
      },
      agentPids,
      async killAgent(ref) {
        const victims = agentPids(ref);
        await killAndWait(victims);
        return victims.length;
      },
      teardown,
    };
    return lab;
  } catch (e) {
    await teardown().catch(() => undefined);
    throw e;
  }
}
