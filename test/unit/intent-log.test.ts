import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BitSet, chunkRange, IntentLog } from '../../agent/intent-log/bitmap.js';
import { ChunkLocks } from '../../agent/mirror/chunk-locks.js';
import { decodeFrame, encodeWrite, FrameAssembler, FrameType, ProtocolError } from '../../agent/replication/wire.js';
import { tempDir } from '../helpers/tools.js';

describe('BitSet', () => {
  it('sets, clears, counts and finds the next set bit', () => {
    const b = new BitSet(100);
    expect(b.set(3)).toBe(true);
    expect(b.set(3)).toBe(false);
    b.set(64);
    b.set(99);
    expect(b.count()).toBe(3);
    expect([b.next(0), b.next(4), b.next(65), b.next(100)]).toEqual([3, 64, 99, -1]);
    b.clear(64);
    expect(b.next(4)).toBe(99);
    b.setAll();
    expect(b.count()).toBe(100);
  });

  it('maps byte ranges to chunks', () => {
    expect(chunkRange(65536, 0, 1)).toEqual([0, 0]);
    expect(chunkRange(65536, 65535, 2)).toEqual([0, 1]);
    expect(chunkRange(65536, 131072, 65536)).toEqual([2, 2]);
  });
});

describe('IntentLog file', () => {
  const geometry = { chunkSize: 65536, volumeSize: 1 << 30 };

  it('mark() answers null once the bits are durable, and a promise while they are not', async () => {
    const log = IntentLog.open(path.join(tempDir('bm'), 'vol.bitmap'), geometry, { create: true });
    const first = log.mark([0], 3, 4);
    expect(first).not.toBeNull();
    await first;
    expect(log.mark([0], 3, 4)).toBeNull();
    const third = log.mark([0], 4, 5); // chunk 5 is new
    expect(third).not.toBeNull();
    await third;
    log.unpin([0], 3, 4);
    log.unpin([0], 3, 4);
    log.unpin([0], 4, 5);
    log.close();
  });

  it('bits set before a crash are there after reopening; clears are lazy', async () => {
    const file = path.join(tempDir('bm'), 'vol.bitmap');
    const log = IntentLog.open(file, geometry, { create: true });
    await log.markDirty([0, 2], 10, 12);
    await log.markDirty([0], 16000, 16000);
    // No close(): as if the process died here.
    const again = IntentLog.open(file, geometry, { create: false });
    expect(again.dirtyCount(0)).toBe(4);
    expect(again.dirtyCount(2)).toBe(3);
    expect(again.dirtyCount(1)).toBe(0);
    again.clear(0, 10);
    await again.flushClears();
    expect(IntentLog.open(file, geometry, { create: false }).dirtyCount(0)).toBe(3);
  });

  it('refuses a bitmap made for another geometry, and a file that is not a bitmap', () => {
    const d = tempDir('bm');
    const file = path.join(d, 'vol.bitmap');
    IntentLog.open(file, geometry, { create: true }).close();
    expect(() => IntentLog.open(file, { chunkSize: 4096, volumeSize: 1 << 30 }, { create: false })).toThrow(/was made for chunk 65536/);
    const junk = path.join(d, 'junk');
    fs.writeFileSync(junk, Buffer.alloc(8192, 1));
    expect(() => IntentLog.open(junk, geometry, { create: false })).toThrow(/not a Tandem bitmap file/);
  });

  it('group commit: many concurrent marks share few fdatasyncs and all resolve', async () => {
    const file = path.join(tempDir('bm'), 'vol.bitmap');
    const log = IntentLog.open(file, geometry, { create: true });
    const marks = Array.from({ length: 200 }, (_, i) => log.markDirty([0], i * 3, i * 3));
    await Promise.all(marks);
    expect(log.dirtyCount(0)).toBe(200);
    // A chunk already durable costs nothing.
    let resolved = false;
    const again = log.markDirty([0], 0, 0).then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(true);
    await again;
  });
});

describe('IntentLog: lazy clears and pins', () => {
  const geometry = { chunkSize: 65536, volumeSize: 1 << 30 };
  const settled = async (p: Promise<unknown>) => {
    let done = false;
    void p.then(() => (done = true), () => (done = true));
    for (let i = 0; i < 3; i++) await Promise.resolve();
    return done;
  };

  it('a bit cleared in memory stays set in the file until flushClears, so marking it again waits for no commit', async () => {
    const file = path.join(tempDir('bm'), 'vol.bitmap');
    const log = IntentLog.open(file, geometry, { create: true });
    await log.markDirty([1], 7, 7);
    log.unpin([1], 7, 7);
    log.clear(1, 7);
    expect(log.dirtyCount(1)).toBe(0); // status shows the exact state
    expect(IntentLog.open(file, geometry, { create: false }).dirtyCount(1)).toBe(1); // the file still says dirty
    expect(await settled(log.markDirty([1], 7, 7))).toBe(true);
    log.unpin([1], 7, 7);
    expect(log.dirtyCount(1)).toBe(1);
    log.clear(1, 7);
    await log.flushClears();
    expect(IntentLog.open(file, geometry, { create: false }).dirtyCount(1)).toBe(0);
    // Now the file says clean: marking it again must wait for the commit that sets it.
    const again = log.markDirty([1], 7, 7);
    expect(await settled(again)).toBe(false);
    await again;
    expect(IntentLog.open(file, geometry, { create: false }).dirtyCount(1)).toBe(1);
  });

  it('the periodic flush keeps a chunk marked since the previous one set in the file for one more flush', async () => {
    const file = path.join(tempDir('bm'), 'vol.bitmap');
    const log = IntentLog.open(file, geometry, { create: true });
    const onDisk = () => IntentLog.open(file, geometry, { create: false }).dirtyCount(0);
    for (const c of [3, 9]) {
      await log.markDirty([0], c, c);
      log.unpin([0], c, c);
      log.clear(0, c);
    }
    await log.flushClears({ keepRecent: true });
    expect(log.dirtyCount(0)).toBe(0); // status is exact all along
    expect(onDisk()).toBe(2); // both were marked since the last periodic flush: kept
    // Chunk 9 is written again (no commit needed: still set in the file); chunk 3 is left alone.
    expect(await settled(log.markDirty([0], 9, 9))).toBe(true);
    log.unpin([0], 9, 9);
    log.clear(0, 9);
    await log.flushClears({ keepRecent: true });
    expect(onDisk()).toBe(1); // 3 went (idle for a whole interval), 9 stays (marked again)
    await log.flushClears({ keepRecent: true });
    expect(onDisk()).toBe(0);
    // An explicit flush (end of resync, close) writes the exact state at once.
    await log.markDirty([0], 5, 5);
    log.unpin([0], 5, 5);
    log.clear(0, 5);
    await log.flushClears();
    expect(onDisk()).toBe(0);
  });

  it('a pinned bit is not cleared until the write that pinned it is sent (unpin)', async () => {
    const log = IntentLog.inMemory(geometry);
    await log.markDirty([0], 3, 4);
    await log.markDirty([0], 4, 4); // a second write to chunk 4 in flight
    log.clear(0, 3);
    log.clear(0, 4);
    expect(log.dirtyCount(0)).toBe(2);
    log.unpin([0], 3, 4);
    log.clear(0, 3);
    log.clear(0, 4);
    expect(log.dirtyCount(0)).toBe(1); // chunk 4 is still pinned by the second write
    log.unpin([0], 4, 4);
    log.clear(0, 4);
    expect(log.dirtyCount(0)).toBe(0);
  });

  it('writers that join a commit already running are released by it or the next one', async () => {
    const file = path.join(tempDir('bm'), 'vol.bitmap');
    const log = IntentLog.open(file, geometry, { create: true });
    const first = log.markDirty([0], 1, 1);
    await new Promise((r) => setImmediate(r)); // the commit for chunk 1 starts
    const joined = [log.markDirty([0], 1, 1), log.markDirty([0], 2, 2), log.markDirty([0], 1, 2)];
    await Promise.all([first, ...joined]);
    expect(IntentLog.open(file, geometry, { create: false }).dirtyCount(0)).toBe(2);
  });
});

describe('ChunkLocks', () => {
  it('resync waits for writes in progress; new writes wait for resync', async () => {
    const locks = new ChunkLocks();
    const events: string[] = [];
    await locks.beginWrite(5, 6);
    const resync = locks.lockForResync(6).then((release) => {
      events.push('resync locked');
      return release;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual([]);
    locks.endWrite(5, 6);
    const release = await resync;
    const write = locks.beginWrite(6, 6).then(() => events.push('write began'));
    await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual(['resync locked']);
    release();
    await write;
    expect(events).toEqual(['resync locked', 'write began']);
  });

  it('tryBeginWrite takes free chunks at once and takes nothing while resync holds one of them', async () => {
    const locks = new ChunkLocks();
    const release = await locks.lockForResync(7);
    expect(locks.tryBeginWrite(5, 6)).toBe(true);
    expect(locks.tryBeginWrite(6, 8)).toBe(false); // 7 is resyncing: nothing of 6..8 taken
    // The write on 5..6 is in progress: resync of 6 waits for it, and for nothing else.
    let locked6 = false;
    const resync6 = locks.lockForResync(6).then((r) => ((locked6 = true), r));
    await new Promise((r) => setTimeout(r, 10));
    expect(locked6).toBe(false);
    locks.endWrite(5, 6);
    (await resync6)();
    release();
    expect(locks.tryBeginWrite(6, 8)).toBe(true);
    // Had the refused call taken 8, resync of 8 would now wait for two writes; it waits for this one.
    locks.endWrite(6, 8);
    (await locks.lockForResync(8))();
  });
});

describe('replication frames', () => {
  it('splits a stream at any boundary and refuses bad lengths and unknown types', () => {
    const f = encodeWrite(7, 4096, [Buffer.from('ab'), Buffer.from('cd')]);
    const r = new FrameAssembler();
    const out = [...r.push(f.subarray(0, 3)), ...r.push(f.subarray(3, 10)), ...r.push(f.subarray(10))];
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ type: FrameType.WRITE, seq: 7, offset: 4096 });
    expect((out[0] as { data: Buffer }).data.toString()).toBe('abcd');
    expect(() => new FrameAssembler().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]))).toThrow(ProtocolError);
    expect(() => decodeFrame(42, Buffer.alloc(0))).toThrow(/unknown frame type 42/);
    expect(() => decodeFrame(FrameType.HELLO, Buffer.from('{"protocol":1}'))).toThrow(/HELLO lacks/);
    const req = Buffer.alloc(20);
    expect(() => decodeFrame(FrameType.HASH_REQ, req)).toThrow(/HASH_REQ for 0 chunks/);
    req.writeUInt32BE(5000, 16);
    expect(() => decodeFrame(FrameType.HASH_REQ, req)).toThrow(/1–1024 allowed/);
    const hashes = Buffer.alloc(20 + 31);
    hashes.writeUInt32BE(1, 16);
    expect(() => decodeFrame(FrameType.HASHES, hashes)).toThrow(/does not match its count/);
  });
});
