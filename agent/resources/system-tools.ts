// Running the system's block-device tools (lsblk, losetup, mkfs, mount, …) with bounded time, and
// saying which Debian package to install when one is missing.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The Debian 12 package of each tool the resource modules run. */
export const DEBIAN_PACKAGE: Record<string, string> = {
  lsblk: 'util-linux',
  blkid: 'util-linux',
  losetup: 'mount',
  mount: 'mount',
  umount: 'mount',
  nbdfuse: 'nbdfuse',
  fusermount3: 'fuse3',
  'nbd-client': 'nbd-client',
  modprobe: 'kmod',
  'mkfs.ext4': 'e2fsprogs',
  'mkfs.ext3': 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  fuser: 'psmisc',
};

export class MissingToolError extends Error {
  constructor(readonly tool: string, purpose: string) {
    const pkg = DEBIAN_PACKAGE[tool];
    super(`${tool} is not installed (needed to ${purpose}); install it: apt-get install ${pkg ?? tool}`);
  }
}

/** The tool's path if an executable of that name is on PATH, else null. */
export function findTool(tool: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, tool);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

export function requireTool(tool: string, purpose: string): string {
  const p = findTool(tool);
  if (!p) throw new MissingToolError(tool, purpose);
  return p;
}

export interface ToolResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a tool (looked up on PATH first, so a missing one gets MissingToolError); never throws for a non-zero exit. */
export function runTool(tool: string, args: string[], purpose: string, timeoutMs = 60_000): Promise<ToolResult> {
  const file = requireTool(tool, purpose);
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as { killed?: boolean }).killed) {
        return reject(new Error(`${tool} ${args.join(' ')} did not finish within ${timeoutMs / 1000} s (${purpose})`));
      }
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}

/** Like runTool, but a non-zero exit is an error that quotes what the tool said. */
export async function runToolOk(tool: string, args: string[], purpose: string, timeoutMs?: number): Promise<string> {
  const r = await runTool(tool, args, purpose, timeoutMs);
  if (r.code !== 0) throw new Error(`cannot ${purpose}: ${tool} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}
