// bench/resync: how fast and how little a resync moves, against anchors measured in the same run.
//   full-resync      our full resync of a volume vs `nbdcopy` between two `nbdkit file` exports of the
//                    same data (ratio = nbdcopy time / our time; higher is better; goal ≥ 0.9)
//   partial-1pct     partial resync after 1% of the chunks changed, as a fraction of the full resync's
//                    time (goal ≤ 0.03)
//   checksum-bytes   bytes sent by a checksum resync of an identical volume, as a fraction of its size
//                    (goal ≤ 0.02; over loopback here — the netem-limited link of the issue needs the
//                    network-namespace lab)
// All on tmpfs; agents on loopback.
//
// usage: npm run bench:resync [-- --size-mib 512 --rounds 5]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { control, cpuSeconds, exec, fill, median, sha256, startAgent, tandem, targetsOf, waitFor, type AgentProc } from './lib.js';

const { values } = parseArgs({ options: { 'size-mib': { type: 'string', default: '512' }, rounds: { type: 'string', default: '5' } } });
const SIZE_MIB = Number(values['size-mib']);
const ROUNDS = Number(values.rounds);
const CHUNK = 64 * 1024;

async function nbdcopyTime(dir: string, src: string): Promise<number> {
  const dst = path.join(dir, 'anchor-dst.img');
  await fill(dst, SIZE_MIB);
  const a = path.join(dir, 'a.sock');
  const b = path.join(dir, 'b.sock');
  fs.rmSync(a, { force: true });
  fs.rmSync(b, { force: true });
  const ka = spawn('nbdkit', ['--foreground', '--unix', a, 'file', src], { stdio: 'ignore' });
  const kb = spawn('nbdkit', ['--foreground', '--unix', b, 'file', dst], { stdio: 'ignore' });
  const serving = async (sock: string) => exec('nbdinfo', ['--size', `nbd+unix:///?socket=${sock}`]).then(() => true, () => false);
  try {
    await waitFor(async () => (await serving(a)) && (await serving(b)), 'nbdkit');
    const t0 = process.hrtime.bigint();
    await exec('nbdcopy', [`nbd+unix:///?socket=${a}`, `nbd+unix:///?socket=${b}`]);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  } finally {
    const gone = Promise.all([ka, kb].map((k) => new Promise((r) => k.once('exit', r))));
    ka.kill('SIGTERM');
    kb.kill('SIGTERM');
    await gone;
    fs.rmSync(dst, { force: true });
  }
}

/** Seconds from `start()` until the target is back in sync after a new resync pass. */
async function timeResync(src: AgentProc, tag: string, start: () => Promise<unknown>, tgt?: AgentProc): Promise<{ seconds: number; bytes: number; sent: number; cpu: number }> {
  const before = (await targetsOf(src, tag))[0]!;
  const cpu0 = cpuSeconds(src.child.pid) + cpuSeconds(tgt?.child.pid);
  const t0 = process.hrtime.bigint();
  await start();
  // The agent answers waitsync the moment the target is in sync (no polling, which would add up to a
  // polling interval to every measurement, a large share of a partial resync's few milliseconds).
  await control(src, 'mirror.waitsync', { tag, timeout: 300 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const after = (await targetsOf(src, tag))[0]!;
  if (after.status !== 'Fully Operational' || after.dirtyChunks !== 0 || after.resyncBytes + after.checksumCompared <= before.resyncBytes + before.checksumCompared) {
    throw new Error(`waitsync returned with the target ${after.status}, ${after.dirtyChunks} dirty chunks, ${after.resyncBytes - before.resyncBytes} bytes resent`);
  }
  const cpu = cpuSeconds(src.child.pid) + cpuSeconds(tgt?.child.pid) - cpu0;
  return {
    seconds,
    cpu,
    bytes: after.resyncBytes - before.resyncBytes,
    sent: after.bytesSent - before.bytesSent + after.bytesReceived - before.bytesReceived,
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join('/dev/shm', 'tandem-bench-resync-'));
  const agents: AgentProc[] = [];
  try {
    const srcDisk = path.join(dir, 'src.img');
    const tgtDisk = path.join(dir, 'tgt.img');
    await fill(srcDisk, SIZE_MIB, '/dev/urandom');
    await fill(tgtDisk, SIZE_MIB);
    console.log(`# bench/resync: ${os.cpus().length} cpus, ${SIZE_MIB} MiB tmpfs volumes, loopback, ${ROUNDS} rounds; node ${process.version}; ${(await exec('nbdkit', ['--version'])).trim()}`);
    const src = await startAgent(dir, 'src');
    const tgt = await startAgent(dir, 'tgt');
    agents.push(src, tgt);
    await tandem(src, 'create', 'r', '--disk', srcDisk);
    await tandem(tgt, 'accept', 'r', '--disk', tgtDisk);
    await tandem(src, 'extend', 'r', '--target', 'tgt', '--address', `127.0.0.1:${tgt.port}`, '--no-initial-sync');
    await waitFor(async () => (await targetsOf(src, 'r'))[0]!.status === 'Fully Operational', 'connected');

    const ours: number[] = [];
    const cpu: number[] = [];
    const anchor: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      anchor.push(await nbdcopyTime(dir, srcDisk));
      const full = await timeResync(src, 'r', () => control(src, 'mirror.fullresync', { tag: 'r' }), tgt);
      if (full.bytes !== SIZE_MIB * 1024 * 1024) throw new Error(`full resync moved ${full.bytes} bytes`);
      ours.push(full.seconds);
      cpu.push(full.cpu / (SIZE_MIB / 1024));
    }
    if ((await sha256(srcDisk)) !== (await sha256(tgtDisk))) throw new Error('target differs after full resync');
    console.log(`# full-resync: ours ${ours.map((x) => x.toFixed(2)).join('/')} s, nbdcopy nbdkit→nbdkit ${anchor.map((x) => x.toFixed(2)).join('/')} s`);
    console.log(`# full-resync CPU of both agents: ${cpu.map((x) => x.toFixed(2)).join('/')} s/GiB; load ${os.loadavg()[0]!.toFixed(1)}`);
    console.log(`ratio full-resync ${(median(anchor) / median(ours)).toFixed(2)}`);

    // 1% of the chunks change while the target is paused, then resume.
    const chunks = (SIZE_MIB * 1024 * 1024) / CHUNK;
    const dirty = Math.floor(chunks / 100);
    const partial: number[] = [];
    // Round 0 warms the agents up (the scattered-chunk paths are not compiled yet after the full
    // resyncs) and is not counted: the agent is a long-running daemon.
    for (let r = 0; r <= ROUNDS; r++) {
      await control(src, 'mirror.pause', { tag: 'r' });
      const cmds: string[] = [];
      for (let i = 0; i < dirty; i++) cmds.push('-c', `write -P ${(r * 7 + i) % 250} ${(i * 100 + r) * CHUNK} 4k`);
      await exec('qemu-io', ['-f', 'raw', ...cmds, `nbd+unix:///r?socket=${path.join(src.home, 'run', 'r.nbd.sock')}`]);
      const p = await timeResync(src, 'r', () => control(src, 'mirror.resume', { tag: 'r' }));
      if (p.bytes > dirty * CHUNK * 1.05) throw new Error(`partial resync moved ${p.bytes} bytes for ${dirty} dirty chunks`);
      if (r > 0) partial.push(p.seconds);
    }
    if ((await sha256(srcDisk)) !== (await sha256(tgtDisk))) throw new Error('target differs after partial resync');
    console.log(`# partial-1pct: ${partial.map((x) => x.toFixed(3)).join('/')} s for ${dirty} of ${chunks} chunks (after one warm-up round), full ${median(ours).toFixed(2)} s`);
    console.log(`ratio partial-1pct ${(median(partial) / median(ours)).toFixed(3)}`);

    const c = await timeResync(src, 'r', () => control(src, 'mirror.fullresync', { tag: 'r', checksum: true }));
    console.log(`# checksum-bytes: ${c.sent} bytes on the wire, ${c.bytes} data bytes resent, in ${c.seconds.toFixed(2)} s for ${SIZE_MIB} MiB (loopback)`);
    console.log(`ratio checksum-bytes ${(c.sent / (SIZE_MIB * 1024 * 1024)).toFixed(4)}`);
  } finally {
    for (const a of agents) a.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`bench/resync: ${(err as Error).message}`);
  process.exit(1);
});
