// A read-only window onto a store that someone else writes: the target's volume while no source is
// replicating into it (paused or disconnected), so the administrator can look at its data.
import type { BlockStore } from './block-store.js';

export class ReadOnlyView implements BlockStore {
  readonly readOnly = true;
  readonly canFastZero = false;
  readonly syncWriteMax = 0;

  constructor(private readonly store: BlockStore) {}

  get size(): number {
    return this.store.size;
  }
  get description(): string {
    return `${this.store.description} (read-only)`;
  }
  read(offset: number, length: number): Promise<Buffer> {
    return this.store.read(offset, length);
  }
  private refuse(): Promise<void> {
    return Promise.reject(Object.assign(new Error('read-only view'), { code: 'EROFS' }));
  }
  write(): Promise<void> {
    return this.refuse();
  }
  trim(): Promise<void> {
    return this.refuse();
  }
  writeZeroes(): Promise<void> {
    return this.refuse();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  /** Closing the view leaves the store open: it belongs to the target. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
