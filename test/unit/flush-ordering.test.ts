// FLUSH and FUA ordering, checked at the I/O boundary: which system calls happen, in which order, and
// when the client gets its reply.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileBlockStore, nodeFileIo, type FileIo } from '../../agent/storage/file-store.js';
import { AdaptiveFlush } from '../../agent/storage/adaptive-flush.js';
import type { BlockStore, ZeroOptions } from '../../agent/storage/block-store.js';
import { makeExport } from '../../agent/nbd/export.js';
import { NbdServer, SimpleCatalog } from '../../agent/nbd/server.js';
import { Cmd, CmdFlag } from '../../agent/nbd/protocol.js';
import { createLogger } from '../../agent/log.js';
import { RawClient } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/tools.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
const tick = (ms = 50) => new Promise((r) => setTimeout(r, ms));

describe('FileBlockStore system-call order', () => {
  function recordingIo(events: string[], syncGate?: Deferred): FileIo {
    return {
      pwritev: async (_fd, data, pos) => {
        const n = data.reduce((a, b) => a + b.length, 0);
        events.push(`pwrite ${pos}+${n}`);
        return n;
      },
      pwritevSync: (_fd, data, pos) => {
        const n = data.reduce((a, b) => a + b.length, 0);
        events.push(`pwrite ${pos}+${n}`);
        return n;
      },
      pread: async (_fd, _into, _o, _p, len) => len,
      fdatasync: async () => {
        events.push('fdatasync start');
        if (syncGate) await syncGate.promise;
        events.push('fdatasync done');
      },
      deallocate: async () => true,
    };
  }

  /** The store's clock: only the fake I/O below advances it, so a preempted test thread changes nothing. */
  let clock = 0;
  function openWith(io: FileIo, syncReadMax?: number): FileBlockStore {
    const dir = tempDir('order');
    const file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, Buffer.alloc(1 << 20));
    return FileBlockStore.open(file, { readOnly: false, io, now: () => clock, ...(syncReadMax !== undefined ? { syncReadMax } : {}) });
  }

  it('a FUA write resolves only after fdatasync has completed', async () => {
    const events: string[] = [];
    const gate = deferred();
    const store = openWith(recordingIo(events, gate));
    let resolved = false;
    const w = store.write(4096, [Buffer.alloc(512, 1)], true).then(() => {
      resolved = true;
      events.push('write resolved');
    });
    await tick();
    expect(resolved).toBe(false);
    expect(events).toEqual(['pwrite 4096+512', 'fdatasync start']);
    gate.resolve();
    await w;
    expect(events).toEqual(['pwrite 4096+512', 'fdatasync start', 'fdatasync done', 'write resolved']);
    await store.close();
  });

  it('a write without FUA does not sync, large writes go through the thread pool path too', async () => {
    const events: string[] = [];
    const store = openWith(recordingIo(events));
    await store.write(0, [Buffer.alloc(2 * 1024 * 1024)], false);
    expect(events).toEqual(['pwrite 0+2097152']);
    await store.close();
  });

  it('small writes have taken their bytes when write() returns, so the caller may reuse the buffer', async () => {
    const store = openWith(nodeFileIo);
    const data = Buffer.alloc(store.syncWriteMax, 0x5a);
    const done = store.write(8192, [data], false);
    data.fill(0xff); // what the reused receive buffer would do next
    await done;
    const back = await store.read(8192, data.length);
    expect(back.every((b) => b === 0x5a)).toBe(true);
    await store.close();
  });

  it('reads through the thread pool by default', async () => {
    const calls: string[] = [];
    const io: FileIo = { ...recordingIo([]), pread: async (_fd, _i, _o, _p, len) => (calls.push('pool'), len), preadSync: (_fd, _i, _o, _p, len) => (calls.push('sync'), len) };
    const store = openWith(io);
    await store.read(0, 4096);
    expect(calls).toEqual(['pool']);
    await store.close();
  });

  it('with syncReadMax, reads on the calling thread while they are fast; two slow ones in a row send reads to the thread pool', async () => {
    const calls: string[] = [];
    let slow = false;
    const io: FileIo = {
      ...recordingIo([]),
      pread: async (_fd, _into, _o, _p, len) => {
        calls.push('pool');
        return len;
      },
      preadSync: (_fd, _into, _o, _p, len) => {
        calls.push('sync');
        clock += slow ? 5 : 0.01; // a read that waited for the device, or a page-cache copy
        return len;
      },
    };
    const store = openWith(io, 1024 * 1024);
    await store.read(0, 4096);
    slow = true;
    await store.read(0, 4096);
    await store.read(0, 4096);
    slow = false;
    await store.read(0, 4096);
    await store.read(0, 2 * 1024 * 1024); // larger than syncReadMax: always the pool
    expect(calls).toEqual(['sync', 'sync', 'sync', 'pool', 'pool']);
    await store.close();
  });

  it('slow flushes on the calling thread send the next flushes (and FUA) to the thread pool', async () => {
    const calls: string[] = [];
    const io: FileIo = {
      ...recordingIo([]),
      fdatasync: async () => {
        calls.push('pool');
      },
      fdatasyncSync: () => {
        calls.push('sync');
        clock += 5; // a flush that waited for the device's cache
      },
    };
    const store = openWith(io);
    for (let i = 0; i < 4; i++) await store.flush();
    await store.write(0, [Buffer.alloc(512)], true);
    // Three slow ones (of the last eight) show a device with a cache to write back; one could be chance.
    expect(calls).toEqual(['sync', 'sync', 'sync', 'pool', 'pool']);
    await store.close();
  });

  /** An AdaptiveFlush on a fake clock: step(ms, cost) advances the clock, then flushes taking `cost` ms on the thread. */
  function steppedFlush() {
    let clock = 0;
    let cost = 0;
    const calls: string[] = [];
    const f = new AdaptiveFlush(() => {
      calls.push('sync');
      clock += cost;
    }, async () => {
      calls.push('pool');
    }, () => clock);
    const step = async (ms: number, flushCost = 0) => {
      clock += ms;
      cost = flushCost;
      await f.flush(3);
    };
    return { calls, step };
  }

  it('AdaptiveFlush: on the thread while fast; after 3 slow of 8 the pool for 5 s, then 10 s after slow tries again', async () => {
    const { calls, step } = steppedFlush();
    await step(0);
    await step(1);
    await step(1, 4); // slow (4 ms): one of the last 8, stays on the thread
    await step(1);
    await step(1, 4);
    await step(1, 4); // the third slow one of the last 8: the pool for 5 s
    await step(4_000); // within 5 s: pool
    await step(1_100, 4); // past 5 s: tried again, slow again, three times
    await step(1, 4);
    await step(1, 4);
    await step(9_000); // within 10 s: pool
    await step(1_100); // past 10 s: fast
    await step(1);
    expect(calls).toEqual(['sync', 'sync', 'sync', 'sync', 'sync', 'sync', 'pool', 'sync', 'sync', 'sync', 'pool', 'sync', 'sync']);
  });

  it('AdaptiveFlush: a slow flush now and then (a preempted thread) keeps flushes on the thread', async () => {
    const { calls, step } = steppedFlush();
    for (let i = 0; i < 40; i++) await step(1, i % 4 === 0 ? 5 : 0); // two slow in every eight
    expect(calls).toEqual(Array(40).fill('sync'));
  });

  it('a flush on the calling thread that fails rejects with the error', async () => {
    const io: FileIo = { ...recordingIo([]), fdatasyncSync: () => { throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }); } };
    const store = openWith(io);
    await expect(store.flush()).rejects.toThrow(/EIO/);
    await store.close();
  });

  it('writeSync writes on the calling thread, retrying short writes, and refuses more than syncWriteMax', () => {
    const written: Array<[number, number]> = [];
    const io: FileIo = {
      ...recordingIo([]),
      pwritevSync: (_fd, data, pos) => {
        const n = Math.min(1000, data.reduce((a, b) => a + b.length, 0));
        written.push([pos, n]);
        return n;
      },
    };
    const store = openWith(io);
    store.writeSync(100, Buffer.alloc(2500));
    expect(written).toEqual([[100, 1000], [1100, 1000], [2100, 500]]);
    expect(() => store.writeSync(0, Buffer.alloc(store.syncWriteMax + 1))).toThrow(/at most/);
    void store.close();
  });

  it('retries short writes until every byte is written', async () => {
    const written: Array<[number, number]> = [];
    const short = (_fd: number, data: readonly Buffer[], pos: number) => {
      const n = Math.min(1000, data.reduce((a, b) => a + b.length, 0));
      written.push([pos, n]);
      return n;
    };
    const io: FileIo = { ...recordingIo([]), pwritev: async (...a) => short(...a), pwritevSync: short };
    const store = openWith(io);
    await store.write(10, [Buffer.alloc(1500 * 1024)], false);
    expect(written.reduce((a, [, n]) => a + n, 0)).toBe(1500 * 1024);
    expect(written[1]).toEqual([1010, 1000]);
    await store.close();
  });
});

/** A store whose operations complete when the test says so. */
class GatedStore implements BlockStore {
  readonly size = 1 << 20;
  readonly readOnly = false;
  readonly description = 'gated';
  readonly canFastZero = false;
  readonly syncWriteMax = 0;
  events: string[] = [];
  writeGates = new Map<number, Deferred>();
  flushGate: Deferred | null = null;

  async read(_o: number, length: number): Promise<Buffer> {
    return Buffer.alloc(length);
  }
  async write(offset: number, _data: readonly Buffer[], fua: boolean): Promise<void> {
    this.events.push(`write ${offset}${fua ? ' fua' : ''} start`);
    const gate = this.writeGates.get(offset);
    if (gate) await gate.promise;
    this.events.push(`write ${offset}${fua ? ' fua' : ''} done`);
  }
  async flush(): Promise<void> {
    this.events.push('flush start');
    if (this.flushGate) await this.flushGate.promise;
    this.events.push('flush done');
  }
  async trim(): Promise<void> {}
  async writeZeroes(_o: number, _l: number, _opts: ZeroOptions): Promise<void> {}
  async close(): Promise<void> {}
}

describe('NBD FLUSH and FUA replies', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  async function serve(store: BlockStore): Promise<RawClient> {
    const socket = path.join(tempDir('flush'), 'nbd.sock');
    const server = new NbdServer(new SimpleCatalog([makeExport('t', store)]), createLogger('test', 'error'));
    await server.listenUnix(socket);
    const client = await RawClient.connect(socket);
    cleanups.push(async () => {
      client.destroy();
      await server.close();
    });
    await client.go();
    return client;
  }

  it('FLUSH reaches storage after every answered write and is answered only once storage confirms', async () => {
    const store = new GatedStore();
    const client = await serve(store);
    expect((await client.writeAt(0, Buffer.alloc(512), 1n)).error).toBe(0);
    store.writeGates.set(8192, deferred()); // a write still in flight when FLUSH arrives
    store.flushGate = deferred();
    client.request(Cmd.WRITE, 8192, 512, 2n, 0, Buffer.alloc(512));
    client.request(Cmd.FLUSH, 0, 0, 3n);
    await tick(100);
    expect(store.events.indexOf('flush start')).toBeGreaterThan(store.events.indexOf('write 0 done'));
    // Nothing answered yet: the flush is held by storage, the second write too.
    await tick(150);
    expect(client.available).toBe(0);
    store.flushGate.resolve();
    const r = await client.readReply();
    expect(r).toMatchObject({ cookie: 3n, error: 0 }); // out of order: FLUSH before the held write
    store.writeGates.get(8192)!.resolve();
    expect(await client.readReply()).toMatchObject({ cookie: 2n, error: 0 });
  });

  it('a FUA write is answered only after the store made it durable', async () => {
    const store = new GatedStore();
    const client = await serve(store);
    store.writeGates.set(4096, deferred());
    client.request(Cmd.WRITE, 4096, 512, 7n, CmdFlag.FUA, Buffer.alloc(512));
    await tick(100);
    expect(store.events).toEqual(['write 4096 fua start']);
    await tick(100);
    expect(client.available).toBe(0);
    store.writeGates.get(4096)!.resolve();
    expect(await client.readReply()).toMatchObject({ cookie: 7n, error: 0 });
    expect(store.events).toEqual(['write 4096 fua start', 'write 4096 fua done']);
  });
});
