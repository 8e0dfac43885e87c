// Shared by the benchmark scripts: running programs, agents on loopback, fio, medians.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { callAgent } from '../agent/control/json-rpc.js';
import type { MirrorStatus, TargetStatus } from '../common/mirror-status.js';

export const repo = path.resolve(import.meta.dirname, '..');
/** The agent bundle to run; BENCH_AGENT_BUNDLE names another build (A/B comparisons of a change). */
export const bundle = process.env.BENCH_AGENT_BUNDLE ?? path.join(repo, 'resources', 'agent', 'tandem-agent.cjs');

export function exec(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 64 << 20, env: env ?? process.env }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout))),
  );
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

export async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 120_000, every = 100): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export interface AgentProc {
  home: string;
  port: number;
  child: ChildProcess;
  node: string;
}

/** @param cpus a taskset CPU list the agent is confined to (as if alone on a machine with those CPUs) */
export async function startAgent(dir: string, node: string, cpus?: string): Promise<AgentProc> {
  if (!fs.existsSync(bundle)) throw new Error('run `npm run build` first');
  const home = path.join(dir, node);
  fs.mkdirSync(home, { recursive: true });
  const port = await freePort();
  // Benchmarks measure the data path over plain TCP (--insecure-plaintext), as documented; TLS costs are
  // measured on their own by bench/tls-transport.ts.
  const argv = [process.execPath, bundle, 'run', '--node', node, '--replication', `127.0.0.1:${port}`, '--insecure-plaintext'];
  // taskset execs the agent: the child's pid is the agent's (its CPU time is read from /proc).
  const [cmd, ...args] = cpus ? ['taskset', '-c', cpus, ...argv] : argv;
  const child = spawn(cmd as string, args, { env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: '' }, stdio: 'ignore' });
  await waitFor(() => fs.existsSync(path.join(home, 'run', 'control.sock')), `agent ${node}`);
  return { home, port, child, node };
}

export const tandem = (a: AgentProc, ...args: string[]): Promise<string> =>
  exec(process.execPath, [bundle, 'tandem', ...args], { ...process.env, TANDEM_HOME: a.home, TANDEM_PROGRAM: '' });

/** One control-socket call, in process (no CLI start-up time in measurements). */
export function control(a: AgentProc, method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  return callAgent(path.join(a.home, 'run', 'control.sock'), method, params);
}

export async function targetsOf(a: AgentProc, tag: string): Promise<TargetStatus[]> {
  return ((await control(a, 'mirror.status', { tag })) as MirrorStatus[])[0]!.targets;
}

export const fill = (file: string, mib: number, source = '/dev/zero'): Promise<string> =>
  exec('dd', [`if=${source}`, `of=${file}`, 'bs=1M', `count=${mib}`, 'status=none']);

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function sha256(file: string): Promise<string> {
  return (await exec('sha256sum', [file])).split(' ')[0] as string;
}

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc/PID/stat. Used for the
 * load-insensitive half of each benchmark: CPU seconds per GiB moved changes little when other work
 * shares the cores, where throughput does.
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

