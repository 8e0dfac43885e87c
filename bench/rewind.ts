// bench/rewind: the rewind log.
//  1. A journal of N entries (default 1,000,000 writes of 4 KiB at random places of a 1 GiB volume):
//     time to reopen it (index load, torn-tail scan of the newest segment) and to open a view at its
//     start (every entry undone: the worst case), middle and end. Goal: a view opens in < 1 s. Anchor:
//     building a Map of the same number of block numbers in the same run (the least such a view costs).
//  2. Target write throughput with and without a rewind log: two mirrors from one source agent to two
//     target agents (tmpfs disks; the log on tmpfs too, standing for the separate disk the manual asks
//     for), fio (nbd engine) against each mirror in alternation. ratio = without / with (the overhead
//     factor); goal ≤ 1.5.
//
// usage: npm run bench:rewind [-- --entries 1000000 --runtime 5 --rounds 3 --size-mib 256 --dir /var/tmp --jobs 64k,4k,1m --skip journal|throughput]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { RewindJournal } from '../agent/rewind/journal.js';
import { bundle, exec, median, startAgent, tandem, targetsOf, waitFor, type AgentProc } from './lib.js';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' }, runtime: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' },
    'size-mib': { type: 'string', default: '256' }, dir: { type: 'string', default: '/var/tmp' }, skip: { type: 'string', default: '' },
    jobs: { type: 'string', default: '64k,4k,1m' },
  },
});
const ENTRIES = Number(values.entries);
const RUNTIME = Number(values.runtime);
const ROUNDS = Number(values.rounds);
const SIZE_MIB = Number(values['size-mib']);
const skip = new Set(values.skip.split(',').filter(Boolean));

async function journalBench(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(values.dir, 'tandem-bench-rewind-'));
  try {
    const VOLUME_BLOCKS = 262_144; // 1 GiB of 4 KiB blocks
    let seed = 0x9e3779b9;
    const rand = () => {
      // xorshift32: uniform enough to scatter writes over the volume
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const journal = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 0 });
    const data = Buffer.alloc(4096, 0x5a);
    const t0 = performance.now();
    for (let done = 0; done < ENTRIES;) {
      const n = Math.min(1000, ENTRIES - done);
      const items = Array.from({ length: n }, () => ({ offset: Math.floor(rand() * VOLUME_BLOCKS) * 4096, data }));
      if (done % 100_000 === 0) items.push({ bookmark: `mark ${done}` } as never); // bookmarks among the writes
      await journal.append(items);
      done += n;
    }
    const buildS = (performance.now() - t0) / 1000;
    const bytes = journal.totalBytes;
    await journal.close();
    console.log(`# journal: ${ENTRIES} entries, ${(bytes / 2 ** 30).toFixed(2)} GiB in ${buildS.toFixed(1)} s (${(bytes / 2 ** 20 / buildS).toFixed(0)} MiB/s appended, each batch fdatasync-ed)`);

    const o0 = performance.now();
    const j = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 0 });
    const openMs = performance.now() - o0;
    console.log(`# reopen (index load + newest segment scanned): ${openMs.toFixed(0)} ms, ${j.entries} entries, ${j.bookmarks().length} bookmarks`);

    // Anchor: a Map of as many block numbers as the view at the start walks through.
    const a0 = performance.now();
    const m = new Map<number, number>();
    for (let i = ENTRIES - 1; i >= 0; i--) m.set(Math.floor(rand() * VOLUME_BLOCKS), i);
    const anchorMs = performance.now() - a0;
    console.log(`# anchor: Map of ${ENTRIES} block numbers: ${anchorMs.toFixed(0)} ms`);

    const first = j.index.firstId;
    for (const [row, t] of [['start', j.startTime], ['middle', j.index.timeOf(first + Math.floor(j.entries / 2))], ['end', j.index.timeOf(j.index.endId - 2)]] as const) {
      const times: number[] = [];
      let blocks = 0;
      for (let r = 0; r < 3; r++) {
        const v0 = performance.now();
        blocks = j.overlayAt(t).size;
        times.push(performance.now() - v0);
      }
      const ms = median(times);
      console.log(`# view at the ${row}: ${ms.toFixed(0)} ms (${blocks} blocks from the log)`);
      console.log(`ratio view-open-${row} ${(ms / anchorMs).toFixed(2)}`);
    }
    await j.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function fio(uri: string, rw: string, bs: string, qd: number): Promise<number> {
  const out = await exec('fio', ['--name=bench', '--ioengine=nbd', `--uri=${uri}`, `--rw=${rw}`, `--bs=${bs}`, `--iodepth=${qd}`,
    `--size=${SIZE_MIB}M`, '--time_based', `--runtime=${RUNTIME}`, '--ramp_time=1', '--output-format=json']);
  return JSON.parse(out.slice(out.indexOf('{'))).jobs[0].write.bw_bytes / (1024 * 1024);
}

async function throughputBench(): Promise<void> {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'tandem-bench-rewind-'));
  const agents: AgentProc[] = [];
  try {
    const fill = (f: string) => exec('dd', ['if=/dev/zero', `of=${f}`, 'bs=1M', `count=${SIZE_MIB}`, 'status=none']);
    const source = await startAgent(dir, 'src');
    const plain = await startAgent(dir, 'plain');
    const logged = await startAgent(dir, 'logged');
    agents.push(source, plain, logged);
    for (const [tag, t] of [['nolog', plain], ['log', logged]] as const) {
      const srcDisk = path.join(dir, `${tag}-src.img`);
      await fill(srcDisk);
      await tandem(source, 'create', tag, '--disk', srcDisk);
      const disk = path.join(dir, `${tag}-${t.node}.img`);
      await fill(disk);
      await tandem(t, 'accept', tag, '--disk', disk);
      if (tag === 'log') {
        const settings = (...args: string[]) => exec(process.execPath, [bundle, ...args], { ...process.env, TANDEM_HOME: t.home, TANDEM_PROGRAM: 'mirror_settings' });
        await settings(tag, 'logdir', path.join(dir, 'rewind-log'));
        await settings(tag, 'logmax', String(1024 * 1024 * 1024));
      }
      await tandem(source, 'extend', tag, '--target', t.node, '--address', `127.0.0.1:${t.port}`, '--mode', 'sync', '--no-initial-sync');
      await waitFor(async () => (await targetsOf(source, tag)).every((x) => x.status === 'Fully Operational'), `${tag} connected`);
    }
    const st = JSON.parse(await tandem(logged, 'status', 'log', '--json'))[0];
    if (!st.rewindLog.kept) throw new Error(`the rewind log is not kept on the target: ${st.rewindLog.error}`);
    console.log(`# throughput: ${os.cpus().length} cpus, ${SIZE_MIB} MiB tmpfs disks, rewind log on tmpfs (logmax 1 GiB), sync target over loopback, ${RUNTIME}s x ${ROUNDS} rounds; node ${process.version}`);
    const uri = (tag: string) => `nbd+unix:///${tag}?socket=${path.join(source.home, 'run', `${tag}.nbd.sock`)}`;
    const jobs = [{ name: '64k', rw: 'write', bs: '64k', qd: 16 }, { name: '4k', rw: 'randwrite', bs: '4k', qd: 32 }, { name: '1m', rw: 'write', bs: '1m', qd: 8 }];
    for (const job of jobs.filter((j) => values.jobs.split(',').includes(j.name))) {
      const without: number[] = [];
      const withLog: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        for (const which of r % 2 ? ['log', 'nolog'] : ['nolog', 'log']) {
          const v = await fio(uri(which), job.rw, job.bs, job.qd);
          (which === 'log' ? withLog : without).push(v);
        }
      }
      console.log(`# ${job.name}: without log ${without.map((x) => x.toFixed(0)).join('/')} MiB/s, with log ${withLog.map((x) => x.toFixed(0)).join('/')} MiB/s`);
      console.log(`ratio overhead-${job.name} ${(median(without) / median(withLog)).toFixed(2)}`);
    }
    const after = JSON.parse(await tandem(logged, 'status', 'log', '--json'))[0];
    console.log(`# the log after the run: ${after.rewindLog.entries} entries, ${(after.rewindLog.bytes / 2 ** 20).toFixed(0)} MiB`);
  } finally {
    for (const a of agents) a.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!skip.has('journal')) await journalBench();
  if (!skip.has('throughput')) await throughputBench();
}

main().catch((err: unknown) => {
  console.error(`bench/rewind: ${(err as Error).message}`);
  process.exit(1);
});
