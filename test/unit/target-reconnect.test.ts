// The target's session: a source that reconnects at once (fullresync) replaces its old connection, and a
// write of the old connection still being applied must land before any write of the new one (or the
// target keeps the older data of a chunk the source has since sent again); acknowledgements mean durable,
// with no more flushes than that needs.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freshGenerations } from '../../agent/mirror/generations.js';
import { ReplicationListener } from '../../agent/replication/target-server.js';
import { encodeGeneration, encodeHello, encodeSeqFrame, encodeWrite, FrameAssembler, FrameType, PROTOCOL, PROTOCOL_VERSION, type Frame } from '../../agent/replication/wire.js';
import type { BlockStore } from '../../agent/storage/block-store.js';
import { createLogger } from '../../agent/log.js';

const SIZE = 1024 * 1024;

/** A memory disk whose first write is held (in flight) until released, like a slow device. */
class HeldDisk implements BlockStore {
  readonly data = Buffer.alloc(SIZE);
  readonly size = SIZE;
  readonly readOnly = false;
  readonly description = 'held disk';
  readonly canFastZero = false;
  readonly syncWriteMax = 0;
  writes = 0;
  release: (() => void) | null = null;
  hold = true;
  flushes = 0;
  async read(o: number, l: number) { return Buffer.from(this.data.subarray(o, o + l)); }
  async write(o: number, d: readonly Buffer[]) {
    const bytes = Buffer.concat(d);
    if (this.writes++ === 0 && this.hold) await new Promise<void>((r) => (this.release = r));
    bytes.copy(this.data, o);
  }
  async flush() {
    this.flushes++;
  }
  async trim() {}
  async writeZeroes() {}
  async close() {}
}

/** A raw source connection: sends HELLO and collects the target's frames. */
async function connectSource(port: number): Promise<{ socket: net.Socket; frames: Frame[] }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const frames: Frame[] = [];
  const reader = new FrameAssembler();
  socket.on('data', (b: Buffer) => frames.push(...reader.push(b)));
  socket.write(encodeHello({
    protocol: PROTOCOL, version: PROTOCOL_VERSION, tag: 'm', size: SIZE, chunkSize: 65536, source: 's',
    generations: freshGenerations(true), members: [], sourceAddress: ':1',
  }));
  await until(() => frames.some((f) => f.type === FrameType.WELCOME));
  return { socket, frames };
}

const until = async (check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('target session', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it('applies nothing of the new connection before the old one stopped applying', async () => {
    const disk = new HeldDisk();
    // Called as each session parses its first frame after HELLO: shows the new write has arrived.
    let firstFrames = 0;
    const listener = new ReplicationListener({
      admit: () => ({ store: disk, welcome: { generations: freshGenerations(false), consistent: true, dirty: '' } }),
      onSourceHasOurBits: () => void firstFrames++,
    }, 't', createLogger('test', 'error'));
    const port = await listener.listen('127.0.0.1', 0);
    cleanup.push(() => listener.close());

    const old = await connectSource(port);
    old.socket.write(encodeWrite(1, 0, [Buffer.alloc(4096, 1)]));
    await until(() => disk.release !== null); // the old connection's write is in flight

    const fresh = await connectSource(port); // replaces the old connection (which the source dropped)
    fresh.socket.write(encodeWrite(2, 0, [Buffer.alloc(4096, 2)]));
    fresh.socket.write(encodeSeqFrame(FrameType.FLUSH, 3));
    await until(() => firstFrames === 2); // the new write has been received…
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); // …and, wrongly, would be applied by now
    expect(disk.writes).toBe(1);
    disk.release!();
    await until(() => fresh.frames.some((f) => f.type === FrameType.ACK && f.seq === 3));
    old.socket.destroy();
    fresh.socket.destroy();
    // The newer data wins, as the source sent it last.
    expect(disk.data.subarray(0, 4096).every((b) => b === 2)).toBe(true);
    expect(old.frames.some((f) => f.type === FrameType.ACK)).toBe(false);
  });

  it('acknowledges a write only after a flush, and flushes no more than that needs', async () => {
    const disk = new HeldDisk();
    disk.hold = false;
    const listener = new ReplicationListener({ admit: () => ({ store: disk, welcome: { generations: freshGenerations(false), consistent: true, dirty: '' } }) }, 't', createLogger('test', 'error'));
    const port = await listener.listen('127.0.0.1', 0);
    cleanup.push(() => listener.close());
    const src = await connectSource(port);
    const acked = (seq: number) => until(() => src.frames.some((f) => f.type === FrameType.ACK && f.seq === seq));

    src.socket.write(encodeGeneration({ seq: 1, consistent: false })); // not a usable copy: no flush needed
    await acked(1);
    expect(disk.flushes).toBe(0);
    src.socket.write(encodeWrite(2, 0, [Buffer.alloc(4096, 7)]));
    await acked(2);
    expect(disk.flushes).toBe(1);
    src.socket.write(encodeGeneration({ seq: 3, consistent: true, current: 'g1' })); // flushes what came before it…
    await acked(3);
    expect(disk.flushes).toBe(2);
    src.socket.write(encodeSeqFrame(FrameType.FLUSH, 4)); // …and nothing was written since
    await acked(4);
    expect(disk.flushes).toBe(2);
    src.socket.destroy();
  });
});
