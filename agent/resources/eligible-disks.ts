// Which disks and partitions can become a mirror's source or target, and which mounted file systems
// can be replicated in place, with the manual's filters: not mounted, not swap, not already protected,
// not a system disk (/, /boot, …), no floppy or CD-ROM. Ineligible ones are returned too, each with
// its reasons, so the wizard can say why a disk is not offered.
//
// The filter is pure over a snapshot; gatherSnapshot() is the only part that looks at the machine.
import fs from 'node:fs';
import { SYSTEM_MOUNT_POINTS, type DiskCandidate, type MountedFileSystemCandidate } from '../../common/hierarchy.js';
import { parseMountInfo, type MountEntry } from './filesystem.js';
import { findTool, runTool, runToolOk } from './system-tools.js';

/** One device of `lsblk --json --bytes -o NAME,PATH,SIZE,TYPE,MOUNTPOINTS,FSTYPE,RO,PKNAME`. */
export interface LsblkDevice {
  name: string;
  path: string;
  size: number | null;
  type: string;
  mountpoints?: Array<string | null>;
  fstype: string | null;
  ro: boolean;
  pkname?: string | null;
  children?: LsblkDevice[];
  /** Set when probing its contents failed (blkid hung on it): it is then never offered. */
  probeError?: string;
}

export interface DiskSnapshot {
  blockDevices: LsblkDevice[];
  /** Device paths from /proc/swaps. */
  swaps: string[];
  mounts: MountEntry[];
}


/** File system types Replicate Existing File System can take over. */
export const REPLICABLE_FSTYPES = ['ext4', 'ext3', 'ext2', 'xfs'];

export const LSBLK_ARGS = ['--json', '--bytes', '-o', 'NAME,PATH,SIZE,TYPE,MOUNTPOINTS,FSTYPE,RO,PKNAME'];

export interface DiskFilter {
  /** Device paths already in a mirror or target on this node, or attached NetRAID devices. */
  protectedDevices: ReadonlySet<string>;
  /** For a target: the source's size in bytes; smaller devices are not offered. */
  minSize?: number;
}

interface Node {
  dev: LsblkDevice;
  parent: Node | null;
  children: Node[];
}

function isSystemMount(mp: string): boolean {
  return SYSTEM_MOUNT_POINTS.includes(mp) || mp === '/proc' || mp.startsWith('/proc/');
}

/** Real mount points only: lsblk also lists active swap as "[SWAP]" (judged from /proc/swaps instead). */
function mountpointsOf(d: LsblkDevice): string[] {
  return (d.mountpoints ?? []).filter((m): m is string => typeof m === 'string' && m.startsWith('/'));
}

function tree(devices: LsblkDevice[], parent: Node | null = null): Node[] {
  return devices.map((dev) => {
    const node: Node = { dev, parent, children: [] };
    node.children = tree(dev.children ?? [], node);
    return node;
  });
}

function descendants(n: Node): Node[] {
  return n.children.flatMap((c) => [c, ...descendants(c)]);
}

function ancestors(n: Node): Node[] {
  return n.parent ? [n.parent, ...ancestors(n.parent)] : [];
}

/** Every disk, partition and holder (LVM volume, …) with whether it may be a source or target, and why not. */
export function eligibleDisks(snapshot: DiskSnapshot, filter: DiskFilter): DiskCandidate[] {
  const swaps = new Set(snapshot.swaps);
  const out: DiskCandidate[] = [];
  const seen = new Set<string>();
  const visit = (n: Node) => {
    const d = n.dev;
    // A device with several parents (an LVM volume over two disks) appears under each: list it once.
    if (!seen.has(d.path)) {
      seen.add(d.path);
      out.push(judge(n, swaps, filter));
    }
    n.children.forEach(visit);
  };
  tree(snapshot.blockDevices).forEach(visit);
  return out;
}

function judge(n: Node, swaps: Set<string>, filter: DiskFilter): DiskCandidate {
  const d = n.dev;
  const size = d.size ?? 0;
  const reasons: string[] = [];
  const partitions = n.children.filter((c) => c.dev.type === 'part');
  const below = descendants(n);
  const above = ancestors(n);

  if (d.type === 'rom') reasons.push('a CD/DVD drive');
  if (/^fd\d+$/.test(d.name)) reasons.push('a floppy drive');
  if (/^zram\d+$/.test(d.name)) reasons.push('a compressed RAM device (zram), gone at reboot');
  if (d.type !== 'rom' && !/^fd\d+$/.test(d.name) && size === 0) reasons.push('empty (size 0)');

  const system = [n, ...below, ...above].flatMap((x) => mountpointsOf(x.dev).filter(isSystemMount));
  if (system.length > 0) reasons.push(`holds the system's ${system.join(', ')}`);

  for (const mp of mountpointsOf(d)) if (!isSystemMount(mp)) reasons.push(`mounted at ${mp}`);
  for (const x of [...below, ...above]) {
    const mps = mountpointsOf(x.dev).filter((m) => !isSystemMount(m));
    if (mps.length > 0) reasons.push(`${x.dev.path} ${above.includes(x) ? '(which contains it)' : '(on it)'} is mounted at ${mps.join(', ')}`);
  }

  if (swaps.has(d.path)) reasons.push('in use as swap');
  for (const x of [...below, ...above]) if (swaps.has(x.dev.path)) reasons.push(`${x.dev.path} ${above.includes(x) ? '(which contains it)' : '(on it)'} is in use as swap`);

  if (filter.protectedDevices.has(d.path)) reasons.push('already protected by Tandem (a mirror, target or NetRAID device)');
  for (const x of [...below, ...above]) if (filter.protectedDevices.has(x.dev.path)) reasons.push(`${x.dev.path} ${above.includes(x) ? '(which contains it)' : '(on it)'} is already protected by Tandem`);

  if (partitions.length > 0) reasons.push(`has partitions: choose one of ${partitions.map((p) => p.dev.path).join(', ')}`);
  else if (below.length > 0) reasons.push(`in use by ${below.map((x) => `${x.dev.path} (${x.dev.type})`).join(', ')}`);

  if (d.ro) reasons.push('read-only');
  if (d.probeError) reasons.push(`its contents could not be read (${d.probeError}); check the device before using it`);
  if (filter.minSize !== undefined && size > 0 && size < filter.minSize) reasons.push(`smaller than the source (${size} < ${filter.minSize} bytes)`);

  return { path: d.path, name: d.name, kind: d.type, size, fstype: d.fstype, eligible: reasons.length === 0, reasons };
}

/** Mounted file systems that Replicate Existing File System could take over, and why the others cannot be. */
export function replicableFileSystems(snapshot: DiskSnapshot, filter: Pick<DiskFilter, 'protectedDevices'>): MountedFileSystemCandidate[] {
  const byPath = new Map<string, LsblkDevice>();
  const walk = (ds: LsblkDevice[]) => ds.forEach((d) => {
    byPath.set(d.path, d);
    walk(d.children ?? []);
  });
  walk(snapshot.blockDevices);
  const out: MountedFileSystemCandidate[] = [];
  for (const m of snapshot.mounts) {
    if (!m.source.startsWith('/dev/')) continue; // proc, tmpfs, overlay, nbdfuse …: not on a disk
    const reasons: string[] = [];
    if (isSystemMount(m.mountPoint)) reasons.push(`a system file system (${m.mountPoint})`);
    if (!REPLICABLE_FSTYPES.includes(m.fstype)) reasons.push(`file system type ${m.fstype} is not supported (${REPLICABLE_FSTYPES.join(', ')})`);
    if (m.root !== '/') reasons.push(`a bind mount of ${m.root}`);
    const others = snapshot.mounts.filter((o) => o !== m && o.majorMinor === m.majorMinor).map((o) => o.mountPoint);
    if (others.length > 0) reasons.push(`its device is also mounted at ${others.join(', ')}`);
    if (filter.protectedDevices.has(m.source)) reasons.push(`${m.source} is already protected by Tandem`);
    const dev = byPath.get(m.source);
    if (dev?.ro || /(^|,)ro(,|$)/.test(m.options)) reasons.push('read-only');
    out.push({ mountPoint: m.mountPoint, device: m.source, fstype: m.fstype, eligible: reasons.length === 0, reasons });
  }
  return out;
}

/** Parses /proc/swaps: the device paths in use as swap. */
export function parseSwaps(text: string): string[] {
  return text.split('\n').slice(1).map((l) => l.split(/\s+/)[0] ?? '').filter((p) => p.startsWith('/'));
}

/** Reads the machine: lsblk, /proc/swaps, /proc/self/mountinfo; fills in file system types lsblk left out. */
export async function gatherSnapshot(): Promise<DiskSnapshot> {
  const json = JSON.parse(await runToolOk('lsblk', LSBLK_ARGS, 'list the block devices', 30_000)) as { blockdevices?: LsblkDevice[] };
  const blockDevices = json.blockdevices ?? [];
  await fillFsTypes(blockDevices);
  return {
    blockDevices,
    swaps: parseSwaps(fs.readFileSync('/proc/swaps', 'utf8')),
    mounts: parseMountInfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')),
  };
}

/** Without udev (containers) lsblk knows no file system types: ask blkid, which probes the devices itself. */
async function fillFsTypes(devices: LsblkDevice[]): Promise<void> {
  const missing: LsblkDevice[] = [];
  const walk = (ds: LsblkDevice[]) => ds.forEach((d) => {
    if (!d.fstype && (d.size ?? 0) > 0 && d.type !== 'rom') missing.push(d);
    walk(d.children ?? []);
  });
  walk(devices);
  if (missing.length === 0 || !findTool('blkid')) return;
  // One blkid per device: given several, it stops at the first it may not open.
  // A device that does not answer (a hung loop or network device) is marked, not fatal to the list.
  await Promise.all(missing.map(async (d) => {
    try {
      const r = await runTool('blkid', ['-p', '-o', 'value', '-s', 'TYPE', d.path], `find the file system type of ${d.path}`, 15_000);
      const type = r.code === 0 ? r.stdout.trim() : '';
      if (type) d.fstype = type;
    } catch (err) {
      d.probeError = (err as Error).message;
    }
  }));
}

/** An image file of a lab node, judged like a disk: only "already protected" and "too small" apply. */
export function judgeImageFile(file: { path: string; size: number }, filter: DiskFilter): DiskCandidate {
  const reasons: string[] = [];
  if (file.size === 0) reasons.push('empty (size 0)');
  if (filter.protectedDevices.has(file.path)) reasons.push('already protected by Tandem (a mirror, target or NetRAID device)');
  if (filter.minSize !== undefined && file.size > 0 && file.size < filter.minSize) reasons.push(`smaller than the source (${file.size} < ${filter.minSize} bytes)`);
  const name = file.path.slice(file.path.lastIndexOf('/') + 1);
  return { path: file.path, name, kind: 'file', size: file.size, fstype: null, eligible: reasons.length === 0, reasons };
}

/**
 * The disk snapshot of this machine, judged: what resource.disks answers. An agent of the console's
 * local lab has TANDEM_DISKS_DIR set: its disks are the image files there, never this machine's own
 * block devices (a lab must not offer to overwrite the real disks of the computer it runs on).
 */
export async function listDisks(filter: DiskFilter): Promise<{ disks: DiskCandidate[]; fileSystems: MountedFileSystemCandidate[] }> {
  const labDir = process.env.TANDEM_DISKS_DIR;
  if (labDir) {
    const files = fs.readdirSync(labDir).filter((f) => f.endsWith('.img')).sort().map((f) => `${labDir}/${f}`);
    return { disks: files.map((f) => judgeImageFile({ path: f, size: fs.statSync(f).size }, filter)), fileSystems: [] };
  }
  const snapshot = await gatherSnapshot();
  return { disks: eligibleDisks(snapshot, filter), fileSystems: replicableFileSystems(snapshot, filter) };
}
