// The manual: "The log cannot be located on a mirror or shared disk". A rewind log on a mirrored disk
// would journal its own writes' effects and be rewound with the data; it is refused, naming the mirror.
import fs from 'node:fs';
import path from 'node:path';
import { readMounts, type MountEntry } from '../resources/filesystem.js';

export interface MirroredDisk {
  tag: string;
  /** The disk under the mirror (source or target disk). */
  disk: string;
  /** The NetRAID device (the attached export) where this node has one. */
  device?: string | null;
  /** The file system resource over the mirror. */
  fileSystem?: { tag: string; mountPoint: string } | null;
}

const real = (p: string): string => {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
};

/** `dir` with symlinks resolved as far as it exists (the log folder may not exist yet). */
function resolvedPath(dir: string): string {
  const want = path.resolve(dir);
  let d = want;
  for (let i = 0; i < 4096 && !fs.existsSync(d); i++) d = path.dirname(d);
  return path.join(real(d), path.relative(d, want));
}

/** The mount holding `p`: the longest mount point that is a prefix of it. */
function mountOf(p: string, mounts: readonly MountEntry[]): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    if ((p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && (!best || mp.length > best.mountPoint.length)) best = m;
  }
  return best;
}

/** Why `dir` is on a mirrored disk (in words, naming the mirror), or null when it is not. */
export function mirroredDiskUnder(dir: string, mirrors: readonly MirroredDisk[], mounts: readonly MountEntry[] = readMounts()): string | null {
  const at = resolvedPath(dir);
  const mount = mountOf(at, mounts);
  const source = mount ? real(mount.source) : '';
  for (const m of mirrors) {
    const fsr = m.fileSystem;
    if (fsr) {
      const mp = real(fsr.mountPoint);
      if (at === mp || at.startsWith(`${mp}/`)) return `is on mirror "${m.tag}" (inside ${fsr.mountPoint}, where its file system ${fsr.tag} is mounted)`;
    }
    if (mount && source.startsWith('/dev/')) {
      if (source === real(m.disk)) return `is on mirror "${m.tag}" (on ${mount.source}, the mirror's disk, mounted at ${mount.mountPoint})`;
      if (m.device && source === real(m.device)) return `is on mirror "${m.tag}" (on its NetRAID device ${m.device}, mounted at ${mount.mountPoint})`;
    }
  }
  return null;
}
