// Real agent daemons on loopback, each with its own TANDEM_HOME, driven through the real CLIs.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { MirrorStatus, TargetStatus } from '../../common/mirror-status.js';
import { AGENT_BUNDLE, run, waitForOutput, type RunResult } from './tools.js';
import { createClusterCa, installNodeCertificate } from './pki.js';
import type { CertificateAuthority } from '../../common/pki.js';

export interface Agent {
  node: string;
  home: string;
  port: number;
  address: string;
  child: ChildProcess;
  log: () => string;
  /** Runs `tandem ARGS` against this agent. */
  tandem(...args: string[]): Promise<RunResult>;
  /** Runs one of the manual's CLIs (mirror_status, mirror_action) against this agent. */
  program(name: string, ...args: string[]): Promise<RunResult>;
  status(tag: string): Promise<MirrorStatus>;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

let clusterCa: Promise<CertificateAuthority> | null = null;
/** One cluster CA for every agent a test process starts. */
export function testClusterCa(): Promise<CertificateAuthority> {
  clusterCa ??= createClusterCa();
  return clusterCa;
}

export interface AgentOptions {
  /** The CA whose certificate the agent gets (default: the test cluster's); 'plaintext': --insecure-plaintext. */
  security?: CertificateAuthority | 'plaintext';
  /** More `tandem-agent run` arguments (e.g. --heartbeat HOST:PORT). */
  args?: string[];
}

/**
 * Starts a real agent. Like an installed node it replicates over mutual TLS: unless told otherwise it
 * gets a certificate of the test cluster's CA in its TLS folder (once; a restart keeps it).
 */
export async function startAgent(home: string, node: string, port?: number, extraEnv: NodeJS.ProcessEnv = {}, options: AgentOptions = {}): Promise<Agent> {
  fs.mkdirSync(home, { recursive: true });
  const p = port ?? (await freePort());
  const env = { ...process.env, ...extraEnv, TANDEM_HOME: home, TANDEM_PROGRAM: '' };
  const args = [AGENT_BUNDLE, 'run', '--node', node, '--replication', `127.0.0.1:${p}`];
  const tlsDir = path.join(home, 'state', 'tls');
  if (options.args) args.push(...options.args);
  if (options.security === 'plaintext') args.push('--insecure-plaintext');
  else if (!fs.existsSync(path.join(tlsDir, 'node.crt'))) await installNodeCertificate(tlsDir, options.security ?? (await testClusterCa()), node);
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitForOutput(child, exited, () => out.includes(' running: '), () => `agent ${node} did not start: ${out}`);
  const cli = (program: string, args: string[]) =>
    run(process.execPath, [AGENT_BUNDLE, ...args], { env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: program }, timeoutMs: 60_000 });
  return {
    node, home, port: p, address: `127.0.0.1:${p}`, child,
    log: () => out,
    tandem: (...args) => cli('tandem', args),
    program: (name, ...args) => cli(name, args),
    async status(tag) {
      const r = await cli('tandem', ['status', tag, '--json']);
      if (r.code !== 0) throw new Error(`tandem status failed: ${r.stderr}`);
      return (JSON.parse(r.stdout) as MirrorStatus[])[0] as MirrorStatus;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export async function tandemOk(agent: Agent, ...args: string[]): Promise<string> {
  const r = await agent.tandem(...args);
  if (r.code !== 0) throw new Error(`tandem ${args.join(' ')} on ${agent.node} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Polls the source's status until every target satisfies `ok` (bounded). */
export async function waitTargets(source: Agent, tag: string, ok: (t: TargetStatus) => boolean, timeoutMs = 60_000): Promise<MirrorStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MirrorStatus | undefined;
  while (Date.now() < deadline) {
    last = await source.status(tag);
    if (last.targets.length > 0 && last.targets.every(ok)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`targets of ${tag} did not get there in time: ${JSON.stringify(last?.targets, null, 1)}`);
}

/**
 * Polls the source's bitmap file (`bitmap -X`) until no target's bits are set on disk: the intent log
 * clears bits lazily after the acknowledgements, so resync byte counts are exact only after this.
 */
export async function waitBitmapClean(source: Agent, tag: string, timeoutMs = 60_000): Promise<void> {
  const file = (await source.status(tag)).bitmap.file;
  if (!file) throw new Error(`${tag} on ${source.node} has no bitmap file`);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await source.program('bitmap', '-X', file);
    last = r.stdout + r.stderr;
    if (r.code === 0 && !/ dirty \(/.test(r.stdout)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the bitmap of ${tag} on ${source.node} still has dirty bits on disk:\n${last}`);
}

/** Polls one agent's status of `tag` until `ok` holds (bounded); `what` names it in the failure. */
export async function waitStatus(a: Agent, tag: string, ok: (m: MirrorStatus) => boolean, what: string, timeoutMs = 30_000): Promise<MirrorStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: MirrorStatus | undefined;
  while (Date.now() < deadline) {
    last = await a.status(tag);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${a.node}: ${what} did not happen in time: ${JSON.stringify(last, null, 1)}`);
}

/** Writes through the agent's NBD export of `tag` with qemu-io commands ("write -P 0x11 0 64k"). */
export function writeExport(a: Agent, tag: string, ...commands: string[]): Promise<string> {
  return run('qemu-io', ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), exportUri(a, tag)], { timeoutMs: 60_000 }).then((r) => {
    if (r.code !== 0) throw new Error(`qemu-io ${commands.join('; ')} on ${a.node} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  });
}

export const inSync = (t: TargetStatus) => t.status === 'Fully Operational' && t.dirtyChunks === 0;

export function exportUri(source: Agent, tag: string): string {
  return `nbd+unix:///${tag}?socket=${path.join(source.home, 'run', `${tag}.nbd.sock`)}`;
}

export function makeDisk(file: string, size: number): string {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  return file;
}
