// bench/failover: five kills of a mirror's source in a three-agent cluster on loopback (LCMHBEATTIME=1,
// LCMNUMHBEATS=3, so detection is 3 s); each time, the seconds from `kill -9` to the first write that
// succeeds on the new source's export. Prints the median and `ratio failover-over-detection <x>`.
// Agents run with --insecure-plaintext like the other benchmarks (heartbeats too): this measures
// detection and promotion, not TLS (bench/tls-transport.ts does).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundle, control, exec, freePort, median, targetsOf, waitFor } from './lib.js';
import type { ClusterStatus } from '../agent/cluster/manager.js';
import type { MirrorStatus } from '../common/mirror-status.js';

const HBEAT = 1;
const BEATS = 3;
const RUNS = 5;
const SIZE = 16 << 20;
const tag = 'bench-failover';

interface Node { node: string; home: string; port: number; hb: number; disk: string; child: ChildProcess }

async function start(dir: string, node: string): Promise<Node> {
  const home = path.join(dir, node);
  fs.mkdirSync(home, { recursive: true });
  const port = await freePort();
  const hb = await freePort();
  const disk = path.join(dir, `${node}.img`);
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, SIZE);
  const child = spawn(process.execPath, [bundle, 'run', '--node', node, '--replication', `127.0.0.1:${port}`, '--heartbeat', `127.0.0.1:${hb}`, '--insecure-plaintext'], {
    env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: '', LCMHBEATTIME: String(HBEAT), LCMNUMHBEATS: String(BEATS) }, stdio: 'ignore',
  });
  await waitFor(() => fs.existsSync(path.join(home, 'run', 'control.sock')), `agent ${node}`);
  return { node, home, port, hb, disk, child };
}

const call = (n: Node, method: string, params: Record<string, unknown> = {}) => control({ home: n.home, port: n.port, child: n.child, node: n.node }, method, params);
const writable = (n: Node) => exec('qemu-io', ['-f', 'raw', '-c', 'write -P 0x42 0 4k', `nbd+unix:///${tag}?socket=${path.join(n.home, 'run', `${tag}.nbd.sock`)}`]).then(() => true, () => false);

async function once(i: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-failover-${i}-`));
  const nodes = [await start(dir, 'n1'), await start(dir, 'n2'), await start(dir, 'n3')];
  try {
    for (const a of nodes) for (const b of nodes) if (a !== b) await call(a, 'cluster.commpath.add', { node: b.node, local: '127.0.0.1', remote: `127.0.0.1:${b.hb}` });
    for (const a of nodes) {
      await waitFor(async () => ((await call(a, 'cluster.status')) as ClusterStatus).servers.every((s) => s.state === 'this server' || s.state === 'alive'), `${a.node} sees everyone alive`, 60_000);
    }
    const [n1, n2, n3] = nodes as [Node, Node, Node];
    await call(n1, 'mirror.create', { tag, disk: n1.disk });
    for (const t of [n2, n3]) {
      await call(t, 'mirror.accept', { tag, disk: t.disk });
      await call(n1, 'mirror.extend', { tag, node: t.node, address: `127.0.0.1:${t.port}`, initialSync: 'none' });
    }
    await waitFor(async () => (await targetsOf({ home: n1.home, port: n1.port, child: n1.child, node: 'n1' }, tag)).every((t) => t.status === 'Fully Operational'), 'targets in sync', 60_000);
    // A beat or two so every heartbeat carries the in-sync state.
    await new Promise((r) => setTimeout(r, 2 * HBEAT * 1000));
    const t0 = performance.now();
    n1.child.kill('SIGKILL');
    await waitFor(async () => {
      const st = ((await call(n2, 'mirror.status', { tag })) as MirrorStatus[])[0];
      return st?.role === 'source' && st.state === 'in service' && (await writable(n2));
    }, 'n2 writable', 60_000, 50);
    return (performance.now() - t0) / 1000;
  } finally {
    for (const n of nodes) n.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(bundle)) throw new Error('run `npm run build` first');
  const detection = HBEAT * BEATS;
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = await once(i);
    times.push(s);
    console.log(`kill ${i + 1}: new source writable after ${s.toFixed(2)} s`);
  }
  const m = median(times);
  console.log(`detection LCMHBEATTIME=${HBEAT} x LCMNUMHBEATS=${BEATS} = ${detection} s`);
  console.log(`median kill-to-writable ${m.toFixed(2)} s over ${RUNS} kills (min ${Math.min(...times).toFixed(2)}, max ${Math.max(...times).toFixed(2)})`);
  console.log(`ratio failover-over-detection ${(m / detection).toFixed(2)}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
