// The manual's `bitmap -a <num>|-c|-d|-X <bitmap_file>` on Tandem's bitmap files.
//
// Changing a bitmap that a running agent has open would be lost or, worse, half-applied: the agent
// keeps the bits in memory and writes its pages back. So -a, -c and -d first ask the local agent
// (if one is running) whether a mirror uses the file, and refuse if one does. -X only reads.
import fs from 'node:fs';
import path from 'node:path';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { callAgent } from '../control/json-rpc.js';
import { agentPaths } from '../daemon/home.js';
import { BitmapFileError, IntentLog, MAX_TARGETS, readBitmapFile, writeAsyncLimit, type BitmapFileContents } from '../intent-log/bitmap.js';
import { formatExamine, parseBitmapArgs } from './bitmap-format.js';

/** A problem with the file or the node (exit 1), as opposed to the command line (UsageError, exit 2). */
class BitmapCommandError extends Error {}

function canonical(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

/** Refuses if the agent on this node (if any) has a mirror whose bitmap is `file`. */
export async function assertNotInUse(file: string, controlSocket = agentPaths().controlSocket): Promise<void> {
  let mirrors: MirrorStatus[];
  try {
    mirrors = (await callAgent(controlSocket, 'mirror.status', {}, 10_000)) as MirrorStatus[];
  } catch (err) {
    const message = (err as Error).message;
    if (/no agent is running/.test(message)) return; // nothing holds the file open
    throw new BitmapCommandError(`cannot tell whether the agent on this node is using ${file} (${message}); stop the agent first or try again`);
  }
  const want = canonical(file);
  const user = mirrors.find((m) => m.bitmap.file && canonical(m.bitmap.file) === want);
  if (user) {
    throw new BitmapCommandError(
      `mirror ${user.tag} on this node is using ${file}; take it out of service first (stop the agent, or delete the mirror): ` +
      'a running agent keeps the bits in memory and would overwrite the change. ' +
      `To resync a running mirror in full instead, use: mirror_action ${user.tag} fullresync ${user.node}`,
    );
  }
}

function load(file: string): BitmapFileContents {
  try {
    return readBitmapFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new BitmapCommandError(`bitmap file ${file} does not exist; give the path of a mirror's bitmap file (tandem status shows it)`);
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new BitmapCommandError(`permission denied reading ${file}; bitmap files are root's: use sudo`);
    if (e.code === 'EISDIR') throw new BitmapCommandError(`${file} is a folder, not a bitmap file`);
    if (err instanceof BitmapFileError) throw new BitmapCommandError(`${e.message}; give the path of a mirror's bitmap file (tandem status shows it)`);
    throw err;
  }
}

async function setAllSlots(file: string, b: BitmapFileContents, bit: 0 | 1): Promise<void> {
  const log = IntentLog.open(file, { chunkSize: b.chunkSize, volumeSize: b.volumeSize }, { create: false });
  try {
    for (let s = 0; s < MAX_TARGETS; s++) await (bit ? log.setAll(s) : log.clearAll(s));
  } finally {
    log.close();
  }
}

export async function runBitmap(argv: string[]): Promise<number> {
  const action = parseBitmapArgs(argv);
  const { file } = action;
  try {
    const before = load(file);
    if (action.action === 'examine') {
      process.stdout.write(formatExamine(file, before));
      return 0;
    }
    await assertNotInUse(file);
    switch (action.action) {
      case 'async-limit':
        writeAsyncLimit(file, action.limit);
        process.stdout.write(`${file}: async limit set to ${action.limit} (was ${before.asyncLimit})\n`);
        return 0;
      case 'clean': {
        const dirty = before.slots.reduce((n, s) => n + s.count(), 0);
        process.stderr.write('bitmap: warning: cleaning skips the resync of every chunk written while a target was away; use it only when each target holds an exact copy of the source\n');
        await setAllSlots(file, before, 0);
        process.stdout.write(`${file}: cleaned: every bit of ${MAX_TARGETS} slots zeroed (${dirty} were set)\n`);
        return 0;
      }
      case 'dirty':
        await setAllSlots(file, before, 1);
        process.stdout.write(`${file}: dirtied: every bit of ${MAX_TARGETS} slots set; the next resync of every target is full (${before.chunks} chunks)\n`);
        return 0;
    }
  } catch (err) {
    if (!(err instanceof BitmapCommandError)) throw err;
    process.stderr.write(`bitmap: ${err.message}\n`);
    return 1;
  }
}
