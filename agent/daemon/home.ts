// Where an agent keeps things. TANDEM_HOME puts everything under one folder, so several agents can
// share a machine (tests, the local lab); otherwise the system paths.
import fs from 'node:fs';
import { agentLayout, type AgentPaths } from '../../common/agent-layout.js';
import { writeFileAtomic } from '../../common/atomic-file.js';

export type { AgentPaths };

export function agentPaths(home = process.env.TANDEM_HOME): AgentPaths {
  return agentLayout(home);
}

export function ensureDirs(p: AgentPaths): void {
  for (const d of [p.stateDir, p.runDir, p.bitmapDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
}

/** Writes JSON so that a crash leaves either the old or the new file, never a torn one. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n', 0o600);
}

export function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}
