// bench/mirror: fio (nbd engine) against a mirror's export, replicating over loopback to 1 or 2 targets,
// and against `nbdkit file` on a tmpfs file in the same run. All disks are pre-filled tmpfs files.
// Prints `ratio <row> <mirror/nbdkit>` per row (median of rounds; higher is better).
//
// With --pin, fio, nbdkit and the source agent share CPU 0 and the targets run on CPU 1: the source node
// has the anchor's CPU budget and the targets have another (shared by the two targets of sync2), as when
// source and targets are separate machines (rows named `pinned-…`). Without it, everything shares both CPUs.
//
// Each 64k row also prints `bound <row> <x>`: about what a mirror as lean as nbdkit could reach here. A mirror does at least the
// work of one nbdkit server per disk it writes plus one sender per target, so the bound runs one fio → `nbdkit
// file` pair per disk (source and each target) at the same time and divides the pairs' mean MiB/s (their fair
// share) by the anchor's alone. Pinned, the targets' nbdkits run on CPU 1 and every fio on CPU 0 (their
// sending stands for the source's sending to its targets). Only for the 64k rows: at 4k fio's cost per request
// is far above what a source pays per write it forwards in a batch, so the pairs would not bound anything.
//
// usage: npm run bench:mirror [-- --runtime 5 --rounds 3 --size-mib 256 --setups sync1,async1,sync2 --pin]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, exec, median, startAgent, tandem, waitFor, type AgentProc } from './lib.js';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, 'size-mib': { type: 'string', default: '256' },
    /** Comma-separated setups to run (sync1,async1,sync2); all by default. */
    setups: { type: 'string', default: '' },
    pin: { type: 'boolean', default: false },
  },
});
const ONLY = values.setups ? values.setups.split(',') : null;
const RUNTIME = Number(values.runtime);
const ROUNDS = Number(values.rounds);
const SIZE_MIB = Number(values['size-mib']);
const PIN = values.pin === true;
/** taskset prefix for what runs on the source node (fio, nbdkit, the source agent) when pinned. */
const onSourceCpu = (cmd: string, args: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', '0', cmd, ...args]] : [cmd, args]);
const onTargetCpu = (cmd: string, args: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', '1', cmd, ...args]] : [cmd, args]);

const SETUPS = [
  { name: 'sync1', targets: ['sync'] },
  { name: 'async1', targets: ['async'] },
  { name: 'sync2', targets: ['sync', 'sync'] },
] as const;
const JOBS = [
  { name: '64k', rw: 'write', bs: '64k', qd: 16, bound: true },
  { name: '4k', rw: 'randwrite', bs: '4k', qd: 32, bound: false },
  // One write at a time: the round trip, which limits the sync rows at qd 32 (no goal; see docs/benchmarks.md).
  { name: '4k-qd1', rw: 'randwrite', bs: '4k', qd: 1, bound: false },
] as const;

interface Run {
  mibs: number;
  /** CPU seconds per GiB written: the servers (source + targets, or nbdkit), and fio itself. */
  serverCpu: number;
  fioCpu: number;
}

async function fio(uri: string, rw: string, bs: string, qd: number, pids: Array<number | undefined>): Promise<Run> {
  const cpuOf = () => {
    let sum = 0;
    for (const p of pids) sum += cpuSeconds(p);
    return sum;
  };
  const cpu0 = cpuOf();
  const out = await exec(...onSourceCpu('fio', ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${qd}`,
    `--size=${SIZE_MIB}M`, '--time_based', `--runtime=${RUNTIME}`, '--ramp_time=1', '--output-format=json']));
  const cpu = cpuOf() - cpu0;
  const job = JSON.parse(out.slice(out.indexOf('{'))).jobs[0];
  const bw = job.write.bw_bytes as number;
  // Bytes over the whole run, ramp included (the servers' CPU counts it), estimated from the bandwidth.
  const gib = (bw * (RUNTIME + 1)) / 2 ** 30;
  return { mibs: bw / 2 ** 20, serverCpu: cpu / gib, fioCpu: (((job.usr_cpu + job.sys_cpu) / 100) * RUNTIME) / ((bw * RUNTIME) / 2 ** 30) };
}

/**
 * Mean round trip of a 64-byte message between two Node processes over loopback TCP (20,000 exchanges): the
 * floor under every hop of a sync write (fio → source → target → source → fio has four such handoffs).
 */
async function pingPong(cpus: string[]): Promise<number> {
  const script = `
    const net = require('node:net');
    if (process.argv[1] === 'echo') {
      const s = net.createServer((c) => { c.setNoDelay(true); c.on('data', (d) => c.write(d)); });
      s.listen(0, '127.0.0.1', () => console.log(s.address().port));
    } else {
      const c = net.connect(Number(process.argv[2]), '127.0.0.1', () => {
        c.setNoDelay(true);
        const N = 20000, buf = Buffer.alloc(64);
        let n = 0, t0 = 0n;
        c.on('data', () => {
          if (++n === 1000) t0 = process.hrtime.bigint();
          if (n < N) return void c.write(buf);
          console.log(Number(process.hrtime.bigint() - t0) / 1000 / (N - 1000));
          c.destroy();
        });
        c.write(buf);
      });
    }`;
  const onCpu = (i: number, args: string[]): [string, string[]] => (cpus[i] ? ['taskset', ['-c', cpus[i] as string, ...args]] : [args[0] as string, args.slice(1)]);
  const echo = spawn(...onCpu(0, [process.execPath, '-e', script, 'echo']), { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve) => echo.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
    return Number(await exec(...onCpu(1, [process.execPath, '-e', script, 'client', port])));
  } finally {
    echo.kill();
  }
}

const fmt = (xs: number[], digits: number) => xs.map((x) => x.toFixed(digits)).join('/');

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'tandem-bench-mirror-'));
  const agents: AgentProc[] = [];
  let nbdkit: ChildProcess | null = null;
  const boundServers: ChildProcess[] = [];
  try {
    const fill = async (f: string) => exec('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    const anchorFile = path.join(dir, 'anchor.img');
    await fill(anchorFile);
    const anchorSock = path.join(dir, 'anchor.sock');
    nbdkit = spawn(...onSourceCpu('nbdkit', ['--foreground', '--unix', anchorSock, 'file', anchorFile]), { stdio: 'ignore' });
    await waitFor(() => fs.existsSync(anchorSock), 'nbdkit');
    // The bound's stand-ins for the targets' disks: one more `nbdkit file` per target.
    const boundSocks: string[] = [];
    for (const i of [1, 2]) {
      const file = path.join(dir, `bound${i}.img`);
      await fill(file);
      const sock = path.join(dir, `bound${i}.sock`);
      boundServers.push(spawn(...onTargetCpu('nbdkit', ['--foreground', '--unix', sock, 'file', file]), { stdio: 'ignore' }));
      await waitFor(() => fs.existsSync(sock), 'nbdkit');
      boundSocks.push(sock);
    }
    const source = await startAgent(dir, 'src', PIN ? '0' : undefined);
    agents.push(source);
    const t1 = await startAgent(dir, 't1', PIN ? '1' : undefined);
    const t2 = await startAgent(dir, 't2', PIN ? '1' : undefined);
    agents.push(t1, t2);
    console.log(`# a TCP round trip on loopback between two Node processes: ${(await pingPong(PIN ? ['0', '1'] : [])).toFixed(0)} µs${PIN ? ' (on CPUs 0 and 1)' : ''}, ${(await pingPong(['0', '0'])).toFixed(0)} µs when both are on CPU 0`);
    console.log(`# bench/mirror: ${os.cpus().length} cpus, ${SIZE_MIB} MiB tmpfs disks, loopback, ${RUNTIME}s x ${ROUNDS} rounds${PIN ? ', pinned: fio + nbdkit / source on CPU 0, targets on CPU 1' : ''}; node ${process.version}; ${(await exec('nbdkit', ['--version'])).trim()}`);
    for (const setup of SETUPS) {
      if (ONLY && !ONLY.includes(setup.name)) continue;
      const tag = setup.name;
      const srcDisk = path.join(dir, `${tag}-src.img`);
      await fill(srcDisk);
      await tandem(source, 'create', tag, '--disk', srcDisk);
      for (const [i, mode] of setup.targets.entries()) {
        const t = [t1, t2][i] as AgentProc;
        const disk = path.join(dir, `${tag}-${t.node}.img`);
        await fill(disk);
        await tandem(t, 'accept', tag, '--disk', disk);
        await tandem(source, 'extend', tag, '--target', t.node, '--address', `127.0.0.1:${t.port}`, '--mode', mode, '--no-initial-sync');
      }
      await waitFor(async () => {
        const st = JSON.parse(await tandem(source, 'status', tag, '--json'))[0];
        return st.targets.every((x: { status: string }) => x.status === 'Fully Operational');
      }, `${tag} connected`);
      const uri = `nbd+unix:///${tag}?socket=${path.join(source.home, 'run', `${tag}.nbd.sock`)}`;
      for (const job of JOBS) {
        const ours: Run[] = [];
        const anchor: Run[] = [];
        const bound: number[] = [];
        const mirrorPids = [source, ...setup.targets.map((_, i) => [t1, t2][i] as AgentProc)].map((a) => a.child.pid);
        for (let r = 0; r < ROUNDS; r++) {
          const order = r % 2 ? ['anchor', 'ours'] : ['ours', 'anchor'];
          for (const which of order) {
            const v = which === 'ours'
              ? await fio(uri, job.rw, job.bs, job.qd, mirrorPids)
              : await fio(`nbd+unix:///?socket=${anchorSock}`, job.rw, job.bs, job.qd, [nbdkit?.pid]);
            (which === 'ours' ? ours : anchor).push(v);
          }
          if (!job.bound) continue;
          const pairs = await Promise.all([anchorSock, ...boundSocks.slice(0, setup.targets.length)].map((sock, i) =>
            fio(`nbd+unix:///?socket=${sock}`, job.rw, job.bs, job.qd, [i === 0 ? nbdkit?.pid : boundServers[i - 1]?.pid])));
          bound.push(pairs.reduce((sum, x) => sum + x.mibs, 0) / pairs.length);
        }
        const row = `${PIN ? 'pinned-' : ''}${setup.name}-${job.name}`;
        console.log(`# ${row}: mirror ${fmt(ours.map((x) => x.mibs), 0)} MiB/s, nbdkit ${fmt(anchor.map((x) => x.mibs), 0)} MiB/s`);
        console.log(`# ${row} CPU s/GiB: agents ${fmt(ours.map((x) => x.serverCpu), 2)} + fio ${fmt(ours.map((x) => x.fioCpu), 2)}; nbdkit ${fmt(anchor.map((x) => x.serverCpu), 2)} + fio ${fmt(anchor.map((x) => x.fioCpu), 2)}; load ${os.loadavg()[0]!.toFixed(1)}`);
        if (job.bound) console.log(`# ${row}: bound (${setup.targets.length + 1} fio → nbdkit pairs at once, mean) ${fmt(bound, 0)} MiB/s`);
        console.log(`ratio ${row} ${(median(ours.map((x) => x.mibs)) / median(anchor.map((x) => x.mibs))).toFixed(2)}`);
        if (job.bound) console.log(`bound ${row} ${(median(bound) / median(anchor.map((x) => x.mibs))).toFixed(2)}`);
      }
      // The mirror must still be whole after the load.
      await waitFor(async () => {
        const st = JSON.parse(await tandem(source, 'status', tag, '--json'))[0];
        return st.targets.every((x: { dirtyChunks: number; queueDepth: number }) => x.dirtyChunks === 0 && x.queueDepth === 0);
      }, `${tag} settled`);
      const want = (await exec('sha256sum', [srcDisk])).split(' ')[0];
      for (const [i] of setup.targets.entries()) {
        const t = [t1, t2][i] as AgentProc;
        const got = (await exec('sha256sum', [path.join(dir, `${tag}-${t.node}.img`)])).split(' ')[0];
        if (got !== want) throw new Error(`${tag}: target ${t.node} differs from the source after the run`);
      }
      await tandem(source, 'delete', tag);
    }
  } finally {
    for (const a of agents) a.child.kill('SIGTERM');
    nbdkit?.kill('SIGTERM');
    for (const b of boundServers) b.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/mirror: ${(err as Error).message}`);
  process.exit(1);
});
