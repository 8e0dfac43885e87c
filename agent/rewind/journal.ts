// The rewind log of one target copy: every write applied, with its time and the data it replaced,
// appended to segment files; bookmarks are entries too. Appends are durable when append() resolves,
// which the target awaits before it writes the data (and so before it acknowledges the epoch).
// logmax caps the size and a full disk makes room: the oldest segments are dropped.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { EntryIndex } from './entry-index.js';
import { AdaptiveFlush } from '../storage/adaptive-flush.js';
import {
  decodeIndexRecord, decodeRecordHeader, decodeSegmentHeader, encodeIndexRecord, encodeRecordHeaderInto, encodeSegmentHeader,
  INDEX_RECORD, JOURNAL_BLOCK, Kind, type KindValue, RECORD_HEADER, SEGMENT_HEADER, segmentName, segmentNumbers,
} from './journal-format.js';
import type { Logger } from '../log.js';
import { formatRewindTime } from '../../common/rewind.js';

export type JournalItem = { offset: number; data: Buffer } | { bookmark: string };

export interface Bookmark {
  name: string;
  time: number;
}

/** Entry id × this + block within the entry: where a view finds one block's older data. */
export const LOCATION_STRIDE = 16384;

interface Segment {
  n: number;
  validFrom: number;
  fd: number;
  logSize: number;
  idxSize: number;
}

export interface JournalOptions {
  /** 0 = no limit. */
  maxBytes: number;
  /** Start empty, removing what the folder holds (the log was not kept continuously). */
  fresh?: boolean;
  log?: Logger;
  /** Segment size to roll at (default: logmax / 8 between 1 and 64 MiB; 64 MiB without a limit). */
  segmentBytes?: number;
}

export class JournalError extends Error {}

/** A dropped segment file kept for reuse. */
const SPARE = 'spare.log';

/** The wall clock the administrator reads (a monotonic clock drifts from it over weeks). */
const wallNow = (): number => Date.now();

export class RewindJournal {
  readonly index = new EntryIndex();
  private segments: Segment[] = [];
  private idxFd = -1;
  private lastTime = 0;
  private chain: Promise<void> = Promise.resolve();
  private pins = 0;
  private marks: Array<Bookmark & { id: number }> = [];
  private closed = false;
  /** The appends' fdatasync: on this thread while the device answers in microseconds. */
  private readonly flusher = AdaptiveFlush.forFiles();
  maxBytes: number;
  /** Bytes cut off a torn tail when the journal was opened (kill -9 or power loss during an append). */
  recoveredTornBytes = 0;
  /** Segments dropped for logmax or a full disk since opening. */
  droppedSegments = 0;

  private constructor(readonly dir: string, options: JournalOptions, private readonly logger?: Logger) {
    this.maxBytes = options.maxBytes;
    this.segmentBytesOverride = options.segmentBytes;
  }
  private readonly segmentBytesOverride: number | undefined;

  static open(dir: string, options: JournalOptions): RewindJournal {
    const j = new RewindJournal(dir, options, options.log);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (options.fresh) j.removeFiles();
    const numbers = segmentNumbers(fs.readdirSync(dir));
    if (numbers.length === 0) {
      j.newSegment(1, wallNow());
      return j;
    }
    for (const [i, n] of numbers.entries()) j.loadSegment(n, i === numbers.length - 1);
    j.lastTime = j.index.count > 0 ? j.index.timeOf(j.index.endId - 1) : j.segments[0]!.validFrom;
    j.idxFd = fs.openSync(path.join(dir, segmentName(j.current.n, 'idx')), 'r+');
    return j;
  }

  private get current(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** The earliest time a view can be opened at: every write after it is still held. */
  get startTime(): number {
    return this.segments[0]?.validFrom ?? 0;
  }
  /** The newest entry's time (the start while empty). */
  get endTime(): number {
    return this.index.count > 0 ? this.index.timeOf(this.index.endId - 1) : this.startTime;
  }
  get totalBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.logSize + s.idxSize;
    return n;
  }
  get entries(): number {
    return this.index.count;
  }

  private segmentBytes(): number {
    if (this.segmentBytesOverride) return this.segmentBytesOverride;
    const MiB = 1024 * 1024;
    return this.maxBytes > 0 ? Math.min(64 * MiB, Math.max(MiB, Math.floor(this.maxBytes / 8))) : 64 * MiB;
  }

  private removeFiles(): void {
    for (const name of fs.readdirSync(this.dir)) {
      if (/^\d{10}\.(log|idx)$/.test(name) || name === SPARE) fs.rmSync(path.join(this.dir, name), { force: true });
    }
  }

  private newSegment(n: number, validFrom: number): void {
    const logPath = path.join(this.dir, segmentName(n, 'log'));
    // A segment dropped for logmax is reused: overwriting its pages costs less than allocating new
    // ones. What it held past the new records carries another segment number, so a scan stops there.
    const spare = path.join(this.dir, SPARE);
    if (fs.existsSync(spare)) fs.renameSync(spare, logPath);
    const fd = fs.openSync(logPath, fs.existsSync(logPath) ? 'r+' : 'w+', 0o600);
    fs.writeSync(fd, encodeSegmentHeader({ segment: n, validFrom }), 0, SEGMENT_HEADER, 0);
    fs.fdatasyncSync(fd);
    if (this.idxFd >= 0) fs.closeSync(this.idxFd);
    this.idxFd = fs.openSync(path.join(this.dir, segmentName(n, 'idx')), 'w+', 0o600);
    this.segments.push({ n, validFrom, fd, logSize: SEGMENT_HEADER, idxSize: 0 });
    // The new files must be found after a crash.
    const dfd = fs.openSync(this.dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  }

  /** Loads one segment: a sealed one from its index, the newest by scanning its log (cutting a torn tail). */
  private loadSegment(n: number, newest: boolean): void {
    const logPath = path.join(this.dir, segmentName(n, 'log'));
    const idxPath = path.join(this.dir, segmentName(n, 'idx'));
    const fd = fs.openSync(logPath, newest ? 'r+' : 'r');
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(SEGMENT_HEADER);
    fs.readSync(fd, head, 0, SEGMENT_HEADER, 0);
    const h = decodeSegmentHeader(head);
    if (typeof h === 'string') {
      fs.closeSync(fd);
      throw new JournalError(`${logPath}: ${h}; move the folder ${this.dir} away (the rewind log starts again empty)`);
    }
    const seg: Segment = { n, validFrom: h.validFrom, fd, logSize: size, idxSize: 0 };
    this.segments.push(seg);
    let idx: Buffer | null = null;
    if (!newest && fs.existsSync(idxPath)) {
      idx = fs.readFileSync(idxPath);
      if (idx.length % INDEX_RECORD !== 0) idx = null;
      else if (idx.length > 0) {
        const last = decodeIndexRecord(idx, idx.length - INDEX_RECORD);
        if (last.pos + RECORD_HEADER + last.length > size) idx = null;
      }
    }
    if (idx) {
      // No objects per record: a million of them is what opening a large log would cost.
      for (let at = 0; at < idx.length; at += INDEX_RECORD) {
        const kind = idx.readUInt8(at + 28) as KindValue;
        const time = idx.readDoubleBE(at);
        const pos = idx.readDoubleBE(at + 16);
        const length = idx.readUInt32BE(at + 24);
        const id = this.index.push(time, idx.readDoubleBE(at + 8), pos, length, n, kind);
        if (kind === Kind.BOOKMARK) this.marks.push({ name: this.readName(fd, pos, length), time, id });
      }
      seg.idxSize = idx.length;
      return;
    }
    // Scan: every record checked (header and data checksums); the first bad one ends the segment.
    const records: Buffer[] = [];
    let pos = SEGMENT_HEADER;
    // Read in windows of 8 MiB (two system calls per record made this scan the slow part of opening).
    let win = Buffer.alloc(0);
    let winAt = 0;
    const bytesAt = (at: number, len: number): Buffer | null => {
      if (at + len > size) return null;
      if (at < winAt || at + len > winAt + win.length) {
        const want = Math.min(size - at, Math.max(len, SCAN_WINDOW));
        win = Buffer.allocUnsafe(want);
        let got = 0;
        while (got < want) {
          const k = fs.readSync(fd, win, got, want - got, at + got);
          if (k === 0) break;
          got += k;
        }
        win = win.subarray(0, got);
        winAt = at;
        if (got < len) return null;
      }
      return win.subarray(at - winAt, at - winAt + len);
    };
    for (;;) {
      const hb = bytesAt(pos, RECORD_HEADER);
      const r = hb && decodeRecordHeader(hb);
      if (!r || r.segment !== n) break;
      const data = bytesAt(pos + RECORD_HEADER, r.length);
      if (!data || zlib.crc32(data) !== r.dataCrc) break;
      const id = this.index.push(r.time, r.offset, pos, r.length, n, r.kind);
      if (r.kind === Kind.BOOKMARK) this.marks.push({ name: data.toString('utf8'), time: r.time, id });
      records.push(encodeIndexRecord({ time: r.time, offset: r.offset, pos, length: r.length, kind: r.kind }));
      pos += RECORD_HEADER + r.length;
    }
    if (pos < size) {
      this.recoveredTornBytes += size - pos;
      this.logger?.warn(`rewind log ${logPath}: cut ${size - pos} bytes after the last intact record (an append interrupted by a crash, or a reused file's old content); entries before it are kept`);
      if (newest) fs.ftruncateSync(fd, pos);
      seg.logSize = pos;
    }
    const idxData = Buffer.concat(records);
    fs.writeFileSync(idxPath, idxData, { mode: 0o600 });
    seg.idxSize = idxData.length;
    if (!newest) return;
    fs.fdatasyncSync(fd);
  }

  private readName(fd: number, pos: number, length: number): string {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, pos + RECORD_HEADER);
    return b.toString('utf8');
  }

  /** Serialises operations on the files (appends, drops, reads of names). */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(f);
    this.chain = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Strictly increasing times: a time names one point between two entries. */
  private nextTime(): number {
    this.lastTime = Math.max(wallNow(), this.lastTime + 0.001);
    return this.lastTime;
  }

  /** Appends the items in order and makes them durable; returns their times. */
  append(items: readonly JournalItem[]): Promise<number[]> {
    return this.serial(async () => {
      if (this.closed) throw new JournalError(`the rewind log in ${this.dir} is closed`);
      if (items.length === 0) return [];
      if (this.current.logSize >= this.segmentBytes() && this.index.count > 0) this.roll();
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.write(items);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if ((code !== 'ENOSPC' && code !== 'EDQUOT') || attempt > 64) throw err;
          // The disk is full: make room by dropping the oldest entries (manual: the log wraps around).
          const spare = path.join(this.dir, SPARE);
          if (fs.existsSync(spare)) fs.rmSync(spare, { force: true });
          else if (this.segments.length > 1 && this.pins === 0) this.dropOldest('the disk is full');
          else if (attempt > 0 && this.pins === 0) this.restart('the disk is full even with the older entries gone');
          else if (this.pins > 0) throw new JournalError(`the disk of the rewind log (${this.dir}) is full and a rewound view is open; close the view (tandem rewind TAG --close) or free space`);
        }
      }
    });
  }

  private async write(items: readonly JournalItem[]): Promise<number[]> {
    const seg = this.current;
    const bufs: Buffer[] = [];
    const idx = Buffer.alloc(items.length * INDEX_RECORD);
    const headers = Buffer.allocUnsafe(items.length * RECORD_HEADER);
    const times: number[] = [];
    const added: Array<[number, number, number, number, number]> = [];
    let pos = seg.logSize;
    items.forEach((item, i) => {
      const time = this.nextTime();
      const kind = 'bookmark' in item ? Kind.BOOKMARK : Kind.DATA;
      const data = 'bookmark' in item ? Buffer.from(item.bookmark, 'utf8') : item.data;
      const offset = 'bookmark' in item ? 0 : item.offset;
      bufs.push(encodeRecordHeaderInto({ segment: seg.n, kind, length: data.length, dataCrc: zlib.crc32(data), time, offset }, headers, i * RECORD_HEADER), data);
      encodeIndexRecord({ time, offset, pos, length: data.length, kind }, idx, i * INDEX_RECORD);
      added.push([time, offset, pos, data.length, kind]);
      times.push(time);
      pos += RECORD_HEADER + data.length;
    });
    try {
      // Small appends are copied into the page cache on this thread (a thread-pool round trip costs
      // more); the fdatasync too while the device answers it in microseconds (AdaptiveFlush).
      const total = pos - seg.logSize;
      const written = total <= SYNC_APPEND_MAX ? writevAllSync(seg.fd, bufs, seg.logSize) : await writev(seg.fd, bufs, seg.logSize);
      if (written !== total) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
      fs.writeSync(this.idxFd, idx, 0, idx.length, seg.idxSize);
      await this.flusher.flush(seg.fd);
    } catch (err) {
      // Nothing of this append counts: cut it off so the next one follows the last good record.
      try {
        fs.ftruncateSync(seg.fd, seg.logSize);
        fs.ftruncateSync(this.idxFd, seg.idxSize);
      } catch {
        // the next open's scan cuts it instead
      }
      throw err;
    }
    seg.logSize = pos;
    seg.idxSize += idx.length;
    added.forEach(([time, offset, p, length, kind], i) => {
      const id = this.index.push(time, offset, p, length, seg.n, kind as 1 | 2);
      const item = items[i] as JournalItem;
      if ('bookmark' in item) this.marks.push({ name: item.bookmark, time, id });
    });
    this.enforceMax();
    return times;
  }

  /** Seals the newest segment (its index made durable) and starts the next. */
  private roll(): void {
    fs.fdatasyncSync(this.idxFd);
    const prev = this.current;
    fs.ftruncateSync(prev.fd, prev.logSize); // a recycled file's old tail goes
    this.newSegment(prev.n + 1, this.endTime);
  }

  private enforceMax(): void {
    if (this.maxBytes <= 0 || this.pins > 0) return;
    while (this.totalBytes > this.maxBytes && this.segments.length > 1) this.dropOldest(`logmax (${this.maxBytes} bytes)`, true);
  }

  private dropOldest(why: string, keepSpare = false): void {
    const seg = this.segments.shift() as Segment;
    fs.closeSync(seg.fd);
    const logPath = path.join(this.dir, segmentName(seg.n, 'log'));
    if (keepSpare && !fs.existsSync(path.join(this.dir, SPARE))) fs.renameSync(logPath, path.join(this.dir, SPARE));
    else fs.rmSync(logPath, { force: true });
    fs.rmSync(path.join(this.dir, segmentName(seg.n, 'idx')), { force: true });
    this.index.dropBefore(this.segments[0]!.n);
    this.marks = this.marks.filter((m) => m.id >= this.index.firstId);
    this.droppedSegments++;
    this.logger?.info(`rewind log ${this.dir}: dropped its oldest entries (segment ${seg.n}) for ${why}; views can start at ${new Date(this.startTime).toISOString()}`);
  }

  /** Empties the log: its history starts now. */
  private restart(why: string): void {
    this.logger?.warn(`rewind log ${this.dir}: starting again empty (${why})`);
    for (const s of this.segments) fs.closeSync(s.fd);
    if (this.idxFd >= 0) fs.closeSync(this.idxFd);
    this.idxFd = -1;
    this.segments = [];
    this.removeFiles();
    this.index.clear();
    this.marks = [];
    this.newSegment(1, this.nextTime());
  }

  bookmarks(): Bookmark[] {
    return this.marks.map(({ name, time }) => ({ name, time }));
  }

  findBookmark(name: string): Bookmark | undefined {
    for (let i = this.marks.length - 1; i >= 0; i--) if (this.marks[i]!.name === name) return { name, time: this.marks[i]!.time };
    return undefined;
  }

  /**
   * Up to n times of data entries spread evenly (by entry count) over the log, or over the window
   * (from, to]: candidate rewind points, and the bisection's next ones.
   */
  samples(n: number, from = -Infinity, to = Infinity): number[] {
    const out: number[] = [];
    const first = from === -Infinity ? this.index.firstId : this.index.firstAfter(from);
    const end = to === Infinity ? this.index.endId : this.index.firstAfter(to);
    const count = end - first;
    if (count <= 0 || n <= 0) return out;
    const step = count / n;
    for (let k = 0; k < Math.min(n, count); k++) {
      const id = first + Math.min(count - 1, Math.floor(k * step + step / 2));
      if (this.index.kindOf(id) === Kind.DATA) out.push(this.index.timeOf(id));
    }
    return [...new Set(out)];
  }

  /** Entries with times in (from, to]. */
  countBetween(from: number, to: number): number {
    return Math.max(0, this.index.firstAfter(to) - this.index.firstAfter(from));
  }

  /**
   * The view at time t: for every block written after t, where the journal holds its data as of t (the
   * data replaced by the first write after t). Walks the entries after t newest first, so the earliest
   * write after t wins.
   */
  overlayAt(t: number): Map<number, number> {
    if (t < this.startTime) throw new JournalError(`the rewind log begins at ${isoMicro(this.startTime)}; ${isoMicro(t)} is before it`);
    return this.index.overlayAfter(t, Kind.DATA, JOURNAL_BLOCK, LOCATION_STRIDE);
  }

  /** `length` bytes of an entry's data from `within` on. */
  async readEntry(id: number, within: number, length: number): Promise<Buffer> {
    const n = this.index.segmentOf(id);
    const seg = this.segments.find((s) => s.n === n);
    if (!seg) throw new JournalError(`rewind log entry ${id} was dropped`);
    const avail = Math.max(0, Math.min(length, this.index.lengthOf(id) - within));
    const b = Buffer.alloc(length);
    if (avail > 0) await pread(seg.fd, b, avail, this.index.posOf(id) + RECORD_HEADER + within);
    return b;
  }

  /** A view holds the journal: nothing is dropped until it lets go. */
  pin(): () => void {
    this.pins++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.pins--;
    };
  }

  async close(): Promise<void> {
    await this.serial(async () => {
      if (this.closed) return;
      this.closed = true;
      if (this.segments.length > 0) fs.ftruncateSync(this.current.fd, this.current.logSize); // a reused file's old tail
      for (const s of this.segments) fs.closeSync(s.fd);
      if (this.idxFd >= 0) fs.closeSync(this.idxFd);
      this.idxFd = -1;
    });
  }

  /** Closes and deletes the log's files (the folder stays if anything else is in it). */
  async remove(): Promise<void> {
    await this.close();
    this.removeFiles();
    try {
      fs.rmdirSync(this.dir);
    } catch {
      // not empty: someone else's files
    }
  }
}

/** ISO 8601 with microseconds (times name a point between two entries to the microsecond). */
export const isoMicro = formatRewindTime;

const SYNC_APPEND_MAX = 256 * 1024;
const SCAN_WINDOW = 8 * 1024 * 1024;

/** writevSync in pieces of at most 1024 buffers (IOV_MAX). */
function writevAllSync(fd: number, bufs: Buffer[], position: number): number {
  let n = 0;
  for (let i = 0; i < bufs.length; i += 1024) {
    const part = bufs.slice(i, i + 1024);
    let want = 0;
    for (const b of part) want += b.length;
    const got = fs.writevSync(fd, part, position + n);
    n += got;
    if (got !== want) break;
  }
  return n;
}

function writev(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.writev(fd, bufs, position, (err, n) => (err ? reject(err) : resolve(n))));
}
function pread(fd: number, into: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => fs.read(fd, into, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}
