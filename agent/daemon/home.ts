// Where an agent keeps things. TANDEM_HOME puts everything under one folder, so several agents can
// share a machine (tests, the local lab); otherwise the system paths.
import fs from 'node:fs';
import path from 'node:path';
import { agentLayout, type AgentPaths } from '../../common/agent-layout.js';

export type { AgentPaths };

export function agentPaths(home = process.env.TANDEM_HOME): AgentPaths {
  return agentLayout(home);
}

export function ensureDirs(p: AgentPaths): void {
  for (const d of [p.stateDir, p.runDir, p.bitmapDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
}

/** Writes JSON so that a crash leaves either the old or the new file, never a torn one. */
export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

export function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
