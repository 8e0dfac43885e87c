// bench/nbd-export: fio (nbd engine) against our export and against `nbdkit file` on the same tmpfs
// file, in the same run, alternating servers round by round so drift on a shared machine hits both.
// Prints one line per row: `ratio <row> <ours/nbdkit>` (median of the rounds, higher is better).
//
// usage: npm run bench:nbd-export [-- --runtime 5 --rounds 3 --size-mib 512 --rows seqwrite-64k-qd16,...]
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds } from './lib.js';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '512' },
    /** Comma-separated rows to run; all by default. */
    rows: { type: 'string', default: '' },
  },
});
const ONLY = values.rows ? values.rows.split(',') : null;
const RUNTIME = Number(values.runtime);
const ROUNDS = Number(values.rounds);
const SIZE_MIB = Number(values['size-mib']);

const ROWS = [
  { row: 'seqwrite-64k-qd16', rw: 'write', bs: '64k', qd: 16 },
  { row: 'seqwrite-1m-qd16', rw: 'write', bs: '1M', qd: 16 },
  { row: 'randwrite-4k-qd32', rw: 'randwrite', bs: '4k', qd: 32 },
  { row: 'seqread-1m-qd16', rw: 'read', bs: '1M', qd: 16 },
] as const;

const repo = path.resolve(import.meta.dirname, '..');
/** The agent bundle to run; BENCH_AGENT_BUNDLE names another build (A/B comparisons of a change). */
const bundle = process.env.BENCH_AGENT_BUNDLE ?? path.join(repo, 'resources', 'agent', 'tandem-agent.cjs');

function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

async function waitForSocket(p: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(p)) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`no socket at ${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startServer(kind: 'ours' | 'nbdkit', file: string, socket: string): Promise<ChildProcess> {
  fs.rmSync(socket, { force: true });
  const child = kind === 'ours'
    ? spawn(process.execPath, [bundle, 'export', '--file', file, '--socket', socket], { stdio: 'ignore' })
    : spawn('nbdkit', ['--foreground', '--unix', socket, 'file', file], { stdio: 'ignore' });
  await waitForSocket(socket, child);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** MiB/s of one fio run, and the server's CPU seconds per GiB moved (ramp included in both CPU and bytes). */
async function fio(socket: string, rw: string, bs: string, qd: number, serverPid: number | undefined): Promise<{ mibs: number; cpu: number }> {
  const cpu0 = cpuSeconds(serverPid);
  const out = await exec('fio', [
    '--name=bench', '--ioengine=nbd', `--uri=nbd+unix:///?socket=${socket}`, `--rw=${rw}`, `--bs=${bs}`,
    `--iodepth=${qd}`, `--size=${SIZE_MIB}M`, '--time_based', `--runtime=${RUNTIME}`, '--ramp_time=1',
    '--output-format=json',
  ]);
  const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
  const side = rw.includes('read') ? job.read : job.write;
  const cpu = cpuSeconds(serverPid) - cpu0;
  // Bytes over the whole run, ramp included, estimated from the measured bandwidth.
  const gib = (side.bw_bytes * (RUNTIME + 1)) / 2 ** 30;
  return { mibs: side.bw_bytes / (1024 * 1024), cpu: cpu / gib };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  if (!fs.existsSync(bundle)) throw new Error('run `npm run build` first');
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'tandem-bench-'));
  const file = path.join(dir, 'disk.img');
  const socket = path.join(dir, 'nbd.sock');
  try {
    // Fill the file so reads move real data, not holes.
    await exec('dd', ['if=/dev/urandom', `of=${file}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    console.log(`# bench/nbd-export: ${os.cpus().length} cpus, ${SIZE_MIB} MiB tmpfs file, ${RUNTIME}s x ${ROUNDS} rounds per server per row`);
    console.log(`# node ${process.version}; ${(await exec('nbdkit', ['--version'])).trim()}; ${(await exec('fio', ['--version'])).trim()}`);
    for (const r of ROWS) {
      if (ONLY && !ONLY.includes(r.row)) continue;
      const results: Record<'ours' | 'nbdkit', number[]> = { ours: [], nbdkit: [] };
      const cpu: Record<'ours' | 'nbdkit', number[]> = { ours: [], nbdkit: [] };
      for (let round = 0; round < ROUNDS; round++) {
        for (const kind of round % 2 ? (['nbdkit', 'ours'] as const) : (['ours', 'nbdkit'] as const)) {
          const server = await startServer(kind, file, socket);
          try {
            const run = await fio(socket, r.rw, r.bs, r.qd, server.pid);
            results[kind].push(run.mibs);
            cpu[kind].push(run.cpu);
          } finally {
            await stop(server);
          }
        }
      }
      const ours = median(results.ours);
      const anchor = median(results.nbdkit);
      console.log(`# ${r.row}: ours ${results.ours.map((x) => x.toFixed(0)).join('/')} MiB/s, nbdkit ${results.nbdkit.map((x) => x.toFixed(0)).join('/')} MiB/s (medians ${ours.toFixed(0)} vs ${anchor.toFixed(0)})`);
      console.log(`# ${r.row} server CPU s/GiB: ours ${cpu.ours.map((x) => x.toFixed(2)).join('/')}, nbdkit ${cpu.nbdkit.map((x) => x.toFixed(2)).join('/')} (medians ${median(cpu.ours).toFixed(2)} vs ${median(cpu.nbdkit).toFixed(2)}); load ${os.loadavg()[0]!.toFixed(1)}`);
      console.log(`ratio ${r.row} ${(ours / anchor).toFixed(2)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/nbd-export: ${(err as Error).message}`);
  process.exit(1);
});
