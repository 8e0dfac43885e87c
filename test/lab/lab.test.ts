// The lab itself (test/lab/lab.ts), and a real two-node mirror across it, set up the way an operator
// does: over ssh, with the agent's default paths, certificates from the agent's own CLI.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { AGENT_BUNDLE } from '../helpers/tools.js';
import { createLab, run, type Lab, type LabNode } from './lab.js';

const isRoot = process.getuid?.() === 0;
const TAG = 'datarep';
const AGENT = '/opt/tandem/tandem-agent.cjs';
const ACK_TIMEOUT_MS = 4_000;

let lab: Lab;

/** ssh exactly as a person would type it, with the nodes' host keys checked. */
async function ssh(node: LabNode, command: string, timeoutMs = 30_000): Promise<string> {
  const r = await run('ssh', ['-i', lab.clientKey.privateKeyFile, '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', `root@${node.address}`, command], { timeoutMs });
  if (r.code !== 0) throw new Error(`ssh ${node.name} ${command} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const tandem = (node: LabNode, args: string) => ssh(node, `node ${AGENT} tandem ${args}`);

async function status(node: LabNode): Promise<MirrorStatus> {
  return (JSON.parse(await tandem(node, `status ${TAG} --json`)) as MirrorStatus[])[0]!;
}

async function waitFor(node: LabNode, ok: (m: MirrorStatus) => boolean, what: string, timeoutMs = 30_000): Promise<MirrorStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MirrorStatus | undefined;
  while (Date.now() < deadline) {
    last = await status(node);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${node.name}: ${what} did not happen within ${timeoutMs / 1000} s: ${JSON.stringify(last?.targets)}`);
}

const inSync = (m: MirrorStatus) => m.targets.length === 1 && m.targets[0]!.status === 'Fully Operational' && m.targets[0]!.dirtyChunks === 0;

/** qemu-io commands against the mirror's NBD export (the NetRAID device) inside node1. */
function writeExport(node: LabNode, ...commands: string[]): Promise<string> {
  const c = commands.map((x) => `-c '${x}'`).join(' ');
  return ssh(node, `timeout 30 qemu-io -f raw ${c} 'nbd+unix:///${TAG}?socket=/run/tandem/${TAG}.nbd.sock'`, 40_000);
}

const sha = async (node: LabNode, disk: string) => (await ssh(node, `sha256sum ${disk}`)).split(/\s+/)[0];

describe.skipIf(!isRoot)('test lab: a cluster of network namespaces', () => {
  beforeAll(async () => {
    lab = await createLab({ nodes: 3 });
  }, 60_000);

  afterAll(async () => {
    await lab?.teardown();
  });

  it('logs into every node with the OpenSSH client, checking its host key', async () => {
    for (const n of lab.nodes) {
      expect(n.hostKeyFingerprint).toMatch(/^SHA256:/);
      expect((await ssh(n, 'hostname; id -u')).split('\n').slice(0, 2)).toEqual([n.name, '0']);
    }
    expect(fs.readFileSync(lab.knownHostsFile, 'utf8')).toContain(`${lab.nodes[0]!.address} ${lab.nodes[0]!.hostKeyPublic}`);
  });

  it('nodes reach each other and the host over the bridge; each has its own /var/lib/tandem', async () => {
    const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode];
    // Without ping: a TCP connection to port 22 that is answered, even refused, proves the route (the host runs no sshd).
    const reach = (to: string) => `if command -v ping >/dev/null; then ping -c1 -W2 ${to}; else timeout 3 bash -c 'exec 3<>/dev/tcp/${to}/22' 2>&1 | grep -q 'Connection refused' || timeout 3 bash -c 'exec 3<>/dev/tcp/${to}/22'; fi`;
    for (const [a, b] of [[n1, n2], [n2, n3], [n3, n1]] as Array<[LabNode, LabNode]>) {
      const r = await a.exec(reach(b.address), { timeoutMs: 10_000 });
      expect(r.code, `${a.name} -> ${b.name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
    expect((await n2.exec(reach(lab.bridgeAddress))).code).toBe(0);
    expect((await run('ping', ['-c1', '-W2', n3.address]).catch(() => run('bash', ['-c', `exec 3<>/dev/tcp/${n3.address}/22`]))).code).toBe(0);

    const probe = `/var/lib/tandem/lab-probe-${lab.id}`;
    await ssh(n1, `echo node1 > ${probe}`);
    expect(await ssh(n1, `cat ${probe}`)).toBe('node1\n');
    expect((await n2.exec(`test -e ${probe}`)).code).toBe(1);
    expect(fs.existsSync(probe)).toBe(false);
    expect(fs.readFileSync(path.join(n1.dir, 'root', probe), 'utf8')).toBe('node1\n');
  });

  it('mirrors node1 to node2 across the bridge; a cut link is Out Of Sync, restored it resyncs', async () => {
    const [n1, n2] = lab.nodes as [LabNode, LabNode];
    const t0 = Date.now();
    // Certificates: the cluster CA on the administrator's machine (here the host), each node's issued
    // and installed on that node by the agent's own CLI.
    const caDir = path.join(lab.dir, 'ca');
    const pass = path.join(lab.dir, 'ca.pass');
    fs.writeFileSync(pass, 'lab passphrase of this run\n', { mode: 0o600 });
    const init = await run(process.execPath, [AGENT_BUNDLE, 'tandem', 'ca', 'init', '--dir', caDir, '--passphrase-file', pass], { env: { ...process.env, TANDEM_PROGRAM: '' } });
    expect(init.code, init.stderr).toBe(0);
    for (const n of [n1, n2]) {
      const scp = await run('scp', ['-q', '-i', lab.clientKey.privateKeyFile, '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes',
        '-o', 'BatchMode=yes', AGENT_BUNDLE, `root@${n.address}:${AGENT}`], { timeoutMs: 30_000 });
      expect(scp.code, scp.stderr).toBe(0);
      expect(await tandem(n, `cert issue ${n.name} --ca-dir ${caDir} --passphrase-file ${pass} --install`)).toContain('/var/lib/tandem/tls');
      // A shorter dead-peer timeout than the default 15 s keeps the test short.
      await ssh(n, `cd /; TANDEM_ACK_TIMEOUT_MS=${ACK_TIMEOUT_MS} setsid nohup node ${AGENT} run --node ${n.name} </dev/null >/run/tandem/agent.log 2>&1 &`);
    }
    for (const n of [n1, n2]) {
      const r = await n.exec(`i=0; until grep -q ' running: ' /run/tandem/agent.log; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.1; done`, { timeoutMs: 15_000 });
      expect(r.code, `${n.name}'s agent did not start: ${(await n.exec('cat /run/tandem/agent.log')).stdout}`).toBe(0);
    }
    // Each agent keeps to its node's paths.
    expect(fs.existsSync(path.join(n1.dir, 'root/run/tandem/control.sock'))).toBe(true);
    expect(fs.existsSync(path.join(n2.dir, 'root/var/lib/tandem/tls/node.crt'))).toBe(true);

    const [src, dst] = [n1.disks[0]!, n2.disks[0]!];
    await tandem(n1, `create ${TAG} --disk ${src}`);
    await tandem(n2, `accept ${TAG} --disk ${dst}`);
    await tandem(n1, `extend ${TAG} --target node2 --address ${n2.address}:7500 --mode sync`);
    await writeExport(n1, 'write -P 0x42 0 16M', 'write -P 0x17 40M 3M');
    const synced = await waitFor(n1, inSync, 'the initial resync');
    expect(synced.targets[0]!.address).toBe(`${n2.address}:7500`);
    expect(await sha(n2, dst)).toBe(await sha(n1, src));
    const t1 = Date.now();

    // The replication link goes down: the source carries on alone and tracks the changes.
    await lab.cutLink(n2);
    await writeExport(n1, 'write -P 0x66 4M 2M');
    const cut = await waitFor(n1, (m) => m.targets[0]?.status === 'Out Of Sync', 'Out Of Sync after the cut', 40_000);
    await writeExport(n1, 'write -P 0x77 20M 1M');
    expect(cut.targets[0]!.lastError).not.toBe('');
    expect((await status(n1)).targets[0]!.dirtyChunks).toBeGreaterThan(0);
    const t2 = Date.now();

    await lab.restoreLink(n2);
    await waitFor(n1, inSync, 'the resync after the link came back', 40_000);
    expect(await sha(n2, dst)).toBe(await sha(n1, src));
    const mirrorStatus = await ssh(n1, `node ${AGENT} mirror_status ${TAG}`).catch((e: Error) => e.message);
    process.stdout.write(`lab mirror: set up and first sync ${t1 - t0} ms, cut detected ${t2 - t1} ms, resync ${Date.now() - t2} ms\n${mirrorStatus}`);

    // kill -9 of node2's agent only.
    const survivor = lab.agentPids(n1);
    expect(survivor).toHaveLength(1);
    expect(lab.agentPids(n2)).toHaveLength(1);
    expect(await lab.killAgent(n2)).toBe(1);
    expect(lab.agentPids(n2)).toEqual([]);
    expect(lab.agentPids(n1)).toEqual(survivor);
    await waitFor(n1, (m) => m.targets[0]?.status === 'Out Of Sync', 'Out Of Sync after the target agent was killed');
  });

  it('teardown leaves no namespace, bridge, veth, loop device or temp dir behind', async () => {
    const { id, dir } = lab;
    const loops = lab.nodes.flatMap((n) => n.disks);
    await lab.teardown();
    await lab.teardown(); // idempotent
    expect((await run('ip', ['netns', 'list'])).stdout).not.toMatch(new RegExp(`^tlab${id}-`, 'm'));
    expect((await run('ip', ['-o', 'link', 'show'])).stdout).not.toMatch(new RegExp(`tlab${id}(br|v\\d)`));
    const attached = (await run('losetup', ['-l', '-n', '--raw', '-O', 'NAME,BACK-FILE'])).stdout;
    expect(attached).not.toContain(`/tandem-tlab${id}/`);
    for (const l of loops) expect(attached).not.toMatch(new RegExp(`^${l} .*tandem-tlab`, 'm'));
    expect(fs.existsSync(dir)).toBe(false);
  });
});
