// bench/tls-transport: the replication transport's throughput over loopback with mutual TLS 1.3
// (agent/replication/transport.ts) against the anchor, the same transport in plain TCP
// (--insecure-plaintext), measured in the same run, rounds alternated. Sender here, receiver in a
// child process (as source and target agents are), 1 MiB writes with backpressure; the time runs
// from the first byte to the receiver's one-byte acknowledgement of the last. Ratios: median TLS
// MiB/s / median plain MiB/s, and median CPU seconds per GiB of both ends, TLS / plain (the CPU
// ratio holds up better than throughput on a machine shared with other work).
//
// Runs bundled, with plain node (not under tsx, which slowed plain TCP here by half, erratically).
//
// usage: npm run bench:tls-transport [-- --size-mib 1024 --rounds 3]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectReplication, createReplicationServer, loadNodeCredentials, type NodeCredentials } from '../agent/replication/transport.js';
import { createClusterCa, issueNodeCertificate, privateKeyPem } from '../common/pki.js';

const { values } = parseArgs({ options: {
  'size-mib': { type: 'string', default: '1024' }, rounds: { type: 'string', default: '3' },
  serve: { type: 'string' }, tls: { type: 'string' }, expect: { type: 'string' },
} });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** CPU seconds (user + system) this process used since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
};

/**
 * The receiver (child process): listens, prints its port, acknowledges with one byte once `expect`
 * bytes arrived, then prints the CPU seconds the connection cost it.
 */
function serve(tlsDir: string | undefined, expectBytes: number): void {
  const creds = tlsDir ? loadNodeCredentials(tlsDir) : null;
  const server = createReplicationServer({
    creds,
    onSocket: (socket) => {
      const cpu0 = process.cpuUsage();
      let n = 0;
      socket.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= expectBytes) {
          socket.end(Buffer.from([1]));
          process.stdout.write(`cpu ${cpuSince(cpu0)}\n`);
        }
      });
      socket.resume();
      socket.on('close', () => server.close());
    },
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as { port: number }).port}\n`));
}

async function install(dir: string, ca: Awaited<ReturnType<typeof createClusterCa>>, node: string): Promise<string> {
  const issued = await issueNodeCertificate(ca, node);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'node.crt'), issued.certPem);
  fs.writeFileSync(path.join(dir, 'node.key'), privateKeyPem(issued.key), { mode: 0o600 });
  return dir;
}

interface Result {
  mibs: number;
  /** CPU seconds of both ends per GiB moved. */
  cpuPerGiB: number;
}

/** One transfer of `bytes` to a fresh receiver in a child process. */
async function transfer(bytes: number, creds: NodeCredentials | null, serverDir: string | null): Promise<Result> {
  const args = [...process.execArgv, import.meta.filename, '--serve', '1', '--expect', String(bytes)];
  if (serverDir) args.push('--tls', serverDir);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  while (!/port (\d+)/.test(out)) {
    if (child.exitCode !== null) throw new Error(`receiver exited ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const port = Number(/port (\d+)/.exec(out)![1]);
  const { socket, ready } = connectReplication({ host: '127.0.0.1', port, expectedPeer: 'target', creds });
  await ready;
  const block = Buffer.alloc(1 << 20, 0x5a);
  const acked = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
  });
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
  }
  await acked;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const senderCpu = cpuSince(cpu0);
  socket.destroy();
  await exited;
  const receiverCpu = Number(/cpu ([\d.]+)/.exec(out)?.[1] ?? NaN);
  const gib = bytes / (1 << 30);
  return { mibs: bytes / (1 << 20) / seconds, cpuPerGiB: (senderCpu + receiverCpu) / gib };
}

async function main(): Promise<void> {
  const bytes = Number(values['size-mib']) * (1 << 20);
  const rounds = Number(values.rounds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-tls-'));
  try {
    const ca = await createClusterCa();
    const sourceCreds = loadNodeCredentials(await install(path.join(dir, 'source'), ca, 'source'));
    const targetDir = await install(path.join(dir, 'target'), ca, 'target');
    const plain: Result[] = [];
    const secure: Result[] = [];
    for (let i = 0; i < rounds; i++) {
      plain.push(await transfer(bytes, null, null));
      secure.push(await transfer(bytes, sourceCreds, targetDir));
    }
    const f = (xs: Result[], k: keyof Result, d: number) => xs.map((x) => x[k].toFixed(d)).join('/');
    const m = (xs: Result[], k: keyof Result) => median(xs.map((x) => x[k]));
    console.log(`# ${values['size-mib']} MiB over loopback, sender and receiver in two processes`);
    console.log(`# throughput: plain TCP ${f(plain, 'mibs', 0)} MiB/s, TLS 1.3 ${f(secure, 'mibs', 0)} MiB/s (medians ${m(plain, 'mibs').toFixed(0)} vs ${m(secure, 'mibs').toFixed(0)})`);
    console.log(`# CPU of both ends: plain TCP ${f(plain, 'cpuPerGiB', 2)} s/GiB, TLS 1.3 ${f(secure, 'cpuPerGiB', 2)} s/GiB`);
    console.log(`ratio tls-vs-plain-throughput ${(m(secure, 'mibs') / m(plain, 'mibs')).toFixed(2)}`);
    console.log(`ratio tls-vs-plain-cpu ${(m(secure, 'cpuPerGiB') / m(plain, 'cpuPerGiB')).toFixed(2)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (values.serve) serve(values.tls, Number(values.expect));
else await main();
