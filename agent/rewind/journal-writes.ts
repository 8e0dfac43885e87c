// What the target journals before applying a run of writes: for each, the data it is about to replace
// (rounded out to whole journal blocks), read from the target as it is before the run.
import type { BlockStore } from '../storage/block-store.js';
import { BufferPool } from '../storage/buffer-pool.js';
import { blockSpan, JOURNAL_BLOCK, MAX_RECORD_DATA } from './journal-format.js';
import type { JournalItem, RewindJournal } from './journal.js';

/** A write or zeroing about to be applied, or a bookmark at this point of the stream. */
export type JournalOp = { offset: number; length: number } | { bookmark: string };

/** Old data up to this size is read on the event-loop thread (see FileBlockStore.readSync). */
const SYNC_READ_MAX = 64 * 1024;

/** Appended (durably) at most this much at a time, so a huge zeroing does not sit in memory at once. */
const APPEND_BYTES = 64 * 1024 * 1024;

/**
 * Journals the ops in order. The caller guarantees no two ops of the run touch the same block (see
 * OverlapTracker), so reading every op's old data before applying any of them is exact.
 */
export async function journalOldData(journal: RewindJournal, store: BlockStore, ops: readonly JournalOp[]): Promise<void> {
  let items: JournalItem[] = [];
  let held = 0;
  const release: Buffer[] = [];
  try {
    for (const op of ops) {
      if ('bookmark' in op) {
        items.push(op);
        continue;
      }
      const { start, end } = blockSpan(op.offset, op.length, store.size);
      for (let at = start; at < end; at += MAX_RECORD_DATA) {
        const n = Math.min(MAX_RECORD_DATA, end - at);
        const data = n <= SYNC_READ_MAX && store.readSync ? store.readSync(at, n) : await store.read(at, n);
        release.push(data);
        items.push({ offset: at, data });
        held += n;
        if (held >= APPEND_BYTES) {
          await journal.append(items);
          items = [];
          held = 0;
        }
      }
    }
    if (items.length > 0) await journal.append(items);
  } finally {
    for (const b of release) BufferPool.shared.release(b);
  }
}

/** The journal blocks a run of writes touches: small spans block by block, large ones as ranges. */
export class OverlapTracker {
  private readonly blocks = new Set<number>();
  private readonly ranges: Array<[number, number]> = [];

  touches(offset: number, length: number, volumeSize: number): boolean {
    const { start, end } = blockSpan(offset, length, volumeSize);
    const b0 = start / JOURNAL_BLOCK;
    const b1 = Math.ceil(end / JOURNAL_BLOCK);
    for (const [s, e] of this.ranges) if (b0 < e && s < b1) return true;
    if (b1 - b0 <= 64) {
      for (let b = b0; b < b1; b++) if (this.blocks.has(b)) return true;
      return false;
    }
    for (const b of this.blocks) if (b >= b0 && b < b1) return true;
    return false;
  }

  add(offset: number, length: number, volumeSize: number): void {
    const { start, end } = blockSpan(offset, length, volumeSize);
    const b0 = start / JOURNAL_BLOCK;
    const b1 = Math.ceil(end / JOURNAL_BLOCK);
    if (b1 - b0 <= 64) for (let b = b0; b < b1; b++) this.blocks.add(b);
    else this.ranges.push([b0, b1]);
  }

  clear(): void {
    this.blocks.clear();
    this.ranges.length = 0;
  }
}
