// The replication protocol between a source agent and a target agent, over one TCP connection per
// (mirror, target). Frames: u32 length of what follows, u8 type, payload. Pure encoding/decoding.
//
//   HELLO   source → target  JSON {protocol, version, tag, size, chunkSize, source, compression,
//                            generations, members, sourceAddress}
//   WELCOME target → source  JSON {size, node, compression, generations, consistent, dirty}
//                            (the compression level it accepts; its own generations; base64 of its
//                            bitmap for the source: chunks it may hold differently, to resync too)
//   REFUSE  target → source  JSON {message, role?, generations?, inService?}   (then the target closes;
//                            role "source": this node is itself a source of the mirror)
//   WRITE   source → target  u64 seq, u64 offset, data
//   WRITE_Z source → target  u64 seq, u64 offset, u32 length, deflate-raw(data)   (compression agreed)
//   ZERO    source → target  u64 seq, u64 offset, u32 length
//   FLUSH   source → target  u64 seq                   (target makes everything so far durable)
//   ACK     target → source  u64 seq                   (every message up to seq is applied)
//   HASH_REQ source → target u64 seq, u64 first chunk, u32 count  (checksum resync)
//   HASHES  target → source  u64 seq, u64 first chunk, u32 count, count × 32-byte SHA-256 of each
//                            chunk as it is after every message before the request
//   GEN     source → target  JSON {seq, current?, consistent}  in the stream: the target's data is now
//                            generation `current` (end of resync, new generation) / is being resynced
//   SWITCHOVER target → source JSON {node}             (bring the mirror in service on that target)
//   SWITCHED   source → target JSON {ok, message, generations}  (the source is out of service now, or why not)
//   BOOKMARK source → target u64 seq, UTF-8 name     (a rewind-log bookmark at this point of the stream)
//
// The target applies messages strictly in order, so at any moment it holds a prefix of the source's
// write sequence; sequence numbers only grow but need not be contiguous.

import { BufferPool } from '../storage/buffer-pool.js';
import type { Generations } from '../mirror/generations.js';

export const PROTOCOL = 'tandem-replication';
export const PROTOCOL_VERSION = 2;
export const MAX_FRAME = 33 * 1024 * 1024;

export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  REFUSE: 3,
  WRITE: 4,
  ZERO: 5,
  FLUSH: 6,
  ACK: 7,
  WRITE_Z: 8,
  HASH_REQ: 9,
  HASHES: 10,
  GEN: 11,
  SWITCHOVER: 12,
  SWITCHED: 13,
  BOOKMARK: 14,
} as const;

/** Longest bookmark name (bytes of UTF-8). */
export const MAX_BOOKMARK_NAME = 200;

export const HASH_LENGTH = 32;
/** Chunks per HASH_REQ at most (bounds the reply and the work done between two writes). */
export const MAX_HASH_CHUNKS = 1024;

export interface Hello {
  protocol: string;
  version: number;
  tag: string;
  size: number;
  chunkSize: number;
  source: string;
  /** zlib level the source would like to send with (0 = none); absent from old sources. */
  compression?: number;
  generations: Generations;
  /** Every node of the mirror as the source sees it (itself included), for failover and switchover. */
  members: MemberInfo[];
  /** The source's replication address, host:port ('' host: use the address the connection came from). */
  sourceAddress: string;
  /** The file system resource over the mirror, mounted on whichever node is in service. */
  fileSystem?: { tag: string; mountPoint: string; fstype: string } | null;
}

export interface MemberInfo {
  node: string;
  address: string;
  mode: 'sync' | 'async';
}

export interface Welcome {
  size: number;
  node: string;
  compression: number;
  generations: Generations;
  /** The target's data is a usable copy (not in the middle of a resync). */
  consistent: boolean;
  /** base64 of the target's bitmap for this source ('' when clean or without a bitmap). */
  dirty: string;
}

export interface Refusal {
  message: string;
  /** 'source': the refusing node is itself a source of the mirror (in service or starting). */
  role?: 'source';
  inService?: boolean;
  generations?: Generations;
}

export interface GenerationNotice {
  seq: number;
  /** The generation the target's data now is (absent: unchanged). */
  current?: string;
  consistent: boolean;
}

export interface Switched {
  ok: boolean;
  message: string;
  generations?: Generations;
}

export type Frame =
  | { type: typeof FrameType.HELLO; hello: Hello }
  | { type: typeof FrameType.WELCOME; welcome: Welcome }
  | { type: typeof FrameType.REFUSE; refusal: Refusal }
  | { type: typeof FrameType.GEN; gen: GenerationNotice }
  | { type: typeof FrameType.SWITCHOVER; node: string }
  | { type: typeof FrameType.SWITCHED; switched: Switched }
  | { type: typeof FrameType.WRITE; seq: number; offset: number; data: Buffer }
  | { type: typeof FrameType.WRITE_Z; seq: number; offset: number; length: number; compressed: Buffer }
  | { type: typeof FrameType.ZERO; seq: number; offset: number; length: number }
  | { type: typeof FrameType.HASH_REQ; seq: number; first: number; count: number }
  | { type: typeof FrameType.HASHES; seq: number; first: number; count: number; hashes: Buffer }
  | { type: typeof FrameType.FLUSH; seq: number }
  | { type: typeof FrameType.ACK; seq: number }
  | { type: typeof FrameType.BOOKMARK; seq: number; name: string };

export class ProtocolError extends Error {}

/** Writes a non-negative safe integer as a big-endian u64 (no BigInt: this runs for every write). */
export function writeU64(b: Buffer, value: number, at: number): void {
  const high = Math.floor(value / 0x1_0000_0000);
  b.writeUInt32BE(high, at);
  b.writeUInt32BE(value - high * 0x1_0000_0000, at + 4);
}

/** Reads a big-endian u64 as a number; a value above 2^53 is refused as malformed. */
export function readU64(b: Buffer, at: number): number {
  const high = b.readUInt32BE(at);
  if (high > 0x1f_ffff) throw new ProtocolError(`a 64-bit field at byte ${at} is larger than 2^53`);
  return high * 0x1_0000_0000 + b.readUInt32BE(at + 4);
}

function frame(type: number, payloadLength: number): Buffer {
  const b = Buffer.allocUnsafe(5 + payloadLength);
  b.writeUInt32BE(1 + payloadLength, 0);
  b.writeUInt8(type, 4);
  return b;
}

function jsonFrame(type: number, value: unknown): Buffer {
  const j = Buffer.from(JSON.stringify(value), 'utf8');
  const b = frame(type, j.length);
  j.copy(b, 5);
  return b;
}

export const encodeHello = (h: Hello): Buffer => jsonFrame(FrameType.HELLO, h);
export const encodeWelcome = (w: Welcome): Buffer => jsonFrame(FrameType.WELCOME, w);
export const encodeGeneration = (g: GenerationNotice): Buffer => jsonFrame(FrameType.GEN, g);
export const encodeSwitchover = (node: string): Buffer => jsonFrame(FrameType.SWITCHOVER, { node });
export const encodeSwitched = (s: Switched): Buffer => jsonFrame(FrameType.SWITCHED, s);

/** A WRITE_Z frame: the data of a WRITE, compressed (deflate-raw). */
export function encodeWriteZ(seq: number, offset: number, length: number, compressed: Buffer): Buffer {
  const b = frame(FrameType.WRITE_Z, 20 + compressed.length);
  writeU64(b, seq, 5);
  writeU64(b, offset, 13);
  b.writeUInt32BE(length, 21);
  compressed.copy(b, 25);
  return b;
}
export const encodeRefuse = (message: string, extra: Omit<Refusal, 'message'> = {}): Buffer => jsonFrame(FrameType.REFUSE, { message, ...extra });

/** A WRITE frame with the data copied in: one buffer, written to every target. */
export function encodeWrite(seq: number, offset: number, data: readonly Buffer[]): Buffer {
  let n = 0;
  for (const d of data) n += d.length;
  const b = frame(FrameType.WRITE, 16 + n);
  writeU64(b, seq, 5);
  writeU64(b, offset, 13);
  let at = 21;
  for (const d of data) {
    d.copy(b, at);
    at += d.length;
  }
  return b;
}

/** Bytes before the data in a WRITE frame: length, type, seq, offset. */
export const WRITE_HEADER_LENGTH = 21;

/** Fills in the header of a WRITE frame whose `dataLength` bytes of data follow it in `b`. */
export function writeWriteHeader(b: Buffer, seq: number, offset: number, dataLength: number): Buffer {
  b.writeUInt32BE(17 + dataLength, 0);
  b.writeUInt8(FrameType.WRITE, 4);
  writeU64(b, seq, 5);
  writeU64(b, offset, 13);
  return b;
}

/**
 * A WRITE frame for `dataLength` bytes in a buffer of BufferPool.shared, header filled in, data to be
 * put at WRITE_HEADER_LENGTH by the caller. Frames go out at the rate writes come in: fresh buffers for
 * each made V8 count them as external memory and run full garbage collections (seen with perf on the
 * source agent). Give it back with BufferPool.shared.release() once every socket has written it.
 */
export function pooledWriteFrame(seq: number, offset: number, dataLength: number): Buffer {
  return writeWriteHeader(BufferPool.shared.acquire(WRITE_HEADER_LENGTH + dataLength), seq, offset, dataLength);
}

/** Sets the sequence number of an encoded WRITE, ZERO or FLUSH frame; returns the frame. */
export function setFrameSeq(frame: Buffer, seq: number): Buffer {
  writeU64(frame, seq, 5);
  return frame;
}

/** The frames made of a sequence number, a u64 and a u32 (ZERO, HASH_REQ). */
function encodeSeqU64U32(type: number, seq: number, a: number, b: number): Buffer {
  const f = frame(type, 20);
  writeU64(f, seq, 5);
  writeU64(f, a, 13);
  f.writeUInt32BE(b, 21);
  return f;
}

export const encodeHashRequest = (seq: number, first: number, count: number): Buffer => encodeSeqU64U32(FrameType.HASH_REQ, seq, first, count);

export function encodeHashes(seq: number, first: number, hashes: Buffer[]): Buffer {
  const b = frame(FrameType.HASHES, 20 + hashes.length * HASH_LENGTH);
  writeU64(b, seq, 5);
  writeU64(b, first, 13);
  b.writeUInt32BE(hashes.length, 21);
  hashes.forEach((h, i) => h.copy(b, 25 + i * HASH_LENGTH));
  return b;
}

/** A bookmark in the write stream: every target journals it at the same point of the sequence. */
export function encodeBookmark(seq: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = frame(FrameType.BOOKMARK, 8 + n.length);
  writeU64(b, seq, 5);
  n.copy(b, 13);
  return b;
}

export const encodeZero = (seq: number, offset: number, length: number): Buffer => encodeSeqU64U32(FrameType.ZERO, seq, offset, length);

export function encodeSeqFrame(type: typeof FrameType.FLUSH | typeof FrameType.ACK, seq: number): Buffer {
  const b = frame(type, 8);
  writeU64(b, seq, 5);
  return b;
}

function parseJson(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ProtocolError('malformed JSON in a handshake frame');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ProtocolError('handshake frame is not a JSON object');
  return v as Record<string, unknown>;
}

function isGenerations(v: unknown): v is Generations {
  if (!v || typeof v !== 'object') return false;
  const g = v as Record<string, unknown>;
  return typeof g.current === 'string' && Array.isArray(g.history) && g.history.every((h) => typeof h === 'string') &&
    !!g.peers && typeof g.peers === 'object' && !Array.isArray(g.peers) && Object.values(g.peers as object).every((p) => typeof p === 'string');
}

function isFileSystem(v: unknown): v is { tag: string; mountPoint: string; fstype: string } {
  if (!v || typeof v !== 'object') return false;
  const f = v as Record<string, unknown>;
  return typeof f.tag === 'string' && typeof f.mountPoint === 'string' && f.mountPoint.startsWith('/') && typeof f.fstype === 'string';
}

function isMember(v: unknown): v is MemberInfo {
  if (!v || typeof v !== 'object') return false;
  const m = v as Record<string, unknown>;
  return typeof m.node === 'string' && typeof m.address === 'string' && (m.mode === 'sync' || m.mode === 'async');
}

function need(body: Buffer, n: number, what: string): void {
  if (body.length < n) throw new ProtocolError(`${what} frame too short (${body.length} bytes)`);
}

/** Decodes one frame body (type byte + payload). Throws ProtocolError on anything malformed. */
export function decodeFrame(type: number, body: Buffer): Frame {
  switch (type) {
    case FrameType.HELLO: {
      const o = parseJson(body);
      const h = {
        protocol: o.protocol, version: o.version, tag: o.tag, size: o.size, chunkSize: o.chunkSize, source: o.source,
        compression: typeof o.compression === 'number' ? o.compression : 0,
        generations: o.generations, members: o.members, sourceAddress: o.sourceAddress,
        fileSystem: isFileSystem(o.fileSystem) ? o.fileSystem : null,
      };
      if (typeof h.protocol !== 'string' || typeof h.version !== 'number' || typeof h.tag !== 'string' ||
        typeof h.size !== 'number' || typeof h.chunkSize !== 'number' || typeof h.source !== 'string') {
        throw new ProtocolError('HELLO lacks protocol, version, tag, size, chunkSize or source');
      }
      // An older agent's HELLO lacks the rest; it is refused for its version, not for garbage.
      if (h.version === PROTOCOL_VERSION) {
        if (!isGenerations(h.generations) || !Array.isArray(h.members) || !h.members.every(isMember) || typeof h.sourceAddress !== 'string') {
          throw new ProtocolError('HELLO lacks generations, members or sourceAddress');
        }
      }
      return { type, hello: h as Hello };
    }
    case FrameType.WELCOME: {
      const o = parseJson(body);
      if (typeof o.size !== 'number' || typeof o.node !== 'string' || !isGenerations(o.generations) || typeof o.consistent !== 'boolean' || typeof o.dirty !== 'string') {
        throw new ProtocolError('WELCOME lacks size, node, generations, consistent or dirty');
      }
      return {
        type, welcome: {
          size: o.size, node: o.node, compression: typeof o.compression === 'number' ? o.compression : 0,
          generations: o.generations, consistent: o.consistent, dirty: o.dirty,
        },
      };
    }
    case FrameType.REFUSE: {
      const o = parseJson(body);
      const refusal: Refusal = { message: typeof o.message === 'string' ? o.message : 'refused' };
      if (o.role === 'source') refusal.role = 'source';
      if (typeof o.inService === 'boolean') refusal.inService = o.inService;
      if (isGenerations(o.generations)) refusal.generations = o.generations;
      return { type, refusal };
    }
    case FrameType.GEN: {
      const o = parseJson(body);
      if (typeof o.seq !== 'number' || typeof o.consistent !== 'boolean' || (o.current !== undefined && typeof o.current !== 'string')) {
        throw new ProtocolError('GEN lacks seq or consistent');
      }
      return { type, gen: { seq: o.seq, consistent: o.consistent, ...(typeof o.current === 'string' ? { current: o.current } : {}) } };
    }
    case FrameType.SWITCHOVER: {
      const o = parseJson(body);
      if (typeof o.node !== 'string') throw new ProtocolError('SWITCHOVER lacks node');
      return { type, node: o.node };
    }
    case FrameType.SWITCHED: {
      const o = parseJson(body);
      if (typeof o.ok !== 'boolean' || typeof o.message !== 'string') throw new ProtocolError('SWITCHED lacks ok or message');
      return { type, switched: { ok: o.ok, message: o.message, ...(isGenerations(o.generations) ? { generations: o.generations } : {}) } };
    }
    case FrameType.WRITE:
      need(body, 16, 'WRITE');
      return { type, seq: readU64(body, 0), offset: readU64(body, 8), data: body.subarray(16) };
    case FrameType.WRITE_Z:
      need(body, 20, 'WRITE_Z');
      return { type, seq: readU64(body, 0), offset: readU64(body, 8), length: body.readUInt32BE(16), compressed: body.subarray(20) };
    case FrameType.HASH_REQ: {
      need(body, 20, 'HASH_REQ');
      const count = body.readUInt32BE(16);
      if (count < 1 || count > MAX_HASH_CHUNKS) throw new ProtocolError(`HASH_REQ for ${count} chunks (1–${MAX_HASH_CHUNKS} allowed)`);
      return { type, seq: readU64(body, 0), first: readU64(body, 8), count };
    }
    case FrameType.HASHES: {
      need(body, 20, 'HASHES');
      const count = body.readUInt32BE(16);
      if (body.length !== 20 + count * HASH_LENGTH) throw new ProtocolError('HASHES frame length does not match its count');
      return { type, seq: readU64(body, 0), first: readU64(body, 8), count, hashes: body.subarray(20) };
    }
    case FrameType.ZERO:
      need(body, 20, 'ZERO');
      return { type, seq: readU64(body, 0), offset: readU64(body, 8), length: body.readUInt32BE(16) };
    case FrameType.BOOKMARK: {
      need(body, 9, 'BOOKMARK');
      if (body.length > 8 + MAX_BOOKMARK_NAME) throw new ProtocolError(`BOOKMARK name longer than ${MAX_BOOKMARK_NAME} bytes`);
      return { type, seq: readU64(body, 0), name: body.subarray(8).toString('utf8') };
    }
    case FrameType.FLUSH:
    case FrameType.ACK:
      need(body, 8, type === FrameType.FLUSH ? 'FLUSH' : 'ACK');
      return { type, seq: readU64(body, 0) } as Frame;
    default:
      throw new ProtocolError(`unknown frame type ${type}`);
  }
}

/**
 * Puts bytes[at…] into `into` from `fill` on, as much as fits, and returns how many bytes that was;
 * bytes the kernel already read there (a buffer lent for the read, see nextReceiveBuffer) need no copy.
 */
export function fillFrom(bytes: Buffer, at: number, into: Buffer, fill: number): number {
  const k = Math.min(into.length - fill, bytes.length - at);
  const inPlace = at === 0 && bytes.buffer === into.buffer && bytes.byteOffset === into.byteOffset + fill;
  if (!inPlace) bytes.copy(into, fill, at, at + k);
  return k;
}

/** A body with at least this much still to come is received in place (nextReceiveBuffer). */
const DIRECT_RECEIVE_MIN = 64 * 1024;

/**
 * Reassembles frames from borrowed bytes (a receive buffer reused after each call): each frame's body
 * is copied once into a buffer of its own — from the shared pool when large; hand it back with
 * BufferPool.shared.release() when done, or leave it to the GC.
 */
export class FrameAssembler {
  private readonly head = Buffer.alloc(5);
  private headFill = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  private type = 0;

  /** Calls onFrame for every complete frame; throws ProtocolError on a malformed stream. */
  feed(bytes: Buffer, onFrame: (frame: Frame, body: Buffer) => void): void {
    let at = 0;
    while (at < bytes.length) {
      if (!this.body) {
        const k = Math.min(5 - this.headFill, bytes.length - at);
        bytes.copy(this.head, this.headFill, at, at + k);
        this.headFill += k;
        at += k;
        if (this.headFill < 5) return;
        this.headFill = 0;
        const length = this.head.readUInt32BE(0);
        if (length < 1 || length > MAX_FRAME) throw new ProtocolError(`frame length ${length} out of bounds`);
        this.type = this.head.readUInt8(4);
        this.body = length - 1 >= 4096 ? BufferPool.shared.acquire(length - 1) : Buffer.allocUnsafe(length - 1);
        this.bodyFill = 0;
      }
      const k = fillFrom(bytes, at, this.body, this.bodyFill);
      this.bodyFill += k;
      at += k;
      if (this.bodyFill === this.body.length) {
        const body = this.body;
        this.body = null;
        onFrame(decodeFrame(this.type, body), body);
      }
    }
  }

  /**
   * Where the socket's next read should land: the rest of a large frame body still arriving (the kernel
   * copies it there: no copy out of a shared receive buffer), or null. At most the body's remaining
   * bytes are read into it, so it never holds the next frame.
   */
  nextReceiveBuffer(): Buffer | null {
    if (!this.body || this.body.length - this.bodyFill < DIRECT_RECEIVE_MIN) return null;
    return this.body.subarray(this.bodyFill);
  }

  /** The frames completed by `bytes` (with what came before), as an array. */
  push(bytes: Buffer): Frame[] {
    const out: Frame[] = [];
    this.feed(bytes, (f) => out.push(f));
    return out;
  }
}
