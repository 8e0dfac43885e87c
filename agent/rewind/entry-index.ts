// The journal's entries in memory, in typed arrays (a million entries are ~33 MB and load in one
// read per segment): what a view needs to find, for every block, the first entry after a time T.
// Entries have global ids that never change; dropping the oldest only moves `firstId`.
import type { KindValue } from './journal-format.js';

export class EntryIndex {
  private time = new Float64Array(1024);
  private offset = new Float64Array(1024);
  private pos = new Float64Array(1024);
  private length = new Uint32Array(1024);
  private segment = new Uint32Array(1024);
  private kind = new Uint8Array(1024);
  /** Global id of the entry at array position 0. */
  private base = 0;
  /** Array positions [head, tail) hold the entries. */
  private head = 0;
  private tail = 0;

  get firstId(): number {
    return this.base + this.head;
  }
  /** One past the newest entry's id. */
  get endId(): number {
    return this.base + this.tail;
  }
  get count(): number {
    return this.tail - this.head;
  }

  push(time: number, offset: number, pos: number, length: number, segment: number, kind: KindValue): number {
    if (this.tail === this.time.length) this.grow();
    const i = this.tail++;
    this.time[i] = time;
    this.offset[i] = offset;
    this.pos[i] = pos;
    this.length[i] = length;
    this.segment[i] = segment;
    this.kind[i] = kind;
    return this.base + i;
  }

  private grow(): void {
    // Compact first when most of the arrays are dropped entries; otherwise double.
    const live = this.tail - this.head;
    const cap = live * 2 > this.time.length ? this.time.length * 2 : this.time.length;
    const move = <T extends Float64Array | Uint32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a.subarray(this.head, this.tail));
      return b;
    };
    this.time = move(this.time, (n) => new Float64Array(n));
    this.offset = move(this.offset, (n) => new Float64Array(n));
    this.pos = move(this.pos, (n) => new Float64Array(n));
    this.length = move(this.length, (n) => new Uint32Array(n));
    this.segment = move(this.segment, (n) => new Uint32Array(n));
    this.kind = move(this.kind, (n) => new Uint8Array(n));
    this.base += this.head;
    this.tail = live;
    this.head = 0;
  }

  /** Drops every entry of segments below `segment` (they are the oldest). */
  dropBefore(segment: number): void {
    while (this.head < this.tail && (this.segment[this.head] as number) < segment) this.head++;
  }

  /** Drops entries from id on (a torn tail being cut off). */
  truncate(id: number): void {
    this.tail = Math.max(this.head, Math.min(this.tail, id - this.base));
  }

  clear(): void {
    this.base += this.tail;
    this.head = 0;
    this.tail = 0;
  }

  private at(id: number): number {
    const i = id - this.base;
    if (i < this.head || i >= this.tail) throw new RangeError(`journal entry ${id} is not held`);
    return i;
  }
  timeOf(id: number): number {
    return this.time[this.at(id)] as number;
  }
  offsetOf(id: number): number {
    return this.offset[this.at(id)] as number;
  }
  posOf(id: number): number {
    return this.pos[this.at(id)] as number;
  }
  lengthOf(id: number): number {
    return this.length[this.at(id)] as number;
  }
  segmentOf(id: number): number {
    return this.segment[this.at(id)] as number;
  }
  kindOf(id: number): KindValue {
    return this.kind[this.at(id)] as KindValue;
  }

  /**
   * Block → location (id × stride + block within the entry) for every data entry after `t`, walking
   * newest first so that the earliest entry after `t` wins. Reads the arrays directly: this loop is
   * what opening a view costs (a million entries).
   */
  overlayAfter(t: number, kind: KindValue, blockSize: number, stride: number): Map<number, number> {
    const map = new Map<number, number>();
    const from = this.firstAfter(t) - this.base;
    const { offset, length, kind: kinds } = this;
    for (let i = this.tail - 1; i >= from; i--) {
      if (kinds[i] !== kind) continue;
      const b0 = Math.floor((offset[i] as number) / blockSize);
      const n = Math.ceil((length[i] as number) / blockSize);
      const loc = (this.base + i) * stride;
      if (n === 1) map.set(b0, loc);
      else for (let k = 0; k < n; k++) map.set(b0 + k, loc + k);
    }
    return map;
  }

  /** The id of the first entry whose time is after `t` (endId if none): binary search. */
  firstAfter(t: number): number {
    let lo = this.head;
    let hi = this.tail;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.time[mid] as number) <= t) lo = mid + 1;
      else hi = mid;
    }
    return this.base + lo;
  }
}
