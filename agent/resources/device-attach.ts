// Attaching a mirror's NBD export as a /dev block device (the manual's NetRAID device), and detaching it.
//
// Where the kernel has the NBD driver, `nbd-client -unix` attaches it as /dev/nbdN. Elsewhere (many
// containers and cloud kernels) nbdfuse exposes the export as a file in a FUSE mount and losetup turns
// that file into /dev/loopN; both take mkfs and mount.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { findTool, requireTool, runTool, runToolOk } from './system-tools.js';
import { mountPointsOf } from './filesystem.js';

export type AttachMethod = 'nbd-client' | 'nbdfuse';

export interface AttachOptions {
  /** The export's Unix socket (the agent's run/TAG.nbd.sock). */
  socket: string;
  /** The NBD export name: the mirror's tag. */
  exportName: string;
  /** For nbdfuse: a folder of our own where the FUSE mount goes (created; must not be in use). */
  workDir: string;
  /** Default: nbd-client when the kernel has NBD, otherwise nbdfuse. */
  method?: AttachMethod;
  /** How long nbdfuse may take to expose the export. */
  timeoutMs?: number;
}

export interface AttachedDevice {
  device: string;
  method: AttachMethod;
  /** Idempotent; bounded in time; refuses (and can be retried) while the device is mounted. */
  detach(): Promise<void>;
}

export class AttachError extends Error {}

/** True if the kernel has the NBD driver, loading it if modprobe can. */
export async function kernelHasNbd(): Promise<boolean> {
  if (fs.existsSync('/sys/module/nbd')) return true;
  if (!findTool('modprobe')) return false;
  const r = await runTool('modprobe', ['nbd'], 'load the kernel NBD driver', 15_000);
  return r.code === 0 && fs.existsSync('/sys/module/nbd');
}

export async function attachExport(options: AttachOptions): Promise<AttachedDevice> {
  let st: fs.Stats;
  try {
    st = fs.statSync(options.socket);
  } catch {
    throw new AttachError(`no NBD export at ${options.socket} (nothing there): is mirror ${options.exportName} created and its agent running? (tandem status)`);
  }
  if (!st.isSocket()) throw new AttachError(`${options.socket} is not a socket, so not an NBD export; name the mirror's export socket (tandem status shows it)`);
  const method = options.method ?? ((await kernelHasNbd()) && findTool('nbd-client') ? 'nbd-client' : 'nbdfuse');
  return method === 'nbd-client' ? attachWithNbdClient(options) : attachWithNbdfuse(options);
}

/** Wraps a detach procedure so that it runs once at a time, succeeds once, and can be retried after a failure. */
function onceDetach(device: string, work: () => Promise<void>): () => Promise<void> {
  let done = false;
  let running: Promise<void> | null = null;
  return () => {
    if (done) return Promise.resolve();
    if (running) return running;
    running = (async () => {
      const mounted = mountPointsOf(device);
      if (mounted.length > 0) throw new AttachError(`${device} is mounted at ${mounted.join(', ')}; unmount it before detaching`);
      await work();
      done = true;
    })().finally(() => {
      running = null;
    });
    return running;
  };
}

// ---- kernel NBD -------------------------------------------------------------------------------

async function attachWithNbdClient(options: AttachOptions): Promise<AttachedDevice> {
  requireTool('nbd-client', 'attach the export with the kernel NBD driver');
  const device = freeNbdDevice();
  await runToolOk('nbd-client', ['-unix', options.socket, '-N', options.exportName, device], `attach ${options.socket} as ${device}`, 30_000);
  return {
    device,
    method: 'nbd-client',
    detach: onceDetach(device, async () => {
      await runToolOk('nbd-client', ['-d', device], `detach ${device}`, 30_000);
    }),
  };
}

/** The first /dev/nbdN with no client connected (sysfs shows a pid file only while one is). */
function freeNbdDevice(): string {
  const names = fs.readdirSync('/sys/block').filter((n) => /^nbd\d+$/.test(n)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
  for (const n of names) if (!fs.existsSync(`/sys/block/${n}/pid`) && fs.existsSync(`/dev/${n}`)) return `/dev/${n}`;
  throw new AttachError(`every NBD device is in use (${names.length} of them); load the driver with more: modprobe nbd nbds_max=64`);
}

// ---- nbdfuse + loop ---------------------------------------------------------------------------

/** The NBD URI of a Unix-socket export; only the characters that would break the URI are escaped. */
function exportUri(socket: string, name: string): string {
  const escape = (s: string) => s.replace(/[%&#?+ ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return `nbd+unix:///${encodeURIComponent(name)}?socket=${escape(socket)}`;
}

async function attachWithNbdfuse(options: AttachOptions): Promise<AttachedDevice> {
  const nbdfuse = requireTool('nbdfuse', 'attach the export without the kernel NBD driver');
  requireTool('losetup', 'turn the nbdfuse file into a block device');
  requireTool('fusermount3', 'unmount nbdfuse when detaching');
  const fuseDir = path.resolve(options.workDir);
  fs.mkdirSync(fuseDir, { recursive: true });
  const file = path.join(fuseDir, 'device');
  if (fs.existsSync(file)) throw new AttachError(`${fuseDir} already holds an attached export; detach it first or use another folder`);
  // nbdfuse runs in the foreground for as long as the file is exposed: it is our child.
  const child: ChildProcess = spawn(nbdfuse, [file, exportUri(options.socket, options.exportName)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.once('error', (e) => (stderr += e.message));
  const stopChild = async () => {
    await runTool('fusermount3', ['-u', fuseDir], `unmount ${fuseDir}`, 10_000).catch(() => undefined);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
  };
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  while (!fs.existsSync(file)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new AttachError(`nbdfuse could not attach ${options.socket} (export ${options.exportName}): ${stderr.trim() || `exit ${child.exitCode}`}`);
    }
    if (Date.now() > deadline) {
      await stopChild();
      throw new AttachError(`nbdfuse did not expose ${options.socket} within ${(options.timeoutMs ?? 15_000) / 1000} s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let device: string;
  try {
    // --direct-io=off: the FUSE file does not support O_DIRECT.
    device = (await runToolOk('losetup', ['--find', '--show', '--direct-io=off', file], `attach ${file} as a loop device`, 30_000)).trim();
  } catch (err) {
    await stopChild();
    throw err;
  }
  return {
    device,
    method: 'nbdfuse',
    detach: onceDetach(device, async () => {
      const r = await runTool('losetup', ['-d', device], `detach ${device}`, 15_000);
      if (r.code !== 0 && !/No such device|not a block device|failed to use device/i.test(r.stderr)) {
        throw new AttachError(`cannot detach ${device}: ${r.stderr.trim()}`);
      }
      await stopChild();
    }),
  };
}
