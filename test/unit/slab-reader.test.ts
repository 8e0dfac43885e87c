// The target's slab reader: frames come out whole and unchanged however the stream is cut into reads,
// read in place or copied, and a slab is only reused once every frame lent from it was released.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LARGE_FRAME, SlabFrameReader, type Release } from '../../agent/replication/slab-reader.js';
import { encodeSeqFrame, encodeWrite, FrameType, ProtocolError, type Frame } from '../../agent/replication/wire.js';

function writes(count: number, size: (i: number) => number): { stream: Buffer; datas: Buffer[] } {
  const datas = Array.from({ length: count }, (_, i) => crypto.randomBytes(size(i)));
  const frames = datas.flatMap((d, i) => [encodeWrite(i + 1, i * 4096, [d]), encodeSeqFrame(FrameType.FLUSH, 10_000 + i)]);
  return { stream: Buffer.concat(frames), datas };
}

/** Feeds `stream` as the socket would: each read lands in nextReceiveBuffer(), at most `cut(n)` bytes. */
function readInPlace(reader: SlabFrameReader, stream: Buffer, cut: (n: number) => number, onFrame: (f: Frame, r: Release) => void): number {
  let at = 0;
  let reads = 0;
  while (at < stream.length) {
    const into = reader.nextReceiveBuffer();
    const n = Math.min(into.length, stream.length - at, cut(reads));
    stream.copy(into, 0, at, at + n);
    at += n;
    reads++;
    reader.feed(into.subarray(0, n), onFrame);
  }
  return reads;
}

describe('SlabFrameReader', () => {
  it('gives back every frame intact for reads cut anywhere, in place or copied, released late', () => {
    const { stream, datas } = writes(300, (i) => [4096, 65536, 1, 12_345, 300_000][i % 5] as number);
    for (const [name, cut] of [['1-byte-ish', (n: number) => 1 + (n % 7)], ['odd', (n: number) => 4093 + n * 31], ['big', () => 8 << 20]] as const) {
      const reader = new SlabFrameReader();
      const held: Array<{ f: Frame; r: Release }> = [];
      const got: Buffer[] = [];
      const check = () => {
        // Hold a window of frames unreleased while later reads arrive, then check and release them.
        for (const { f, r } of held.splice(0)) {
          if (f.type === FrameType.WRITE) got.push(Buffer.from(f.data));
          r();
        }
      };
      const onFrame = (f: Frame, r: Release) => {
        held.push({ f, r });
        if (held.length > 40) {
          const early = held.splice(0, 20);
          for (const { f: g, r: rel } of early) {
            if (g.type === FrameType.WRITE) got.push(Buffer.from(g.data));
            rel();
          }
        }
      };
      if (name === '1-byte-ish') {
        // Copied path: bytes that are not the reader's own buffer.
        let at = 0;
        let n = 0;
        while (at < stream.length) {
          const k = Math.min(cut(n++) * 997, stream.length - at);
          reader.feed(stream.subarray(at, at + k), onFrame);
          at += k;
        }
      } else {
        readInPlace(reader, stream, cut, onFrame);
      }
      check();
      expect(got.length, name).toBe(datas.length);
      got.forEach((g, i) => expect(g.equals(datas[i] as Buffer), `${name} frame ${i}`).toBe(true));
    }
  });

  it('reads a stream of 64 KiB writes in few large reads, not one per write', () => {
    const { stream } = writes(200, () => 65536);
    const reader = new SlabFrameReader();
    let frames = 0;
    const reads = readInPlace(reader, stream, () => 1 << 30, (_f, r) => {
      frames++;
      r();
    });
    expect(frames).toBe(400);
    expect(reads).toBeLessThan(10);
  });

  it('receives a frame larger than a slab share into its own buffer', () => {
    const big = crypto.randomBytes(LARGE_FRAME * 3);
    const stream = Buffer.concat([encodeWrite(1, 0, [Buffer.alloc(100, 1)]), encodeWrite(2, 0, [big]), encodeSeqFrame(FrameType.FLUSH, 3)]);
    const reader = new SlabFrameReader();
    const got: Frame[] = [];
    readInPlace(reader, stream, () => 256 * 1024, (f, r) => {
      got.push(f.type === FrameType.WRITE ? { ...f, data: Buffer.from(f.data) } : f);
      r();
    });
    expect(got.map((f) => f.type)).toEqual([FrameType.WRITE, FrameType.WRITE, FrameType.FLUSH]);
    expect((got[1] as Extract<Frame, { type: 4 }>).data.equals(big)).toBe(true);
  });

  it('throws a ProtocolError on a frame length out of bounds or an unknown type', () => {
    const bad = Buffer.alloc(5);
    bad.writeUInt32BE(0, 0);
    expect(() => new SlabFrameReader().feed(bad, () => {})).toThrow(ProtocolError);
    const unknown = Buffer.from([0, 0, 0, 1, 99]);
    expect(() => new SlabFrameReader().feed(unknown, () => {})).toThrow(/unknown frame type 99/);
  });
});
