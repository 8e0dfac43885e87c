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

/** Old data of ops that follow each other on the disk is read at once, up to this much per read. */
const READ_RUN_MAX = 4 * 1024 * 1024;

/** One record's worth of old data: `length` bytes at `offset`. */
interface Span {
  offset: number;
  length: number;
}

/**
 * Journals the ops in order. The caller guarantees no two ops of the run touch the same block (see
 * OverlapTracker), so reading every op's old data before applying any of them is exact. Ops that follow
 * each other on the disk (a sequential writer) have their old data read in one read, not one each.
 */
export async function journalOldData(journal: RewindJournal, store: BlockStore, ops: readonly JournalOp[]): Promise<void> {
  let items: JournalItem[] = [];
  let held = 0;
  const release: Buffer[] = [];
  // Spans waiting to be read, contiguous on the disk, with the index of each one's item.
  let pending: Span[] = [];
  let pendingStart = 0;
  let pendingBytes = 0;
  const readPending = async () => {
    if (pending.length === 0) return;
    const start = pending[0]!.offset;
    const data = pendingBytes <= SYNC_READ_MAX && store.readSync ? store.readSync(start, pendingBytes) : await store.read(start, pendingBytes);
    release.push(data);
    pending.forEach((span, i) => {
      items[pendingStart + i] = { offset: span.offset, data: data.subarray(span.offset - start, span.offset - start + span.length) };
    });
    pending = [];
    pendingBytes = 0;
  };
  try {
    for (const op of ops) {
      if ('bookmark' in op) {
        await readPending();
        items.push(op);
        continue;
      }
      const { start, end } = blockSpan(op.offset, op.length, store.size);
      for (let at = start; at < end; at += MAX_RECORD_DATA) {
        const n = Math.min(MAX_RECORD_DATA, end - at);
        const last = pending[pending.length - 1];
        if (last && (last.offset + last.length !== at || pendingBytes + n > READ_RUN_MAX)) await readPending();
        if (pending.length === 0) pendingStart = items.length;
        pending.push({ offset: at, length: n });
        pendingBytes += n;
        items.push({ offset: at, data: EMPTY }); // filled by readPending
        held += n;
        if (held >= APPEND_BYTES) {
          await readPending();
          await journal.append(items);
          items = [];
          held = 0;
        }
      }
    }
    await readPending();
    if (items.length > 0) await journal.append(items);
  } finally {
    for (const b of release) BufferPool.shared.release(b);
  }
}

const EMPTY = Buffer.alloc(0);

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
