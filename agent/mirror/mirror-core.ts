// What a target link needs from the mirror it belongs to.
import type { IntentLog } from '../intent-log/bitmap.js';
import type { BlockStore } from '../storage/block-store.js';
import type { ChunkLocks } from './chunk-locks.js';

export interface MirrorCore {
  readonly tag: string;
  readonly node: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly log: IntentLog;
  readonly locks: ChunkLocks;
  /** The source disk. */
  readonly local: BlockStore;
  readonly asyncLimit: number;
  /** zlib level offered to targets at each connection (0 = off). */
  readonly compression: number;
  /** Resync bytes per second per target; 0 = unlimited. */
  readonly resyncRate: number;
  /** The next number of the mirror's write sequence (shared by all targets). */
  nextSeq(): number;
}
