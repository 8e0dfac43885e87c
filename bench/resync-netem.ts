// bench/resync-netem: the checksum row of bench/resync over a real constrained link — two network
// namespaces of the test lab (test/lab/lab.ts) joined by a veth shaped with `tc … rate 100mbit`.
//   checksum-bytes-netem  bytes both ways during a checksum resync of an identical volume / volume size
//                         (goal ≤ 0.02); also prints the time, and what sending the whole volume over
//                         the same link would take.
// Needs root (namespaces, tc, loop devices), like the lab. Agents run inside the nodes with
// --insecure-plaintext (as every benchmark: TLS is measured by bench/tls-transport).
//
// usage: sudo npm run bench:resync-netem [-- --size-mib 256 --rate-mbit 100 --rounds 3]
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLab, run, type Lab, type LabNode } from '../test/lab/lab.js';
import type { MirrorStatus, TargetStatus } from '../common/mirror-status.js';
import { bundle, median } from './lib.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '256' },
    'rate-mbit': { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
  },
});
const SIZE_MIB = Number(values['size-mib']);
const RATE_MBIT = Number(values['rate-mbit']);
const ROUNDS = Number(values.rounds);
const TAG = 'nm';
const PORT = 7500;

async function sh(node: LabNode, command: string, timeoutMs = 120_000): Promise<string> {
  const r = await node.exec(command, { timeoutMs });
  if (r.code !== 0) throw new Error(`${node.name}: ${command}: exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

const tandem = (node: LabNode, args: string) => sh(node, `node ${bundle} tandem ${args}`);

async function target(node: LabNode): Promise<TargetStatus> {
  return (JSON.parse(await tandem(node, `status ${TAG} --json`)) as MirrorStatus[])[0]!.targets[0]!;
}

async function until(node: LabNode, ok: (t: TargetStatus) => boolean, what: string, ms = 600_000): Promise<TargetStatus> {
  const deadline = Date.now() + ms;
  for (;;) {
    const t = await target(node);
    if (ok(t)) return t;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${t.status}: ${t.lastError})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function sha256Device(dev: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(dev, { start: 0, end: SIZE_MIB * 2 ** 20 - 1 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces, tc, loop devices): run it with sudo');
  if (!fs.existsSync(bundle)) throw new Error('run `npm run build` first');
  let lab: Lab | null = null;
  const data = path.join(os.tmpdir(), `tandem-netem-${process.pid}.img`);
  try {
    lab = await createLab({ nodes: 2, disksPerNode: 1, diskMiB: SIZE_MIB });
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const [src, dst] = [n1.disks[0]!, n2.disks[0]!];
    // The same random data on both volumes: the checksum resync should find nothing to send.
    const filled = await run('sh', ['-c', `head -c ${SIZE_MIB * 2 ** 20} /dev/urandom > ${data} && dd if=${data} of=${src} bs=1M status=none && dd if=${data} of=${dst} bs=1M status=none`], { timeoutMs: 300_000 });
    if (filled.code !== 0) throw new Error(`filling the volumes: ${filled.stderr}`);
    for (const n of [n1, n2]) {
      await sh(n, `cd /; setsid nohup node ${bundle} run --node ${n.name} --replication ${n.address}:${PORT} --insecure-plaintext </dev/null >/run/tandem/agent.log 2>&1 &`);
      await sh(n, `i=0; until [ -S /run/tandem/control.sock ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.1; done`, 30_000);
    }
    await tandem(n1, `create ${TAG} --disk ${src}`);
    await tandem(n2, `accept ${TAG} --disk ${dst}`);
    await tandem(n1, `extend ${TAG} --target node2 --address ${n2.address}:${PORT} --no-initial-sync`);
    await until(n1, (t) => t.status === 'Fully Operational', 'the mirror');
    await lab.netem(n2, { rateMbit: RATE_MBIT });
    const qdisc = (await run('tc', ['qdisc', 'show', 'dev', n2.veth])).stdout.trim().split('\n')[0];
    console.log(`# bench/resync-netem: ${os.cpus().length} cpus, ${SIZE_MIB} MiB loop-device volumes of identical random data, two network namespaces, tc rate ${RATE_MBIT}mbit on the link (${qdisc}); node ${process.version}`);
    const ratios: number[] = [];
    const times: number[] = [];
    let resent = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const before = await target(n1);
      const t0 = process.hrtime.bigint();
      await tandem(n1, `fullresync ${TAG} --checksum`);
      const after = await until(n1, (t) => t.status === 'Fully Operational' && t.dirtyChunks === 0 && t.checksumCompared > before.checksumCompared, 'the checksum resync');
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      const bytes = after.bytesSent - before.bytesSent + after.bytesReceived - before.bytesReceived;
      resent += after.resyncBytes - before.resyncBytes;
      ratios.push(bytes / (SIZE_MIB * 2 ** 20));
    }
    if ((await sha256Device(src)) !== (await sha256Device(dst))) throw new Error('the volumes differ after the checksum resyncs');
    const wholeSeconds = (SIZE_MIB * 2 ** 20 * 8) / (RATE_MBIT * 1e6);
    console.log(`# checksum-bytes-netem: ${ratios.map((x) => Math.round(x * SIZE_MIB * 2 ** 20)).join('/')} bytes on the wire, ${resent} data bytes resent, in ${times.map((x) => x.toFixed(2)).join('/')} s (sending the volume over this link: ≥ ${wholeSeconds.toFixed(1)} s)`);
    console.log(`ratio checksum-bytes-netem ${median(ratios).toFixed(4)}`);
  } finally {
    fs.rmSync(data, { force: true });
    await lab?.teardown();
  }
}

main().catch((err: unknown) => {
  console.error(`bench/resync-netem: ${(err as Error).message}`);
  process.exit(1);
});
