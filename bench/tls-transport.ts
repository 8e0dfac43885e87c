// bench/tls-transport: the replication transport's throughput over loopback with mutual TLS 1.3
// (agent/replication/transport.ts) against the anchor, the same transport in plain TCP
// (--insecure-plaintext), measured in the same run. Two rows: sender here and receiver in a child
// process (as source and target agents are), and both ends on this process's one thread (the CPU
// cost of both ends, with no scheduling between processes). 1 MiB writes with backpressure; the time
// runs from the first byte to the receiver's one-byte acknowledgement of the last.
// Ratio = median TLS MiB/s / median plain MiB/s.
//
// usage: npx tsx bench/tls-transport.ts [--size-mib 1024] [--rounds 3]
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

/** The receiver: listens, resolves with its port, acknowledges with one byte once `expect` bytes arrived. */
function serve(tlsDir: string | undefined, expectBytes: number): Promise<number> {
  const creds = tlsDir ? loadNodeCredentials(tlsDir) : null;
  const server = createReplicationServer({
    creds,
    onSocket: (socket) => {
      let n = 0;
      socket.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= expectBytes) socket.end(Buffer.from([1]));
      });
      socket.resume();
      socket.on('close', () => server.close());
    },
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

async function install(dir: string, ca: Awaited<ReturnType<typeof createClusterCa>>, node: string): Promise<string> {
  const issued = await issueNodeCertificate(ca, node);
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'ca.crt'), ca.certPem);
  fs.writeFileSync(path.join(dir, 'node.crt'), issued.certPem);
  fs.writeFileSync(path.join(dir, 'node.key'), privateKeyPem(issued.key), { mode: 0o600 });
  return dir;
}

/** One transfer of `bytes` to a fresh receiver in this process (one thread does both ends); MiB/s. */
async function transferHere(bytes: number, creds: NodeCredentials | null, serverDir: string | null): Promise<number> {
  return send(await serve(serverDir ?? undefined, bytes), bytes, creds);
}

/** One transfer of `bytes` to a fresh receiver in a child process; MiB/s. */
async function transfer(bytes: number, creds: NodeCredentials | null, serverDir: string | null): Promise<number> {
  const args = [...process.execArgv, import.meta.filename, '--serve', '1', '--expect', String(bytes)];
  if (serverDir) args.push('--tls', serverDir);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
  const mibs = await send(port, bytes, creds);
  await new Promise((r) => child.once('exit', r));
  return mibs;
}

async function send(port: number, bytes: number, creds: NodeCredentials | null): Promise<number> {
  const { socket, ready } = connectReplication({ host: '127.0.0.1', port, expectedPeer: 'target', creds });
  await ready;
  const block = Buffer.alloc(1 << 20, 0x5a);
  const t0 = process.hrtime.bigint();
  const acked = new Promise<void>((resolve, reject) => {
    socket.once('data', () => resolve());
    socket.once('error', reject);
  });
  for (let sent = 0; sent < bytes; sent += block.length) {
    if (!socket.write(block)) await new Promise((r) => socket.once('drain', r));
  }
  await acked;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  socket.destroy();
  return bytes / (1 << 20) / seconds;
}

async function main(): Promise<void> {
  const bytes = Number(values['size-mib']) * (1 << 20);
  const rounds = Number(values.rounds);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-bench-tls-'));
  try {
    const ca = await createClusterCa();
    const sourceCreds = loadNodeCredentials(await install(path.join(dir, 'source'), ca, 'source'));
    const targetDir = await install(path.join(dir, 'target'), ca, 'target');
    const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
    for (const [row, how] of [['two-processes', transfer], ['one-process', transferHere]] as const) {
      const plain: number[] = [];
      const secure: number[] = [];
      for (let i = 0; i < rounds; i++) {
        plain.push(await how(bytes, null, null));
        secure.push(await how(bytes, sourceCreds, targetDir));
      }
      console.log(`# ${row}, ${values['size-mib']} MiB over loopback: plain TCP ${f(plain)} MiB/s, TLS 1.3 ${f(secure)} MiB/s (medians ${median(plain).toFixed(0)} vs ${median(secure).toFixed(0)})`);
      console.log(`ratio tls-vs-plain-${row} ${(median(secure) / median(plain)).toFixed(2)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (values.serve) process.stdout.write(`port ${await serve(values.tls, Number(values.expect))}\n`);
else await main();
