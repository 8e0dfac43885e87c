// The source's write path against an in-process target over loopback, with a source disk that fails:
// what the target may already hold must stay dirty until a resync.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IntentLog } from '../../agent/intent-log/bitmap.js';
import type { MirrorPolicy } from '../../agent/mirror/mirror-core.js';
import { freshGenerations } from '../../agent/mirror/generations.js';
import { SourceMirror } from '../../agent/mirror/source-mirror.js';
import { ReplicationListener } from '../../agent/replication/target-server.js';
import { FileBlockStore } from '../../agent/storage/file-store.js';
import type { BlockStore, ZeroOptions } from '../../agent/storage/block-store.js';
import { createLogger } from '../../agent/log.js';
import { tempDir } from '../helpers/tools.js';

const SIZE = 4 * 1024 * 1024;
const CHUNK = 65536;

/** A source disk whose writes at `badOffset` fail with EIO (a failing sector). */
class FailingDisk implements BlockStore {
  constructor(private readonly inner: BlockStore, private readonly badOffset: number) {}
  get size() { return this.inner.size; }
  readonly readOnly = false;
  readonly description = 'failing disk';
  readonly canFastZero = false;
  readonly syncWriteMax = 0;
  read(o: number, l: number) { return this.inner.read(o, l); }
  write(o: number, d: readonly Buffer[], fua: boolean) {
    if (o === this.badOffset) return Promise.reject(Object.assign(new Error('I/O error'), { code: 'EIO' }));
    return this.inner.write(o, d, fua);
  }
  flush() { return this.inner.flush(); }
  trim(o: number, l: number, f: boolean) { return this.inner.trim(o, l, f); }
  writeZeroes(o: number, l: number, opts: ZeroOptions) { return this.inner.writeZeroes(o, l, opts); }
  close() { return this.inner.close(); }
}

const until = async (check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** The failover rules are the daemon's; this test is about the write path, so every target is welcome. */
const acceptEverything: MirrorPolicy = {
  hello: () => ({ generations: freshGenerations(true), members: [], sourceAddress: ':1' }),
  admit: () => Promise.resolve('go'),
  peerIsSource: () => null,
  inSync: () => '',
  switchover: () => Promise.resolve({ ok: false, message: 'not in this test' }),
};

describe('SourceMirror write path', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it('a write the source disk refused keeps its chunk dirty, even after later writes there are acknowledged', async () => {
    const dir = tempDir('srcmirror');
    const log = createLogger('test', 'error');
    const tgtFile = path.join(dir, 'tgt.img');
    fs.writeFileSync(tgtFile, Buffer.alloc(SIZE));
    const srcFile = path.join(dir, 'src.img');
    fs.writeFileSync(srcFile, Buffer.alloc(SIZE));
    const targetStore = FileBlockStore.open(tgtFile, { readOnly: false });
    const listener = new ReplicationListener({ admit: () => ({ store: targetStore, welcome: { generations: freshGenerations(false), consistent: true, dirty: '' } }) }, 't', log);
    const port = await listener.listen('127.0.0.1', 0);
    const bad = 3 * CHUNK;
    const intent = IntentLog.inMemory({ chunkSize: CHUNK, volumeSize: SIZE });
    const mirror = new SourceMirror({
      tag: 'm', node: 's', local: new FailingDisk(FileBlockStore.open(srcFile, { readOnly: false }), bad), log: intent, chunkSize: CHUNK, asyncLimit: 256,
      policy: acceptEverything,
    }, log);
    cleanup.push(async () => {
      await mirror.close();
      await listener.close();
      await targetStore.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    await intent.clearAll(0); // both disks start identical (all zeroes)
    const link = mirror.addTarget({ node: 't', address: `127.0.0.1:${port}`, mode: 'sync', slot: 0, paused: false });
    await until(() => link.status().state === 'mirroring');

    await mirror.write(0, [Buffer.alloc(4096, 1)], false);
    await until(() => link.status().dirtyChunks === 0);

    await expect(mirror.write(bad, [Buffer.alloc(4096, 2)], false)).rejects.toThrow('I/O error');
    await mirror.write(bad + 8192, [Buffer.alloc(4096, 3)], false); // a later good write to the same chunk
    await mirror.flush();
    // The target did apply the write the source refused: the chunks differ, and the bit says so.
    expect(fs.readFileSync(tgtFile).subarray(bad, bad + 4096).every((b) => b === 2)).toBe(true);
    expect(fs.readFileSync(srcFile).subarray(bad, bad + 4096).every((b) => b === 0)).toBe(true);
    expect(link.status().dirtyChunks).toBe(1);
    expect(intent.slots[0]!.get(bad / CHUNK)).toBe(true);

    // A resync (here: reconnecting) sends the source's version and only then clears it.
    link.restartResync();
    await until(() => link.status().state === 'mirroring' && link.status().dirtyChunks === 0);
    expect(fs.readFileSync(tgtFile).equals(fs.readFileSync(srcFile))).toBe(true);
  });
});
