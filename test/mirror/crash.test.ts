// kill -9 of the source agent under load: a synchronous target holds every write the client saw
// acknowledged; an asynchronous target holds a prefix of the write sequence, without holes.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cmd } from '../../agent/nbd/protocol.js';
import { inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { RawClient } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/tools.js';

const SIZE = 96 * 1024 * 1024;
const BLOCK = 4096;

function stamp(i: number): Buffer {
  const b = Buffer.alloc(BLOCK);
  for (let at = 0; at < BLOCK; at += 4) b.writeUInt32LE(i + 1, at); // +1: a zero block means "never written"
  return b;
}

/** Which block numbers the disk holds correctly stamped; throws on a torn or foreign block. */
function stampedBlocks(disk: string, count: number): boolean[] {
  const data = fs.readFileSync(disk);
  const out: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const b = data.subarray(i * BLOCK, (i + 1) * BLOCK);
    if (b.equals(stamp(i))) out.push(true);
    else if (b.every((x) => x === 0)) out.push(false);
    else throw new Error(`block ${i} holds neither its stamp nor zeroes`);
  }
  return out;
}

async function pair(mode: 'sync' | 'async'): Promise<{ dir: string; src: Agent; tgt: Agent; srcDisk: string; tgtDisk: string }> {
  const dir = tempDir(`crash-${mode}`);
  const srcDisk = makeDisk(path.join(dir, 'src.img'), SIZE);
  const tgtDisk = makeDisk(path.join(dir, 'tgt.img'), SIZE);
  const src = await startAgent(path.join(dir, 'src'), 'adam');
  const tgt = await startAgent(path.join(dir, 'tgt'), 'eve');
  // A queue limit far above what kernel socket buffers hold, so that writes acknowledged early
  // really would be lost if the mode did not keep its promise.
  await tandemOk(src, 'create', 'vol', '--disk', srcDisk, '--async-limit', '20000');
  await tandemOk(tgt, 'accept', 'vol', '--disk', tgtDisk);
  await tandemOk(src, 'extend', 'vol', '--target', 'eve', '--address', tgt.address, '--mode', mode, '--no-initial-sync');
  await waitTargets(src, 'vol', inSync);
  return { dir, src, tgt, srcDisk, tgtDisk };
}

/**
 * Writes stamped blocks 0, 1, 2, … with `depth` requests in flight. After `freezeAfter` were
 * acknowledged the target agent is frozen (SIGSTOP: it stops reading, as over a dead link); writing goes
 * on for a while, then the source agent is killed (-9) and the target thawed to apply whatever reached
 * it. Returns the blocks the client saw acknowledged.
 */
/** No reply for this long after the target froze: the writer is stalled (a synchronous mirror at once, an asynchronous one when its queue is full). Generous: a busy machine is slow, not stalled. */
const STALL_MS = 3_000;

/**
 * Writes block after block (stamped with its number) at `depth` in flight; after `freezeAfter`
 * acknowledgements freezes the target (SIGSTOP) and goes on until the writer stalls or `max` blocks are
 * written; then kills the source with -9 and lets the target go on. Returns the acknowledged blocks once
 * the target has applied whatever reached it (its disk stops changing).
 */
async function writeFreezeKill(src: Agent, tgt: Agent, tgtDisk: string, depth: number, freezeAfter: number, max: number): Promise<Set<number>> {
  const client = await RawClient.connect(path.join(src.home, 'run', 'vol.nbd.sock'));
  await client.go();
  const acked = new Set<number>();
  let next = 0;
  let frozen = false;
  const send = () => {
    if (next >= max) return;
    client.request(Cmd.WRITE, next * BLOCK, BLOCK, BigInt(next), 0, stamp(next));
    next++;
  };
  for (let i = 0; i < depth; i++) send();
  while (acked.size < next) {
    let r;
    try {
      r = await client.readReply(new Map(), frozen ? STALL_MS : 30_000);
    } catch {
      break; // no reply within the window: the writer is stalled (as a synchronous mirror must be)
    }
    if (r.error !== 0) throw new Error(`write ${r.cookie} failed with ${r.error}`);
    acked.add(Number(r.cookie));
    if (!frozen && acked.size >= freezeAfter) {
      tgt.child.kill('SIGSTOP');
      frozen = true;
    }
    send();
  }
  await src.kill9();
  client.destroy();
  tgt.child.kill('SIGCONT');
  // Let the target apply what reached it: wait until its disk stops changing (bounded).
  const deadline = Date.now() + 60_000;
  let last = -1;
  let steady = 0;
  while (steady < 3) {
    if (Date.now() > deadline) throw new Error('the target never stopped changing after the source was killed');
    await new Promise((r) => setTimeout(r, 300));
    const held = stampedBlocks(tgtDisk, max).filter(Boolean).length;
    steady = held === last ? steady + 1 : 0;
    last = held;
  }
  return acked;
}

describe('kill -9 of the source agent under load', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it('synchronous: every acknowledged write is on the target', async () => {
    const { dir, src, tgt, tgtDisk } = await pair('sync');
    cleanup.push(async () => {
      await tgt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const acked = await writeFreezeKill(src, tgt, tgtDisk, 8, 400, 20000);
    expect(acked.size).toBeGreaterThanOrEqual(400);
    const onTarget = stampedBlocks(tgtDisk, 20000);
    const missing = [...acked].filter((i) => !onTarget[i]);
    expect(missing).toEqual([]);
  });

  it('asynchronous: the target holds a prefix of the write sequence', async () => {
    const { dir, src, tgt, tgtDisk } = await pair('async');
    cleanup.push(async () => {
      await tgt.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const acked = await writeFreezeKill(src, tgt, tgtDisk, 1, 1500, 20000);
    expect(acked.size).toBeGreaterThan(1500); // writers went on while the target was frozen
    const onTarget = stampedBlocks(tgtDisk, 20000);
    const held = onTarget.filter(Boolean).length;
    // A prefix: blocks 0..held-1 present, nothing after.
    expect(onTarget.slice(0, held).every(Boolean)).toBe(true);
    expect(onTarget.slice(held).some(Boolean)).toBe(false);
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(acked.size); // the frozen target missed the tail the client saw acknowledged
  });
});
