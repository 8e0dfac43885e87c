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

/** What both roles keep about a copy. */
interface CopyRecordBase {
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
  generations: Generations;
  /** The file system resource over this mirror (Replicate New / Existing File System), mounted where it is in service. */
  fileSystem?: FileSystemResource | null;
  /** The hierarchy's "Enable Asynchronous Replication" answer; false refuses asynchronous targets. */
  asyncAllowed?: boolean;
  /** Rewind log settings (manual: mirror_settings logdir / logmax); used by the rewind log. */
  logdir: string;
  logmax: number;
}

/** A source copy: it serves the mirror (or did last, or is to). */
export interface SourceRecord extends CopyRecordBase {
  role: 'source';
  /** The mirror should be in service here (its export up). */
  inService: boolean;
  /** Its targets; each one's bitmap slot is here, and only here. */
  targets: TargetConfig[];
  /** The manual's last_owner: this node is (or was last) the mirror's source. */
  lastOwner: boolean;
  /** The manual's data_corrupt: this source came back and could not reach its targets. */
  dataCorrupt: boolean;
}

/** A target copy: a source replicates into it. */
export interface TargetRecord extends CopyRecordBase {
  role: 'target';
  /** Every node of the mirror as its source last described them (for failover). */
  members: MemberInfo[];
  /** The node it last knew as source. */
  source: string | null;
  /** This node's bitmap slot for each other node. */
  slots: Record<string, number>;
  /** Its data is a usable copy (false while, or after being interrupted in, a resync). */
  consistent: boolean;
  /** The rewind log folder kept continuously (every write journalled) up to now; absent: none. */
  rewindLogKept?: string;
}

export type MirrorRecord = SourceRecord | TargetRecord;

function base(r: CopyRecordBase): CopyRecordBase {
  const b: CopyRecordBase = {
    tag: r.tag, disk: r.disk, bitmap: r.bitmap, chunkSize: r.chunkSize, asyncLimit: r.asyncLimit, resyncRate: r.resyncRate,
    compression: r.compression, size: r.size, generations: r.generations, fileSystem: r.fileSystem ?? null, logdir: r.logdir ?? '', logmax: r.logmax ?? 0,
  };
  if (r.asyncAllowed !== undefined) b.asyncAllowed = r.asyncAllowed;
  return b;
}

/**
 * A record as read from the state file, in its role's shape. Files written before the records became a
 * union hold every field for both roles; a source's `slots` are its targets' slots (they were kept equal).
 */
export function normaliseRecord(r: MirrorRecord): MirrorRecord {
  if (r.role === 'source') {
    return { ...base(r), role: 'source', inService: r.inService, targets: r.targets ?? [], lastOwner: r.lastOwner, dataCorrupt: r.dataCorrupt };
  }
  const t: TargetRecord = { ...base(r), role: 'target', members: r.members ?? [], source: r.source ?? null, slots: r.slots ?? {}, consistent: r.consistent };
  if (r.rewindLogKept) t.rewindLogKept = r.rewindLogKept;
  return t;
}

/** The record of a source copy that becomes a target of `newSource` (demotion). */
export function asTargetRecord(r: SourceRecord, self: MemberInfo, newSource: string, consistent: boolean): TargetRecord {
  const slots: Record<string, number> = {};
  for (const t of r.targets) slots[t.node] = t.slot;
  return {
    ...base(r), role: 'target', source: newSource, consistent, slots,
    members: [self, ...r.targets.map((t): MemberInfo => ({ node: t.node, address: t.address, mode: t.mode }))],
  };
}

/**
 * The record of a target copy that becomes the source (failover, switchover, force): every other member
 * becomes its target, in the slot this copy keeps for it (a new slot for a member it had none for).
 */
export function asSourceRecord(r: TargetRecord, self: string, maxSlots: number): SourceRecord {
  const slots = { ...r.slots };
  const me = r.members.find((m) => m.node === self);
  const targets: TargetConfig[] = [];
  for (const m of r.members) {
    if (m.node === self) continue;
    let slot = slots[m.node];
    if (slot === undefined) {
      slot = freeSlot(slots, maxSlots);
      if (slot < 0) continue;
      slots[m.node] = slot;
    }
    // The old source is replicated to the way it replicated to us.
    const mode = m.node === r.source ? (me?.mode ?? 'sync') : m.mode;
    targets.push({ node: m.node, address: m.address, mode, slot, paused: false });
  }
  const generations = { ...r.generations, peers: { ...r.generations.peers } };
  // Every other node starts from what we both held when we last agreed: our (empty) bitmap for it is
  // complete from the generation we hold now, and our first write starts a new one.
  for (const t of targets) if (generations.peers[t.node] === undefined) generations.peers[t.node] = generations.current;
  return { ...base(r), generations, role: 'source', targets, inService: true, lastOwner: true, dataCorrupt: false };
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
    // A target is never the last owner, and its data is not the manual's data_corrupt.
    setFlag(f.lastOwner, r.role === 'source' && r.lastOwner);
    setFlag(f.dataCorrupt, r.role === 'source' && r.dataCorrupt);
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
