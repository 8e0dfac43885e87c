// A rewound view: the target's data as it was at a time T, made of the target (blocks not written
// since T) and the journal (for the others, the data the first write after T replaced). Read-only: the
// target is never changed while the administrator explores.
import type { BlockStore, ZeroOptions } from '../storage/block-store.js';
import { JOURNAL_BLOCK } from './journal-format.js';
import { LOCATION_STRIDE, type RewindJournal } from './journal.js';

const refuse = (): Promise<never> => Promise.reject(Object.assign(new Error('a rewound view is read-only'), { code: 'EROFS' }));

export class RewoundView implements BlockStore {
  readonly readOnly = true;
  readonly canFastZero = false;
  readonly syncWriteMax = 0;
  private readonly unpin: () => void;

  constructor(
    private readonly target: BlockStore,
    private readonly journal: RewindJournal,
    /** Block → journal location, from journal.overlayAt(time). */
    private readonly overlay: Map<number, number>,
    readonly time: number,
    readonly size: number,
  ) {
    this.unpin = journal.pin();
  }

  get description(): string {
    return `${this.target.description} rewound to ${new Date(this.time).toISOString()} (read-only)`;
  }

  /** Blocks whose data differs from the target's (written after the view's time). */
  get changedBlocks(): number {
    return this.overlay.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const block = Math.floor(at / JOURNAL_BLOCK);
      const loc = this.overlay.get(block);
      // A run of blocks from the same place: the target, or consecutive blocks of one journal entry.
      let runEnd = Math.min(end, (block + 1) * JOURNAL_BLOCK);
      const continues = (b: number): boolean => {
        const l = this.overlay.get(b);
        if (loc === undefined) return l === undefined;
        return l === loc + (b - block) && Math.floor(l / LOCATION_STRIDE) === Math.floor(loc / LOCATION_STRIDE);
      };
      for (let b = block + 1; runEnd < end && continues(b); b++) runEnd = Math.min(end, (b + 1) * JOURNAL_BLOCK);
      const n = Math.min(runEnd, this.size) - at;
      if (n <= 0) break;
      let data: Buffer;
      if (loc === undefined) {
        data = await this.target.read(at, n);
      } else {
        const id = Math.floor(loc / LOCATION_STRIDE);
        const within = (loc % LOCATION_STRIDE) * JOURNAL_BLOCK + (at - block * JOURNAL_BLOCK);
        data = await this.journal.readEntry(id, within, n);
      }
      data.copy(out, at - offset, 0, n);
      at += n;
    }
    return out;
  }

  write(): Promise<void> {
    return refuse();
  }
  trim(): Promise<void> {
    return refuse();
  }
  writeZeroes(): Promise<void> {
    return refuse();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  /** Lets go of the journal; the target stays open (it belongs to the mirror). */
  close(): Promise<void> {
    this.unpin();
    return Promise.resolve();
  }

  /** The runs of blocks that differ from the target, ascending, each at most `maxBytes` long. */
  *changedRuns(maxBytes = 1024 * 1024): Generator<{ offset: number; length: number }> {
    const blocks = [...this.overlay.keys()].sort((a, b) => a - b);
    let i = 0;
    while (i < blocks.length) {
      const first = blocks[i] as number;
      let last = first;
      while (i + 1 < blocks.length && blocks[i + 1] === last + 1 && (last + 2 - first) * JOURNAL_BLOCK <= maxBytes) last = blocks[++i] as number;
      i++;
      const offset = first * JOURNAL_BLOCK;
      yield { offset, length: Math.min(this.size, (last + 1) * JOURNAL_BLOCK) - offset };
    }
  }
}

/**
 * A throw-away write layer over a read-only store, kept in memory: what a file system needs to mount
 * a crash-consistent image (ext4 replays its journal even when mounted read-only). Discarded on close;
 * the store below is never written.
 */
export class ScratchLayer implements BlockStore {
  readonly readOnly = false;
  readonly canFastZero = false;
  readonly syncWriteMax = 0;
  private readonly blocks = new Map<number, Buffer>();

  constructor(private readonly below: BlockStore, private readonly maxBytes = 256 * 1024 * 1024) {}

  get size(): number {
    return this.below.size;
  }
  get description(): string {
    return `${this.below.description} with a discarded write layer`;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = await this.below.read(offset, length);
    const copy = Buffer.from(out);
    for (let b = Math.floor(offset / JOURNAL_BLOCK); b * JOURNAL_BLOCK < offset + length; b++) {
      const mine = this.blocks.get(b);
      if (!mine) continue;
      const s = Math.max(offset, b * JOURNAL_BLOCK);
      const e = Math.min(offset + length, (b + 1) * JOURNAL_BLOCK);
      mine.copy(copy, s - offset, s - b * JOURNAL_BLOCK, e - b * JOURNAL_BLOCK);
    }
    return copy;
  }

  async write(offset: number, data: readonly Buffer[]): Promise<void> {
    const buf = Buffer.concat(data as Buffer[]);
    if (offset + buf.length > this.size) throw Object.assign(new Error('write beyond the end'), { code: 'ENOSPC' });
    for (let b = Math.floor(offset / JOURNAL_BLOCK); b * JOURNAL_BLOCK < offset + buf.length; b++) {
      let mine = this.blocks.get(b);
      if (!mine) {
        if ((this.blocks.size + 1) * JOURNAL_BLOCK > this.maxBytes) throw Object.assign(new Error('the scratch layer of the rewound view is full'), { code: 'ENOSPC' });
        mine = Buffer.alloc(JOURNAL_BLOCK);
        const len = Math.min(JOURNAL_BLOCK, this.size - b * JOURNAL_BLOCK);
        (await this.below.read(b * JOURNAL_BLOCK, len)).copy(mine);
        this.blocks.set(b, mine);
      }
      const s = Math.max(offset, b * JOURNAL_BLOCK);
      const e = Math.min(offset + buf.length, (b + 1) * JOURNAL_BLOCK);
      buf.copy(mine, s - b * JOURNAL_BLOCK, s - offset, e - offset);
    }
  }

  writeZeroes(offset: number, length: number, _options: ZeroOptions): Promise<void> {
    return this.write(offset, [Buffer.alloc(length)]);
  }
  trim(): Promise<void> {
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.blocks.clear();
    return Promise.resolve();
  }
}
