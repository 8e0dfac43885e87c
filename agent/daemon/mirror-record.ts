// What an agent persists about each mirror it holds a copy of (state/mirrors.json), and the manual's
// flag files ($TAG_last_owner, $TAG_data_corrupt) kept beside it as visible state.
import fs from 'node:fs';
import path from 'node:path';
import type { Generations } from '../mirror/generations.js';
import type { TargetConfig } from '../mirror/target-link.js';
import type { MemberInfo } from '../replication/wire.js';

export type Role = 'source' | 'target';

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
export const DEFAULT_ASYNC_LIMIT = Number(process.env.LKDR_ASYNC_LIMIT) > 0 ? Number(process.env.LKDR_ASYNC_LIMIT) : 256;

export interface MirrorRecord {
  tag: string;
  disk: string;
  /** Bitmap file path, or null for "none". */
  bitmap: string | null;
  chunkSize: number;
  asyncLimit: number;
  resyncRate: number;
  /** zlib level 0–9 (0 = off). */
  compression: number;
  /** The mirror's size (the source disk's); 0 on a target that has not heard from a source yet. */
  size: number;
  role: Role;
  /** Source: the mirror should be in service here (its export up). */
  inService: boolean;
  /** Source: its targets. */
  targets: TargetConfig[];
  /** Target: every node of the mirror as its source last described them (for failover). */
  members: MemberInfo[];
  /** Target: the node it last knew as source. */
  source: string | null;
  /** This node's bitmap slot for each other node. */
  slots: Record<string, number>;
  generations: Generations;
  /** The manual's last_owner: this node is (or was last) the mirror's source. */
  lastOwner: boolean;
  /** The manual's data_corrupt: a source came back and could not reach its targets. */
  dataCorrupt: boolean;
  /** Target: its data is a usable copy (false while, or after being interrupted in, a resync). */
  consistent: boolean;
  /** The file system resource over this mirror (Replicate New / Existing File System), mounted where it is in service. */
  fileSystem?: FileSystemResource | null;
  /** The hierarchy's "Enable Asynchronous Replication" answer; false refuses asynchronous targets. */
  asyncAllowed?: boolean;
  /** Rewind log settings (manual: mirror_settings logdir / logmax); used by the rewind log. */
  logdir: string;
  logmax: number;
  /** Target: the rewind log folder kept continuously (every write journalled) up to now; absent: none. */
  rewindLogKept?: string;
}

export interface FileSystemResource {
  /** The manual's File System Resource Tag. */
  tag: string;
  mountPoint: string;
  fstype: string;
}

export interface StateFile {
  version: 2;
  mirrors: MirrorRecord[];
}

export function flagFiles(stateDir: string, tag: string): { lastOwner: string; dataCorrupt: string } {
  const dir = path.join(stateDir, 'flags');
  return { lastOwner: path.join(dir, `${tag}_last_owner`), dataCorrupt: path.join(dir, `${tag}_data_corrupt`) };
}

/** Makes the flag files say what the records say. */
export function writeFlagFiles(stateDir: string, records: readonly MirrorRecord[], removedTags: readonly string[] = []): void {
  fs.mkdirSync(path.join(stateDir, 'flags'), { recursive: true, mode: 0o700 });
  for (const r of records) {
    const f = flagFiles(stateDir, r.tag);
    setFlag(f.lastOwner, r.lastOwner);
    setFlag(f.dataCorrupt, r.dataCorrupt);
  }
  for (const tag of removedTags) {
    const f = flagFiles(stateDir, tag);
    setFlag(f.lastOwner, false);
    setFlag(f.dataCorrupt, false);
  }
}

function setFlag(file: string, on: boolean): void {
  if (on && !fs.existsSync(file)) fs.writeFileSync(file, `${new Date().toISOString()}\n`, { mode: 0o600 });
  if (!on) fs.rmSync(file, { force: true });
}

/** The lowest slot not used by any node in `slots`, or -1 when all 7 are taken. */
export function freeSlot(slots: Record<string, number>, max: number): number {
  const used = new Set(Object.values(slots));
  for (let s = 0; s < max; s++) if (!used.has(s)) return s;
  return -1;
}
