// Running real programs from tests, with bounded time and errors that show what they printed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const AGENT_BUNDLE = path.join(REPO, 'resources', 'agent', 'tandem-agent.cjs');

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a program; resolves with its output and exit code (never throws for a non-zero exit). */
export function run(cmd: string, args: string[], options: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: options.env ?? process.env }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like run, but throws with the program's output if it exits non-zero. */
export async function runOk(cmd: string, args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tandem-${prefix}-`));
}

export function sha256File(p: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

export function sha256(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

/** A file of `size` bytes filled with reproducible pseudo-random data. */
export function makeRandomFile(p: string, size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  fs.writeFileSync(p, out);
  return out;
}

export function nbdUri(socket: string, name = ''): string {
  return `nbd+unix:///${name}?socket=${socket}`;
}

/** Resolves once `ready()` is true after some output, rejects if the program exits first or after 15 s. */
export function waitForOutput(child: ChildProcess, exited: Promise<number | null>, ready: () => boolean, describe: () => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out: ${describe()}`)), 15_000);
    const check = () => {
      if (ready()) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code}: ${describe()}`));
    });
  });
}

export interface RunningExport {
  socket: string;
  uri: string;
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Starts `tandem-agent export` from the built bundle and waits until it says it is serving. */
export async function startExport(args: { file: string; socket: string; readOnly?: boolean; name?: string; tcp?: string; env?: NodeJS.ProcessEnv }): Promise<RunningExport> {
  const argv = [AGENT_BUNDLE, 'export', '--file', args.file, '--socket', args.socket];
  if (args.readOnly) argv.push('--read-only');
  if (args.name !== undefined) argv.push('--name', args.name);
  if (args.tcp) argv.push('--tcp', args.tcp);
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: args.env ?? process.env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (err += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitForOutput(child, exited, () => out.includes('serving '), () => `export did not start; stderr: ${err}`);
  return {
    socket: args.socket,
    uri: nbdUri(args.socket),
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
