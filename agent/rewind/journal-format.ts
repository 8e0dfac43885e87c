// The rewind log's on-disk format (pure: encoders, decoders, names). See docs/architecture.md, "Rewind log".
//
// A journal is a folder LOGDIR/TAG.rewind holding numbered segments, each a pair of files:
//   NNNNNNNNNN.log  a 64-byte header, then records: a 40-byte record header and its data
//   NNNNNNNNNN.idx  one 32-byte index record per log record (what a view needs, without the data)
// Only the newest segment is appended to; older ones are sealed (their index made durable when sealed).
import zlib from 'node:zlib';

export const SEGMENT_MAGIC = 'TANDEMRW';
export const FORMAT_VERSION = 1;
export const SEGMENT_HEADER = 64;
export const RECORD_MAGIC = 0x52574531; // "RWE1"
export const RECORD_HEADER = 40;
export const INDEX_RECORD = 32;
/** Journalled data covers whole blocks of this size, so a view's overlay is a map of blocks. */
export const JOURNAL_BLOCK = 4096;
/** Longest data in one record (larger zeroings are journalled as several records). */
export const MAX_RECORD_DATA = 8 * 1024 * 1024;

export const Kind = { DATA: 1, BOOKMARK: 2 } as const;
export type KindValue = (typeof Kind)[keyof typeof Kind];

export interface SegmentHeader {
  segment: number;
  /** Views may be opened at any time from here once every older segment is gone. */
  validFrom: number;
}

export interface RecordHeader {
  /** The segment the record was written to (a recycled segment file's old records carry another). */
  segment: number;
  kind: KindValue;
  length: number;
  dataCrc: number;
  time: number;
  offset: number;
}

export interface IndexRecord {
  time: number;
  offset: number;
  /** Where the record's header starts in the .log file. */
  pos: number;
  length: number;
  kind: KindValue;
}

export const segmentName = (n: number, ext: 'log' | 'idx'): string => `${String(n).padStart(10, '0')}.${ext}`;

/** Segment numbers found among a folder's file names, ascending (only those with a .log). */
export function segmentNumbers(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const n of names) {
    const m = /^(\d{10})\.log$/.exec(n);
    if (m) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER);
  b.write(SEGMENT_MAGIC, 0, 'latin1');
  b.writeUInt32BE(FORMAT_VERSION, 8);
  b.writeUInt32BE(h.segment, 12);
  b.writeDoubleBE(h.validFrom, 16);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, 24)), 24);
  return b;
}

/** The header, or a reason it is not one of ours. */
export function decodeSegmentHeader(b: Buffer): SegmentHeader | string {
  if (b.length < SEGMENT_HEADER) return 'shorter than a segment header';
  if (b.toString('latin1', 0, 8) !== SEGMENT_MAGIC) return 'not a Tandem rewind log segment (bad magic)';
  if (b.readUInt32BE(8) !== FORMAT_VERSION) return `rewind log format version ${b.readUInt32BE(8)}, this agent reads version ${FORMAT_VERSION}`;
  if (b.readUInt32BE(24) !== zlib.crc32(b.subarray(0, 24))) return 'segment header checksum mismatch';
  return { segment: b.readUInt32BE(12), validFrom: b.readDoubleBE(16) };
}

/** Encodes a record header at `at` of `into` (an append encodes all its headers into one buffer). */
export function encodeRecordHeaderInto(h: RecordHeader, into: Buffer, at: number): Buffer {
  const b = into.subarray(at, at + RECORD_HEADER);
  b.writeUInt32BE(RECORD_MAGIC, 0);
  b.writeUInt8(h.kind, 4);
  b.fill(0, 5, 8);
  b.writeUInt32BE(h.length, 8);
  b.writeUInt32BE(h.dataCrc, 12);
  b.writeDoubleBE(h.time, 16);
  b.writeDoubleBE(h.offset, 24);
  b.writeUInt32BE(h.segment, 32);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, 36)), 36);
  return b;
}

/** A record header, or null if these bytes are not a whole, intact one (a torn tail). */
export function decodeRecordHeader(b: Buffer): RecordHeader | null {
  if (b.length < RECORD_HEADER || b.readUInt32BE(0) !== RECORD_MAGIC) return null;
  if (b.readUInt32BE(36) !== zlib.crc32(b.subarray(0, 36))) return null;
  const kind = b.readUInt8(4);
  if (kind !== Kind.DATA && kind !== Kind.BOOKMARK) return null;
  return { segment: b.readUInt32BE(32), kind, length: b.readUInt32BE(8), dataCrc: b.readUInt32BE(12), time: b.readDoubleBE(16), offset: b.readDoubleBE(24) };
}

export function encodeIndexRecord(r: IndexRecord, into: Buffer = Buffer.alloc(INDEX_RECORD), at = 0): Buffer {
  into.writeDoubleBE(r.time, at);
  into.writeDoubleBE(r.offset, at + 8);
  into.writeDoubleBE(r.pos, at + 16);
  into.writeUInt32BE(r.length, at + 24);
  into.writeUInt8(r.kind, at + 28);
  into.fill(0, at + 29, at + 32);
  return into;
}

export function decodeIndexRecord(b: Buffer, at: number): IndexRecord {
  return { time: b.readDoubleBE(at), offset: b.readDoubleBE(at + 8), pos: b.readDoubleBE(at + 16), length: b.readUInt32BE(at + 24), kind: b.readUInt8(at + 28) as KindValue };
}

/** [first, end) rounded out to whole journal blocks and clamped to the volume. */
export function blockSpan(offset: number, length: number, volumeSize: number): { start: number; end: number } {
  const start = Math.floor(offset / JOURNAL_BLOCK) * JOURNAL_BLOCK;
  const end = Math.min(volumeSize, Math.ceil((offset + length) / JOURNAL_BLOCK) * JOURNAL_BLOCK);
  return { start, end: Math.max(start, end) };
}
