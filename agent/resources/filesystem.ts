// File systems on a node: make one, mount and unmount it, find what is mounted where, and take an
// existing mounted file system off its disk so the disk can become a mirror (Replicate Existing File
// System).
import fs from 'node:fs';
import path from 'node:path';
import type { FileSystemType } from '../../common/hierarchy.js';
import { findTool, runTool, runToolOk } from './system-tools.js';

export interface MountEntry {
  /** major:minor of the mounted device (0:N for pseudo file systems). */
  majorMinor: string;
  /** Path inside the file system that is mounted here ('/' unless a bind mount of a sub-folder). */
  root: string;
  mountPoint: string;
  fstype: string;
  /** What was mounted: a /dev path, or a pseudo name (proc, tmpfs, …). */
  source: string;
  options: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)); later lines are mounted over earlier ones. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const f = left.split(' ');
    const r = right.split(' ');
    out.push({
      majorMinor: f[2] ?? '',
      root: unescape(f[3] ?? ''),
      mountPoint: unescape(f[4] ?? ''),
      options: f[5] ?? '',
      fstype: r[0] ?? '',
      source: unescape(r[1] ?? ''),
    });
  }
  return out;
}

export function readMounts(): MountEntry[] {
  return parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The file system mounted at exactly `mountPoint` (the top one if several are stacked), or null. */
export function findMount(mountPoint: string, mounts: MountEntry[] = readMounts()): MountEntry | null {
  const want = path.resolve(mountPoint);
  for (let i = mounts.length - 1; i >= 0; i--) if ((mounts[i] as MountEntry).mountPoint === want) return mounts[i] as MountEntry;
  return null;
}

/** Where a block device is mounted (matched by major:minor, so /dev/loop3 and a symlink to it agree). */
export function mountPointsOf(device: string, mounts: MountEntry[] = readMounts()): string[] {
  const mm = majorMinorOf(device);
  return mounts.filter((m) => (mm ? m.majorMinor === mm : m.source === device)).map((m) => m.mountPoint);
}

function majorMinorOf(device: string): string | null {
  try {
    const st = fs.statSync(device);
    if (!st.isBlockDevice()) return null;
    return `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
  } catch {
    return null;
  }
}

/** The file system types this node can make: the mkfs programs present, in the manual's preference order. */
export function availableFileSystemTypes(): FileSystemType[] {
  return (['ext4', 'xfs', 'ext3'] as const).filter((t) => findTool(`mkfs.${t}`) !== null);
}

/** Makes a file system on `device`. Everything on it is lost: callers confirm first (the manual's CAUTION). */
export async function makeFileSystem(device: string, type: FileSystemType, timeoutMs = 30 * 60_000): Promise<void> {
  const args = type === 'xfs' ? ['-q', '-f', device] : ['-q', '-F', device];
  await runToolOk(`mkfs.${type}`, args, `make an ${type} file system on ${device}`, timeoutMs);
}

export class BusyError extends Error {}

/** Mounts `device` at `mountPoint` (created if missing); refuses a mount point already in use. */
export async function mountFileSystem(device: string, mountPoint: string, options: { fstype?: string; readOnly?: boolean; extraOptions?: string[] } = {}): Promise<void> {
  const mp = path.resolve(mountPoint);
  const already = findMount(mp);
  if (already) throw new BusyError(`${mp} is already a mount point (of ${already.source}); unmount it or choose another mount point`);
  fs.mkdirSync(mp, { recursive: true });
  const opts = [...(options.readOnly ? ['ro'] : []), ...(options.extraOptions ?? [])];
  const args = [...(options.fstype ? ['-t', options.fstype] : []), ...(opts.length ? ['-o', opts.join(',')] : []), device, mp];
  await runToolOk('mount', args, `mount ${device} at ${mp}`);
}

export interface UnmountOptions {
  /** How many more times to try after "target is busy" (a process closing its files, udev probing). */
  retries?: number;
  retryDelayMs?: number;
}

/**
 * Unmounts `mountPoint`. Retries a few times while it is busy (bounded: retries × delay), then throws
 * a BusyError naming the processes that keep it busy. Not mounted: nothing to do.
 */
export async function unmountFileSystem(mountPoint: string, options: UnmountOptions = {}): Promise<void> {
  const mp = path.resolve(mountPoint);
  const retries = options.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    if (!findMount(mp)) return;
    const r = await runTool('umount', [mp], `unmount ${mp}`);
    if (r.code === 0) return;
    if (!/busy/i.test(r.stderr)) throw new Error(`cannot unmount ${mp}: ${r.stderr.trim()}`);
    if (attempt >= retries) throw new BusyError(await busyMessage(mp));
    await new Promise((res) => setTimeout(res, options.retryDelayMs ?? 200));
  }
}

export interface ProcessUsingMount {
  pid: number;
  command: string;
}

/** The processes using files on the file system mounted at `mountPoint` (`fuser -m`), or null without fuser. */
export async function processesUsing(mountPoint: string): Promise<ProcessUsingMount[] | null> {
  if (!findTool('fuser')) return null;
  const r = await runTool('fuser', ['-m', mountPoint], `find the processes using ${mountPoint}`, 15_000);
  // fuser prints the PIDs (with access letters such as "c" for cwd) on stdout; exit 1 means none.
  const pids = [...r.stdout.matchAll(/(\d+)/g)].map((m) => Number(m[1])).filter((p) => p !== process.pid);
  return pids.map((pid) => {
    let command = '?';
    try {
      command = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      // exited meanwhile
    }
    return { pid, command };
  });
}

async function busyMessage(mp: string): Promise<string> {
  const users = await processesUsing(mp);
  if (users === null) return `${mp} is busy: some process uses files on it (install psmisc to have fuser name them); stop it and try again`;
  if (users.length === 0) return `${mp} is busy (no process holds it open: perhaps a mount below it or a loop device); unmount those and try again`;
  return `${mp} is busy: used by ${users.map((u) => `${u.command} (pid ${u.pid})`).join(', ')}; stop them and try again`;
}

export interface ExistingFileSystem {
  mountPoint: string;
  device: string;
  fstype: string;
  /** The mount options it had, to mount it the same way on the NetRAID device. */
  options: string;
}

/** Finds the disk and type of the file system mounted at `mountPoint` (Replicate Existing File System). */
export function describeExisting(mountPoint: string, mounts: MountEntry[] = readMounts()): ExistingFileSystem {
  const mp = path.resolve(mountPoint);
  const m = findMount(mp, mounts);
  if (!m) throw new Error(`nothing is mounted at ${mp}: Replicate Existing File System needs the file system mounted there; mount it, or choose Replicate New File System`);
  if (!m.source.startsWith('/dev/')) throw new Error(`${mp} is a ${m.fstype} file system on ${m.source}, not on a disk or partition; it cannot be replicated`);
  if (m.root !== '/') throw new Error(`${mp} is a bind mount of ${m.root} on ${m.source}; choose the mount point of the whole file system`);
  return { mountPoint: mp, device: m.source, fstype: m.fstype, options: m.options };
}

/**
 * The first step of Replicate Existing File System: finds the device under `mountPoint` and unmounts
 * it. Refuses, naming the processes, while anything uses it: the manual's flow stops applications
 * itself, Tandem leaves that choice to the administrator. The data on the device is untouched.
 */
export async function takeOverExisting(mountPoint: string): Promise<ExistingFileSystem> {
  const fsInfo = describeExisting(mountPoint);
  const users = await processesUsing(fsInfo.mountPoint);
  if (users && users.length > 0) throw new BusyError(await busyMessage(fsInfo.mountPoint));
  await unmountFileSystem(fsInfo.mountPoint, { retries: 3 });
  return fsInfo;
}
