// The manual's `bitmap -a|-c|-d|-X` run from the built bundle on bitmap files made by the agent's own
// IntentLog; every refusal leaves the file byte-for-byte as it was.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IntentLog } from '../../agent/intent-log/bitmap.js';
import { makeDisk, startAgent, tandemOk, type Agent } from '../helpers/agents.js';
import { AGENT_BUNDLE, run, sha256File, tempDir } from '../helpers/tools.js';

const dir = tempDir('bitmap');
const home = path.join(dir, 'home'); // no agent runs here unless a test starts one
const MiB = 1024 * 1024;
let agent: Agent | undefined;

afterAll(async () => {
  await agent?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const bitmap = (...args: string[]) =>
  run(process.execPath, [AGENT_BUNDLE, ...args], { env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: 'bitmap' }, timeoutMs: 20_000 });

/** A 256 MiB volume in 64 KiB chunks (4096 chunks): slot 0 has chunks 0-3 and 100 dirty, slot 2 chunks 5-4000. */
async function makeBitmap(name: string): Promise<string> {
  const file = path.join(dir, name);
  const log = IntentLog.open(file, { chunkSize: 64 * 1024, volumeSize: 256 * MiB }, { create: true });
  await log.markDirty([0], 0, 3);
  await log.markDirty([0], 100, 100);
  await log.markDirty([2], 5, 4000);
  log.close();
  return file;
}

describe('bitmap', () => {
  it('-X shows the geometry, the async limit and each dirty slot with its ranges', async () => {
    const file = await makeBitmap('x.bitmap');
    const r = await bitmap('-X', file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      `Bitmap file: ${file}`,
      'Version: 1',
      'Chunk size: 64.0 KiB',
      'Volume size: 256.0 MiB (268435456 bytes)',
      'Chunks: 4096',
      'Async limit: 256',
      'Slot 0: Bitmap: 4096 bits (chunks), 5 dirty (0.1%)',
      '  dirty chunks: 0-3, 100',
      'Slot 2: Bitmap: 4096 bits (chunks), 3996 dirty (97.6%)',
      '  dirty chunks: 5-4000',
      'Clean slots: 1, 3, 4, 5, 6',
      '',
    ].join('\n'));
    // The manual's spelling with the file glued to the option works too.
    expect((await bitmap(`-X${file}`)).stdout).toBe(r.stdout);
  });

  it('-X lists at most 8 dirty ranges and counts the rest', async () => {
    const file = path.join(dir, 'many.bitmap');
    const log = IntentLog.open(file, { chunkSize: 4096, volumeSize: 1 * MiB }, { create: true });
    for (let c = 0; c < 40; c += 2) await log.markDirty([6], c, c);
    log.close();
    const r = await bitmap('-X', file);
    expect(r.stdout).toContain('Slot 6: Bitmap: 256 bits (chunks), 20 dirty (7.8%)\n  dirty chunks: 0, 2, 4, 6, 8, 10, 12, 14, … (12 more ranges)\n');
  });

  it('-d sets every bit (a full resync) and -c zeroes them, with a warning', async () => {
    const file = await makeBitmap('dc.bitmap');
    const d = await bitmap('-d', file);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(`${file}: dirtied: every bit of 7 slots set; the next resync of every target is full (4096 chunks)\n`);
    const x = await bitmap('-X', file);
    for (let s = 0; s < 7; s++) expect(x.stdout).toContain(`Slot ${s}: Bitmap: 4096 bits (chunks), 4096 dirty (100.0%)\n  dirty chunks: 0-4095\n`);
    expect(x.stdout).not.toContain('Clean slots');

    const c = await bitmap('-c', file);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toBe('bitmap: warning: cleaning skips the resync of every chunk written while a target was away; use it only when each target holds an exact copy of the source\n');
    expect(c.stdout).toBe(`${file}: cleaned: every bit of 7 slots zeroed (28672 were set)\n`);
    expect((await bitmap('-X', file)).stdout).toContain('Async limit: 256\nClean slots: 0, 1, 2, 3, 4, 5, 6\n');
    // The agent reads the result: every slot clean.
    const log = IntentLog.open(file, { chunkSize: 64 * 1024, volumeSize: 256 * MiB }, { create: false });
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => log.dirtyCount(s))).toEqual([0, 0, 0, 0, 0, 0, 0]);
    log.close();
  });

  it('-a sets the async limit in the header, 256 when no number is given; the bits stay', async () => {
    const file = await makeBitmap('a.bitmap');
    const a = await bitmap('-a', '1000', file);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(`${file}: async limit set to 1000 (was 256)\n`);
    const x = await bitmap('-X', file);
    expect(x.stdout).toContain('Async limit: 1000\n');
    expect(x.stdout).toContain('Slot 0: Bitmap: 4096 bits (chunks), 5 dirty (0.1%)\n');
    expect((await bitmap('-a', file)).stdout).toBe(`${file}: async limit set to 256 (was 1000)\n`);
    const log = IntentLog.open(file, { chunkSize: 64 * 1024, volumeSize: 256 * MiB }, { create: false });
    expect(log.asyncLimit).toBe(256);
    log.close();
  });

  it('command-line mistakes: exit 2, the usage, the file untouched', async () => {
    const file = await makeBitmap('usage.bitmap');
    const hash = sha256File(file);
    const cases: Array<[string[], string]> = [
      [[], 'bitmap: no action given\nusage: bitmap -a <num>|-c|-d|-X <bitmap_file>'],
      [['-q', file], 'bitmap: unknown option "-q"\nusage: bitmap'],
      [['-c'], 'bitmap: -c needs the bitmap file\nusage: bitmap'],
      [['-a'], 'bitmap: -a needs the bitmap file\nusage: bitmap'],
      [['-c', '-d', file], 'bitmap: -c takes one bitmap file, got: -d'],
      [['-d', '-c'], 'bitmap: only one action at a time: -d and -c'],
      [['-a', '0', file], 'bitmap: -a wants a whole number of writes from 1 to 65536, not "0" (the default is 256)\n'],
      [['-a', '12x', file], 'bitmap: -a wants a whole number of writes from 1 to 65536, not "12x" (the default is 256)\n'],
      [['-a', '-5', file], 'bitmap: -a wants a whole number of writes from 1 to 65536, not "-5" (the default is 256)\n'],
      [['-a', '99999999', file], 'not "99999999"'],
    ];
    for (const [args, message] of cases) {
      const r = await bitmap(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stdout).toBe('');
    }
    expect(sha256File(file)).toBe(hash);
  });

  it('names a missing file, a file that is not a bitmap and a truncated one (exit 1), and changes nothing', async () => {
    const missing = path.join(dir, 'nope.bitmap');
    for (const flag of ['-X', '-c', '-d']) {
      const r = await bitmap(flag, missing);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`bitmap: bitmap file ${missing} does not exist; give the path of a mirror's bitmap file (tandem status shows it)\n`);
    }
    expect(fs.existsSync(missing)).toBe(false);

    const text = path.join(dir, 'notes.txt');
    fs.writeFileSync(text, 'not a bitmap\n'.repeat(1000));
    const textHash = sha256File(text);
    for (const args of [['-X', text], ['-d', text], ['-a', '5', text]]) {
      const r = await bitmap(...args);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`bitmap: ${text} is not a Tandem bitmap file (bad magic); give the path of a mirror's bitmap file (tandem status shows it)\n`);
    }
    expect(sha256File(text)).toBe(textHash);

    const short = await makeBitmap('short.bitmap');
    fs.truncateSync(short, 4096 + 100);
    const shortHash = sha256File(short);
    const r = await bitmap('-c', short);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`bitmap: ${short} is truncated (4196 bytes; a bitmap for this volume has 32768)`);
    expect(sha256File(short)).toBe(shortHash);

    const folder = await bitmap('-X', dir);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toBe(`bitmap: ${dir} is a folder, not a bitmap file\n`);
  });

  it('refuses to change the bitmap of a mirror the running agent has open; -X still reads it', async () => {
    agent = await startAgent(home, 'adam');
    const disk = makeDisk(path.join(dir, 'adam.img'), 16 * MiB);
    const file = path.join(dir, 'live.bitmap');
    await tandemOk(agent, 'create', 'datarep-live', '--disk', disk, '--bitmap', file);
    const hash = sha256File(file);
    for (const args of [['-c', file], ['-d', file], ['-a', '64', file]]) {
      const r = await bitmap(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toBe(
        `bitmap: mirror datarep-live on this node is using ${file}; take it out of service first (stop the agent, or delete the mirror): ` +
        'a running agent keeps the bits in memory and would overwrite the change. To resync a running mirror in full instead, use: mirror_action datarep-live fullresync adam\n',
      );
    }
    // The same file through another path (a symlink) is recognised.
    const link = path.join(dir, 'link.bitmap');
    fs.symlinkSync(file, link);
    expect((await bitmap('-d', link)).code).toBe(1);
    expect(sha256File(file)).toBe(hash);
    const x = await bitmap('-X', file);
    expect(x.code).toBe(0);
    expect(x.stdout).toContain('Chunks: 256\n');

    // Another bitmap on the same node is not the running mirror's: it may be changed.
    const other = await makeBitmap('other.bitmap');
    expect((await bitmap('-d', other)).code).toBe(0);
  });
});
