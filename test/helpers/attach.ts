// Attaching an NBD export as a block device without the kernel NBD driver: nbdfuse exposes it as a file,
// losetup turns the file into /dev/loopN.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { run, runOk } from './tools.js';

export interface Attached {
  device: string;
  detach(): Promise<void>;
}

export async function attachExport(socket: string, workDir: string): Promise<Attached> {
  const fuseDir = path.join(workDir, 'fuse');
  fs.mkdirSync(fuseDir, { recursive: true });
  const file = path.join(fuseDir, 'disk');
  const child: ChildProcess = spawn('nbdfuse', [file, '--unix', socket], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const deadline = Date.now() + 15_000;
  while (!fs.existsSync(file)) {
    if (child.exitCode !== null) throw new Error(`nbdfuse exited ${child.exitCode}: ${stderr}`);
    if (Date.now() > deadline) throw new Error(`nbdfuse did not expose ${file} in time: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const device = (await runOk('losetup', ['-f', '--show', file])).trim();
  return {
    device,
    async detach() {
      await run('losetup', ['-d', device]);
      await run('fusermount3', ['-u', fuseDir]);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
        await exited;
      }
    },
  };
}
