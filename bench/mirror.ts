// bench/mirror: fio (nbd engine) against a mirror's export, replicating over loopback to 1 or 2 targets,
// and against `nbdkit file` on a tmpfs file in the same run. All disks are pre-filled tmpfs files.
// Prints `ratio <row> <mirror/nbdkit>` per row (median of rounds; higher is better).
//
// usage: npm run bench:mirror [-- --runtime 5 --rounds 3 --size-mib 256]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exec, median, startAgent, tandem, waitFor, type AgentProc } from './lib.js';

const { values } = parseArgs({
  options: { runtime: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' }, 'size-mib': { type: 'string', default: '256' } },
});
const RUNTIME = Number(values.runtime);
const ROUNDS = Number(values.rounds);
const SIZE_MIB = Number(values['size-mib']);

const SETUPS = [
  { name: 'sync1', targets: ['sync'] },
  { name: 'async1', targets: ['async'] },
  { name: 'sync2', targets: ['sync', 'sync'] },
] as const;
const JOBS = [
  { name: '64k', rw: 'write', bs: '64k', qd: 16 },
  { name: '4k', rw: 'randwrite', bs: '4k', qd: 32 },
] as const;

async function fio(uri: string, rw: string, bs: string, qd: number): Promise<number> {
  const out = await exec('fio', ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${qd}`,
    `--size=${SIZE_MIB}M`, '--time_based', `--runtime=${RUNTIME}`, '--ramp_time=1', '--output-format=json']);
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0].write.bw_bytes / (1024 * 1024);
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'tandem-bench-mirror-'));
  const agents: AgentProc[] = [];
  let nbdkit: ChildProcess | null = null;
  try {
    const fill = async (f: string) => exec('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    const anchorFile = path.join(dir, 'anchor.img');
    await fill(anchorFile);
    const anchorSock = path.join(dir, 'anchor.sock');
    nbdkit = spawn('nbdkit', ['--foreground', '--unix', anchorSock, 'file', anchorFile], { stdio: 'ignore' });
    await waitFor(() => fs.existsSync(anchorSock), 'nbdkit');
    const source = await startAgent(dir, 'src');
    agents.push(source);
    const t1 = await startAgent(dir, 't1');
    const t2 = await startAgent(dir, 't2');
    agents.push(t1, t2);
    console.log(`# bench/mirror: ${os.cpus().length} cpus, ${SIZE_MIB} MiB tmpfs disks, loopback, ${RUNTIME}s x ${ROUNDS} rounds; node ${process.version}; ${(await exec('nbdkit', ['--version'])).trim()}`);
    for (const setup of SETUPS) {
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
        const ours: number[] = [];
        const anchor: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const order = r % 2 ? ['anchor', 'ours'] : ['ours', 'anchor'];
          for (const which of order) {
            const v = await fio(which === 'ours' ? uri : `nbd+unix:///?socket=${anchorSock}`, job.rw, job.bs, job.qd);
            (which === 'ours' ? ours : anchor).push(v);
          }
        }
        const row = `${setup.name}-${job.name}`;
        console.log(`# ${row}: mirror ${ours.map((x) => x.toFixed(0)).join('/')} MiB/s, nbdkit ${anchor.map((x) => x.toFixed(0)).join('/')} MiB/s`);
        console.log(`ratio ${row} ${(median(ours) / median(anchor)).toFixed(2)}`);
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
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/mirror: ${(err as Error).message}`);
  process.exit(1);
});
