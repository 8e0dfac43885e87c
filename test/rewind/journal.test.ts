// The rewind log on real files: a view at any time equals the data as it was then; a torn tail (an
// append cut short by kill -9) is cut off on reopening and everything before it is kept; logmax and a
// full disk drop the oldest entries; bookmarks survive a reopen.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RewindJournal } from '../../agent/rewind/journal.js';
import { RewoundView } from '../../agent/rewind/rewound-view.js';
import { journalOldData } from '../../agent/rewind/journal-writes.js';
import { FileBlockStore } from '../../agent/storage/file-store.js';
import { segmentName } from '../../agent/rewind/journal-format.js';
import { runOk, sha256, tempDir } from '../helpers/tools.js';

const SIZE = 1024 * 1024;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(name: string) {
  const dir = tempDir(`rewind-${name}`);
  dirs.push(dir);
  const disk = path.join(dir, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(SIZE, 0x01));
  return { dir, disk, store: FileBlockStore.open(disk, { readOnly: false }) };
}

/** What the target does per write: journal the data it replaces, then write. */
async function journalledWrite(journal: RewindJournal, store: FileBlockStore, offset: number, data: Buffer): Promise<number> {
  await journalOldData(journal, store, [{ offset, length: data.length }]);
  await store.write(offset, [data], false);
  return journal.endTime;
}

describe('rewind log', () => {
  it('a view at any time shows the data as it was then (unaligned writes, overlaps, a bookmark), the target unchanged', async () => {
    const { dir, store } = setup('views');
    const journal = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 0 });
    const snapshots: Array<{ time: number; hash: string }> = [{ time: journal.startTime, hash: sha256(await store.read(0, SIZE)) }];
    const writes: Array<[number, number, number]> = [[0, 4096, 0x11], [1000, 10_000, 0x22], [8192, 512, 0x33], [SIZE - 100, 100, 0x44], [4000, 200_000, 0x55], [0, 4096, 0x66]];
    for (const [i, [offset, length, fill]] of writes.entries()) {
      const time = await journalledWrite(journal, store, offset, Buffer.alloc(length, fill));
      if (i === 2) await journal.append([{ bookmark: 'after three' }]);
      snapshots.push({ time, hash: sha256(await store.read(0, SIZE)) });
    }
    const now = sha256(await store.read(0, SIZE));
    for (const s of snapshots) {
      const view = new RewoundView(store, journal, journal.overlayAt(s.time), s.time, SIZE);
      expect(sha256(await view.read(0, SIZE)), `view at ${s.time}`).toBe(s.hash);
      await view.close();
    }
    expect(sha256(await store.read(0, SIZE))).toBe(now);
    expect(journal.bookmarks().map((b) => b.name)).toEqual(['after three']);
    const b = journal.findBookmark('after three')!;
    const atMark = new RewoundView(store, journal, journal.overlayAt(b.time), b.time, SIZE);
    expect(sha256(await atMark.read(0, SIZE))).toBe(snapshots[3]!.hash);
    expect(() => journal.overlayAt(journal.startTime - 1)).toThrow('the rewind log begins at');
    await journal.close();
    // Reopened: the same entries, the same bookmark, the same views.
    const again = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 0 });
    expect(again.entries).toBe(journal.entries);
    expect(again.bookmarks()).toEqual(journal.bookmarks());
    const v = new RewoundView(store, again, again.overlayAt(snapshots[2]!.time), snapshots[2]!.time, SIZE);
    expect(sha256(await v.read(0, SIZE))).toBe(snapshots[2]!.hash);
    await again.close();
    await store.close();
  });

  it('a run of writes that follow each other is read once, still one entry per write: a view between them is exact', async () => {
    const { dir, store } = setup('run');
    const journal = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 0 });
    let reads = 0;
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        const f = (v as (...a: unknown[]) => unknown).bind(target);
        return prop === 'read' || prop === 'readSync' ? (...a: unknown[]) => (reads++, f(...a)) : f;
      },
    });
    await store.write(0, [Buffer.alloc(SIZE / 2, 0x31)], false);
    const before = sha256(await store.read(0, SIZE));
    // Three contiguous writes, one elsewhere, a bookmark, two contiguous again.
    const ops = [[8192, 4096], [12288, 8192], [20480, 4096], [200_000, 100], { bookmark: 'mid' }, [400_000 - (400_000 % 4096), 4096], [400_000 - (400_000 % 4096) + 4096, 4096]] as const;
    const journalOps = ops.map((o) => ('bookmark' in o ? o : { offset: o[0], length: o[1] }));
    const reads0 = reads;
    await journalOldData(journal, counting, journalOps);
    const readsMade = reads - reads0;
    let fill = 0x40;
    let atBookmark = '';
    for (const o of journalOps) {
      if ('bookmark' in o) atBookmark = sha256(await store.read(0, SIZE));
      else await store.write(o.offset, [Buffer.alloc(o.length, fill++)], false);
    }
    expect(readsMade).toBe(3);
    expect(journal.entries).toBe(7); // six writes and the bookmark: as fine-grained as before
    // The view at the start is the disk before the run; at the bookmark, the four writes before it done.
    const whole = new RewoundView(store, journal, journal.overlayAt(journal.startTime), journal.startTime, SIZE);
    expect(sha256(await whole.read(0, SIZE))).toBe(before);
    const mark = journal.bookmarks().find((b) => b.name === 'mid')!;
    const atMark = new RewoundView(store, journal, journal.overlayAt(mark.time), mark.time, SIZE);
    expect(sha256(await atMark.read(0, SIZE))).toBe(atBookmark);
    expect(atBookmark).not.toBe(before);
    await journal.close();
    await store.close();
  });

  it('a torn tail (an append cut short) is cut off on reopening; every entry before it is kept', async () => {
    const { dir, store } = setup('torn');
    const logDir = path.join(dir, 'log');
    const journal = RewindJournal.open(logDir, { maxBytes: 0 });
    for (let i = 0; i < 9; i++) await journalledWrite(journal, store, i * 8192, Buffer.alloc(4096, i + 1));
    // The tenth: journalled, then the process dies before the target is written (the journal always
    // goes first, so a torn record never belongs to a write that reached the target).
    await journalOldData(journal, store, [{ offset: 9 * 8192, length: 4096 }]);
    const fifth = journal.index.timeOf(journal.index.firstId + 4);
    const hashAtFifth = sha256(await new RewoundView(store, journal, journal.overlayAt(fifth), fifth, SIZE).read(0, SIZE));
    await journal.close();
    // kill -9 in the middle of an append: half a record's header and data at the end of the log.
    const logFile = path.join(logDir, segmentName(1, 'log'));
    const size = fs.statSync(logFile).size;
    const recordBytes = (size - 64) / 10;
    fs.truncateSync(logFile, size - Math.floor(recordBytes / 2));
    const reopened = RewindJournal.open(logDir, { maxBytes: 0 });
    expect(reopened.entries).toBe(9);
    expect(reopened.recoveredTornBytes).toBe(recordBytes - Math.floor(recordBytes / 2));
    expect(fs.statSync(logFile).size).toBe(64 + 9 * recordBytes);
    const v = new RewoundView(store, reopened, reopened.overlayAt(fifth), fifth, SIZE);
    expect(sha256(await v.read(0, SIZE))).toBe(hashAtFifth);
    // Garbage (not a record) at the end is cut off the same way, and appends go on after it.
    fs.appendFileSync(logFile, Buffer.alloc(100, 0xab));
    await reopened.close();
    const third = RewindJournal.open(logDir, { maxBytes: 0 });
    expect(third.entries).toBe(9);
    await journalledWrite(third, store, 0, Buffer.alloc(4096, 0x77));
    expect(third.entries).toBe(10);
    await third.close();
    expect(RewindJournal.open(logDir, { maxBytes: 0 }).entries).toBe(10);
    await store.close();
  });

  it('logmax drops the oldest segments; views before the new start are refused', async () => {
    const { dir, store } = setup('logmax');
    const journal = RewindJournal.open(path.join(dir, 'log'), { maxBytes: 64 * 1024, segmentBytes: 16 * 1024 });
    const start = journal.startTime;
    // The disk after each write, with the time of that write's entry.
    const after: Array<{ time: number; hash: string }> = [{ time: start, hash: sha256(await store.read(0, SIZE)) }];
    for (let i = 0; i < 40; i++) {
      const time = await journalledWrite(journal, store, (i % 200) * 4096, Buffer.alloc(4096, 0x10 + i));
      after.push({ time, hash: sha256(await store.read(0, SIZE)) });
    }
    expect(journal.totalBytes).toBeLessThanOrEqual(64 * 1024);
    expect(journal.droppedSegments).toBeGreaterThan(0);
    expect(journal.startTime).toBeGreaterThan(start);
    expect(() => journal.overlayAt(start)).toThrow(/begins at .* is before it/);
    // The oldest time still offered, and one a few writes later, give the disk as it was then: as after
    // the last write made at or before that time.
    const asOf = (t: number) => [...after].reverse().find((a) => a.time <= t)!.hash;
    const t = journal.startTime;
    const later = after[after.findIndex((a) => a.time > t) + 3]!.time;
    for (const at of [t, later]) {
      const v = new RewoundView(store, journal, journal.overlayAt(at), at, SIZE);
      expect(sha256(await v.read(0, SIZE))).toBe(asOf(at));
    }
    expect(asOf(t)).not.toBe(after[after.length - 1]!.hash); // a view that ignored the log would fail
    await journal.close();
    await store.close();
  });

  it.skipIf(process.getuid?.() !== 0)('a full disk drops the oldest entries instead of failing (needs root: a small tmpfs)', async () => {
    const { dir, store } = setup('full');
    const mnt = path.join(dir, 'small');
    fs.mkdirSync(mnt);
    await runOk('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt]);
    try {
      const journal = RewindJournal.open(path.join(mnt, 'log'), { maxBytes: 0, segmentBytes: 64 * 1024 });
      for (let i = 0; i < 200; i++) await journalledWrite(journal, store, (i % 200) * 4096, Buffer.alloc(4096, i));
      expect(journal.entries).toBeGreaterThan(10);
      expect(journal.entries).toBeLessThan(200);
      expect(journal.droppedSegments).toBeGreaterThan(0);
      await journal.close();
    } finally {
      await runOk('umount', [mnt]);
    }
    await store.close();
  });
});

describe('the BOOKMARK frame', () => {
  it('round-trips a name in UTF-8 and refuses names over 200 bytes', async () => {
    const { encodeBookmark, FrameAssembler, FrameType, ProtocolError } = await import('../../agent/replication/wire.js');
    const frames = new FrameAssembler().push(encodeBookmark(42, 'vor dem Upgrade ✓'));
    expect(frames).toEqual([{ type: FrameType.BOOKMARK, seq: 42, name: 'vor dem Upgrade ✓' }]);
    expect(() => new FrameAssembler().push(encodeBookmark(1, 'x'.repeat(201)))).toThrow(ProtocolError);
  });
});

describe('where the rewind log may live', () => {
  it('not on a mirror\'s disk, its NetRAID device or under its file system; elsewhere is fine', async () => {
    const { mirroredDiskUnder } = await import('../../agent/rewind/log-location.js');
    const dir = tempDir('rewind-location');
    dirs.push(dir);
    const mount = (mountPoint: string, source: string) => ({ mountPoint, source, fstype: 'ext4', options: 'rw', majorMinor: '7:7', root: '/' });
    const mounts = [mount('/', '/dev/vda'), mount(dir, '/dev/loop7')];
    const mirrors = [{ tag: 'datarep', disk: '/dev/loop7', device: '/dev/loop9', fileSystem: { tag: 'ext4-data', mountPoint: '/srv/data' } }];
    expect(mirroredDiskUnder(path.join(dir, 'log'), mirrors, mounts)).toBe(`is on mirror "datarep" (on /dev/loop7, the mirror's disk, mounted at ${dir})`);
    expect(mirroredDiskUnder(path.join(dir, 'log'), [{ ...mirrors[0]!, disk: '/dev/sdz', device: '/dev/loop7' }], mounts)).toBe(`is on mirror "datarep" (on its NetRAID device /dev/loop7, mounted at ${dir})`);
    expect(mirroredDiskUnder('/srv/data/rewind', mirrors, mounts)).toBe('is on mirror "datarep" (inside /srv/data, where its file system ext4-data is mounted)');
    expect(mirroredDiskUnder('/var/lib/tandem-rewind', mirrors, mounts)).toBeNull();
  });
});
