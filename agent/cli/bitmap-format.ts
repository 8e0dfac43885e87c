// `bitmap`: the pure parts — reading the command line and formatting `bitmap -X`. File I/O and the
// check against a running agent are in bitmap-command.ts.
import type { BitmapFileContents, BitSet } from '../intent-log/bitmap.js';
import { UsageError } from './usage-error.js';
import { formatSize } from '../../common/mirror-status.js';

export const BITMAP_USAGE = `usage: bitmap -a <num>|-c|-d|-X <bitmap_file>
  -a [num]  set the asynchronous write limit in the bitmap file (default 256)
  -c        clean: zero every bit, so no resync happens (use with extreme caution)
  -d        dirty: set every bit, forcing a full resync of every target
  -X        examine: show the bitmap and how much of the mirror is dirty`;

export const DEFAULT_ASYNC_LIMIT = 256;
export const MAX_ASYNC_LIMIT = 65536;

export type BitmapAction =
  | { action: 'async-limit'; file: string; limit: number }
  | { action: 'clean'; file: string }
  | { action: 'dirty'; file: string }
  | { action: 'examine'; file: string };

/** Parses the manual's syntax: exactly one of -a [num], -c, -d, -X, then the file (`-X<file>` too). */
export function parseBitmapArgs(argv: string[]): BitmapAction {
  const [flag, ...rest] = argv;
  if (!flag) throw new UsageError(`no action given\n${BITMAP_USAGE}`);
  const glued = /^-X(.+)$/.exec(flag);
  if (glued && rest.length === 0) return { action: 'examine', file: glued[1] as string };
  const fileOnly = (name: string): string => {
    if (rest.length === 0) throw new UsageError(`${flag} needs the bitmap file\n${BITMAP_USAGE}`);
    if (rest.length > 1) throw new UsageError(`${flag} takes one bitmap file, got: ${rest.join(' ')}\n${BITMAP_USAGE}`);
    const file = rest[0] as string;
    if (file.startsWith('-')) throw new UsageError(`only one action at a time: ${name} and ${file}\n${BITMAP_USAGE}`);
    return file;
  };
  switch (flag) {
    case '-c':
      return { action: 'clean', file: fileOnly('-c') };
    case '-d':
      return { action: 'dirty', file: fileOnly('-d') };
    case '-X':
      return { action: 'examine', file: fileOnly('-X') };
    case '-a': {
      if (rest.length === 0) throw new UsageError(`-a needs the bitmap file\n${BITMAP_USAGE}`);
      if (rest.length > 2) throw new UsageError(`-a takes a number and one bitmap file, got: ${rest.join(' ')}\n${BITMAP_USAGE}`);
      const [num, file] = rest.length === 2 ? rest : [undefined, rest[0]];
      if (file!.startsWith('-')) throw new UsageError(`only one action at a time: -a and ${file}\n${BITMAP_USAGE}`);
      if (num === undefined) return { action: 'async-limit', file: file!, limit: DEFAULT_ASYNC_LIMIT };
      if (!/^\d+$/.test(num) || Number(num) < 1 || Number(num) > MAX_ASYNC_LIMIT) {
        throw new UsageError(`-a wants a whole number of writes from 1 to ${MAX_ASYNC_LIMIT}, not "${num}" (the default is ${DEFAULT_ASYNC_LIMIT})`);
      }
      return { action: 'async-limit', file: file!, limit: Number(num) };
    }
    default:
      throw new UsageError(`unknown option "${flag}"\n${BITMAP_USAGE}`);
  }
}


/** The runs of set bits as [first, last] pairs, at most `max` of them, and how many runs there are in all. */
export function dirtyRanges(bits: BitSet, max: number): { ranges: Array<[number, number]>; total: number } {
  const ranges: Array<[number, number]> = [];
  let total = 0;
  let i = bits.next(0);
  while (i >= 0) {
    let j = i;
    while (j + 1 < bits.size && bits.get(j + 1)) j++;
    total++;
    if (ranges.length < max) ranges.push([i, j]);
    i = j + 1 < bits.size ? bits.next(j + 1) : -1;
  }
  return { ranges, total };
}

/** The manual's percentage: one decimal, never 100.0 unless every chunk is dirty, never 0.0 unless none is. */
function percent(dirty: number, chunks: number): string {
  if (chunks === 0 || dirty === 0) return '0.0';
  if (dirty === chunks) return '100.0';
  const p = (dirty / chunks) * 100;
  return Math.min(99.9, Math.max(0.1, p)).toFixed(1);
}

/** `bitmap -X FILE`. Slots are numbered 0–6 as the agent numbers its targets. */
export function formatExamine(file: string, b: BitmapFileContents, maxRanges = 8): string {
  const lines = [
    `Bitmap file: ${file}`,
    `Version: ${b.version}`,
    `Chunk size: ${formatSize(b.chunkSize, 'bytes')}`,
    `Volume size: ${formatSize(b.volumeSize, 'bytes')} (${b.volumeSize} bytes)`,
    `Chunks: ${b.chunks}`,
    `Async limit: ${b.asyncLimit}`,
  ];
  const clean: number[] = [];
  b.slots.forEach((bits, slot) => {
    const dirty = bits.count();
    if (dirty === 0) {
      clean.push(slot);
      return;
    }
    lines.push(`Slot ${slot}: Bitmap: ${b.chunks} bits (chunks), ${dirty} dirty (${percent(dirty, b.chunks)}%)`);
    const { ranges, total } = dirtyRanges(bits, maxRanges);
    const shown = ranges.map(([f, l]) => (f === l ? `${f}` : `${f}-${l}`)).join(', ');
    lines.push(`  dirty chunks: ${shown}${total > ranges.length ? `, … (${total - ranges.length} more ranges)` : ''}`);
  });
  if (clean.length > 0) lines.push(`Clean slots: ${clean.join(', ')}`);
  return lines.join('\n') + '\n';
}
