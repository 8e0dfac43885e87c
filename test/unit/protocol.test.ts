import { describe, expect, it } from 'vitest';
import { ByteQueue } from '../../agent/nbd/byte-queue.js';
import {
  decodeInfoRequest, decodeRequestHeader, encodeExportNameReply, encodeGreeting, encodeInfoBlockSize,
  encodeOptionReply, encodeRequestHeader, encodeSimpleReply, Rep, REQUEST_MAGIC,
} from '../../agent/nbd/protocol.js';
import { dropPrefix } from '../../agent/storage/file-store.js';

describe('NBD encoding', () => {
  it('greets with NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE|NO_ZEROES', () => {
    expect(encodeGreeting().toString('hex')).toBe('4e42444d41474943' + '49484156454f5054' + '0003');
  });

  it('encodes an option reply with its magic and length', () => {
    const b = encodeOptionReply(7, Rep.ERR_UNSUP, Buffer.from('no'));
    expect(b.readBigUInt64BE(0)).toBe(0x3e889045565a9n);
    expect(b.readUInt32BE(8)).toBe(7);
    expect(b.readUInt32BE(12)).toBe(0x80000001);
    expect(b.readUInt32BE(16)).toBe(2);
    expect(b.subarray(20).toString()).toBe('no');
  });

  it('pads the EXPORT_NAME reply with 124 zeroes unless NO_ZEROES was agreed', () => {
    expect(encodeExportNameReply(1024, 3, false).length).toBe(134);
    expect(encodeExportNameReply(1024, 3, true).length).toBe(10);
  });

  it('advertises block sizes as given', () => {
    const b = encodeInfoBlockSize(1, 4096, 32 * 1024 * 1024);
    expect([b.readUInt16BE(0), b.readUInt32BE(2), b.readUInt32BE(6), b.readUInt32BE(10)]).toEqual([3, 1, 4096, 33554432]);
  });

  it('round-trips a request header and echoes cookies verbatim', () => {
    const cookie = Buffer.from('0102030405060708', 'hex');
    const h = decodeRequestHeader(encodeRequestHeader({ type: 1, flags: 1, offset: 2 ** 40 + 3, length: 65536, cookie }))!;
    expect(h).toMatchObject({ type: 1, flags: 1, offset: 2 ** 40 + 3, length: 65536 });
    expect(encodeSimpleReply(0, h.cookie).subarray(8).equals(cookie)).toBe(true);
  });

  it('rejects a request with the wrong magic', () => {
    const b = encodeRequestHeader({ type: 0, flags: 0, offset: 0, length: 1, cookie: 1n });
    b.writeUInt32BE(REQUEST_MAGIC ^ 1, 0);
    expect(decodeRequestHeader(b)).toBeNull();
  });

  it('keeps offsets beyond 2^53 large enough to fail any range check', () => {
    const h = decodeRequestHeader(encodeRequestHeader({ type: 0, flags: 0, offset: 0, length: 1, cookie: 1n }))!;
    const b = encodeRequestHeader({ type: 0, flags: 0, offset: 0, length: 1, cookie: 1n });
    b.writeBigUInt64BE(0xffffffffffffffffn, 16);
    expect(decodeRequestHeader(b)!.offset).toBeGreaterThan(2 ** 63);
    expect(h.offset).toBe(0);
  });

  it('parses INFO/GO payloads and refuses ones whose lengths do not add up', () => {
    const name = Buffer.from('disk');
    const ok = Buffer.alloc(4 + 4 + 2 + 4);
    ok.writeUInt32BE(4, 0);
    name.copy(ok, 4);
    ok.writeUInt16BE(2, 8);
    ok.writeUInt16BE(3, 10);
    ok.writeUInt16BE(1, 12);
    expect(decodeInfoRequest(ok)).toEqual({ name: 'disk', requests: [3, 1] });
    expect(decodeInfoRequest(ok.subarray(0, 12))).toBeNull(); // one info request short
    const lying = Buffer.from(ok);
    lying.writeUInt32BE(1000, 0); // name longer than the payload
    expect(decodeInfoRequest(lying)).toBeNull();
    expect(decodeInfoRequest(Buffer.alloc(3))).toBeNull();
  });
});

describe('ByteQueue', () => {
  it('takes exact lengths across chunk boundaries', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('abc'));
    q.push(Buffer.from('defg'));
    q.push(Buffer.from('h'));
    expect(q.take(2).toString()).toBe('ab');
    expect(q.take(4).toString()).toBe('cdef');
    expect(q.length).toBe(2);
    expect(q.drain().toString()).toBe('gh');
    expect(q.length).toBe(0);
  });

  it('refuses to take more than it holds', () => {
    const q = new ByteQueue();
    q.push(Buffer.from('ab'));
    expect(() => q.take(3)).toThrow(RangeError);
  });
});

describe('dropPrefix (after a short write)', () => {
  it('drops whole and partial buffers', () => {
    const parts = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
    expect(dropPrefix(parts, 4).map(String)).toEqual(['e', 'fgh']);
    expect(dropPrefix(parts, 5).map(String)).toEqual(['fgh']);
    expect(dropPrefix(parts, 0).map(String)).toEqual(['abc', 'de', 'fgh']);
  });
});

describe('BufferPool', () => {
  it('reuses released buffers of the same size class and ignores foreign ones', async () => {
    const { BufferPool } = await import('../../agent/storage/buffer-pool.js');
    const pool = new BufferPool(1 << 20);
    const a = pool.acquire(5000);
    expect(a.length).toBe(5000);
    pool.release(a);
    expect(pool.idleBytes).toBe(8192);
    const b = pool.acquire(8000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.idleBytes).toBe(0);
    pool.release(Buffer.alloc(8192)); // not from the pool
    expect(pool.idleBytes).toBe(0);
  });

  it('keeps no more than its limit idle', async () => {
    const { BufferPool } = await import('../../agent/storage/buffer-pool.js');
    const pool = new BufferPool(16384);
    const bufs = [pool.acquire(8192), pool.acquire(8192), pool.acquire(8192)];
    bufs.forEach((b) => pool.release(b));
    expect(pool.idleBytes).toBe(16384);
  });

  it('when full, makes room for what is released now by dropping idle buffers of other sizes', async () => {
    const { BufferPool } = await import('../../agent/storage/buffer-pool.js');
    const pool = new BufferPool(4 << 20);
    const large = [pool.acquire(1 << 20), pool.acquire(1 << 20), pool.acquire(1 << 20), pool.acquire(1 << 20)];
    large.forEach((b) => pool.release(b));
    expect(pool.idleBytes).toBe(4 << 20);
    const small = pool.acquire(65536);
    pool.release(small);
    expect(pool.idleBytes).toBe(3 * (1 << 20) + 65536);
    expect(pool.acquire(65536).buffer).toBe(small.buffer); // reused, not allocated again
  });

  it('gives a frame of a power of two plus a small header a buffer 4 KiB larger, not twice as large', async () => {
    const { BufferPool } = await import('../../agent/storage/buffer-pool.js');
    expect(BufferPool.sizeClass((1 << 20) + 17)).toBe((1 << 20) + 4096);
    expect(BufferPool.sizeClass(65536 + 17)).toBe(65536 + 4096);
    expect(BufferPool.sizeClass(65536)).toBe(65536);
    expect(BufferPool.sizeClass(65536 + 4097)).toBe(131072);
    expect(BufferPool.sizeClass(5000)).toBe(8192);
  });
});
