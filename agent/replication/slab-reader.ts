// The target's frame reader: the socket reads into large "slabs" (4 MiB, pooled) with as much as the
// kernel has, and each frame that lies whole in a slab is handed on as a view of it, with no copy.
//
// Why: reading into a frame's own buffer (FrameAssembler.nextReceiveBuffer) caps every read(2) at the
// rest of one frame, so a stream of 64 KiB writes costs one read, one wake-up and one socket-buffer
// walk per write. Measured on loopback TCP between two Node processes: 64 KiB reads 0.35–0.37 CPU s/GiB
// for both ends, 4 MiB reads 0.17–0.19 (docs/benchmarks.md). A slab is reused only once every frame
// lent from it has been released; frames larger than LARGE_FRAME still get a buffer of their own, read
// in place.
import { BufferPool } from '../storage/buffer-pool.js';
import { decodeFrame, fillFrom, MAX_FRAME, ProtocolError, type Frame } from './wire.js';

const SLAB_SIZE = 4 * 1024 * 1024;
/** A slab with less room than this left is retired (its unparsed tail moves to a fresh one). */
const MIN_ROOM = 256 * 1024;
/** Frames longer than this (length field) are received into a buffer of their own. */
export const LARGE_FRAME = 1024 * 1024 + 64;

/** One slab and the number of holders: the reader while it reads into it, plus each frame lent. */
class Slab {
  holders = 1;
  constructor(readonly buf: Buffer) {}
  drop(): void {
    if (--this.holders === 0) BufferPool.shared.release(this.buf);
  }
}

/** Called once the frame's bytes are no longer needed (applied, or copied out). Idempotent. */
export type Release = () => void;

export class SlabFrameReader {
  private slab: Slab | null = null;
  private fill = 0; // bytes of the slab holding received data
  private parsed = 0; // bytes of the slab already handed on as frames
  /** A large frame's body, received in its own pooled buffer. */
  private large: { type: number; body: Buffer; fill: number } | null = null;

  /** Where the socket's next read should land (always a buffer of ours: the slab's free tail, or a large body's rest). */
  nextReceiveBuffer(): Buffer {
    if (this.large) return this.large.body.subarray(this.large.fill);
    this.ensureRoom();
    const slab = this.slab as Slab;
    return slab.buf.subarray(this.fill);
  }

  /**
   * Takes received bytes — read in place into nextReceiveBuffer(), or any other buffer (copied) — and
   * calls onFrame for every complete frame, with the function that gives its bytes back. Throws
   * ProtocolError on a malformed stream.
   */
  feed(bytes: Buffer, onFrame: (frame: Frame, release: Release) => void): void {
    let at = 0;
    while (at < bytes.length) {
      const large = this.large;
      if (large) {
        const k = fillFrom(bytes, at, large.body, large.fill);
        large.fill += k;
        at += k;
        if (large.fill === large.body.length) {
          this.large = null;
          const body = large.body;
          onFrame(decodeFrame(large.type, body), once(() => BufferPool.shared.release(body)));
        }
        continue;
      }
      this.ensureRoom();
      const slab = this.slab as Slab;
      // Read in place (no copy) or copied in, as much as the slab's free tail holds.
      const k = fillFrom(bytes, at, slab.buf, this.fill);
      this.fill += k;
      at += k;
      this.parse(onFrame);
    }
  }

  /** Hands on every whole frame in the slab; starts a large frame's own buffer if one begins. */
  private parse(onFrame: (frame: Frame, release: Release) => void): void {
    const slab = this.slab as Slab;
    const buf = slab.buf;
    while (this.fill - this.parsed >= 5) {
      const length = buf.readUInt32BE(this.parsed);
      if (length < 1 || length > MAX_FRAME) throw new ProtocolError(`frame length ${length} out of bounds`);
      const type = buf.readUInt8(this.parsed + 4);
      const end = this.parsed + 4 + length;
      if (end > this.fill) {
        if (length <= LARGE_FRAME) return; // the rest comes with the next read, into this slab
        // Too large for slabs: its body goes to a buffer of its own, the rest read straight into it.
        const body = BufferPool.shared.acquire(length - 1);
        const have = this.fill - (this.parsed + 5);
        buf.copy(body, 0, this.parsed + 5, this.fill);
        this.large = { type, body, fill: have };
        this.parsed = this.fill;
        return;
      }
      const body = buf.subarray(this.parsed + 5, end);
      this.parsed = end;
      slab.holders++;
      let frame: Frame;
      try {
        frame = decodeFrame(type, body);
      } catch (err) {
        slab.drop();
        throw err;
      }
      onFrame(frame, once(() => slab.drop()));
    }
  }

  /** Makes sure the current slab has room for a read; a nearly full one is retired. */
  private ensureRoom(): void {
    if (this.slab && this.slab.buf.length - this.fill >= MIN_ROOM) return;
    const fresh = new Slab(BufferPool.shared.acquire(SLAB_SIZE));
    const old = this.slab;
    if (old) {
      // The unparsed tail (an incomplete frame, at most LARGE_FRAME + 4 bytes) moves to the new slab.
      old.buf.copy(fresh.buf, 0, this.parsed, this.fill);
      this.fill -= this.parsed;
      old.drop();
    } else {
      this.fill = 0;
    }
    this.parsed = 0;
    this.slab = fresh;
  }
}

function once(f: () => void): Release {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    f();
  };
}
