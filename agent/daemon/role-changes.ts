// A copy changes role: a source becomes a target (a returning stale source, a switchover, a resolve),
// a target becomes the source (failover, switchover, force, rewind recovery). The records change shape
// here (mirror-record.ts's asTargetRecord / asSourceRecord), each change ending in one persist.
import { MAX_TARGETS } from '../intent-log/bitmap.js';
import type { SourceMirror } from '../mirror/source-mirror.js';
import { RewoundView } from '../rewind/rewound-view.js';
import { isoMicro } from '../rewind/journal.js';
import { RpcError } from '../control/json-rpc.js';
import { asSourceRecord, asTargetRecord } from './mirror-record.js';
import type { DaemonCore } from './daemon-core.js';
import type { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';

/** This node's copy becomes a target of `newSource`. */
export async function demote(d: DaemonCore, copy: SourceCopy, newSource: string, consistent: boolean, why: string): Promise<void> {
  const r = copy.record;
  const mirror = copy.mirror;
  const store = mirror?.local;
  await copy.takeDownFileSystem().catch((e: Error) => d.log.error(`${r.tag}: ${e.message}`));
  await copy.server?.close();
  if (mirror) {
    for (const l of mirror.links) l.stop();
    await mirror.log.flushClears();
    mirror.log.close();
  }
  copy.demoted(`${r.tag}: this node became a target of ${newSource}: ${why}`);
  d.forgetSource(copy);
  d.openTarget(asTargetRecord(copy.toRecord(), { node: d.node, address: d.advertisedAddress, mode: 'sync' }, newSource, consistent), store);
  d.persist();
  d.log.warn(`${r.tag}: now a target of ${newSource} (${why})`);
}

/**
 * A target copy becomes the source. With `rewindTo`, before it goes in service its data is rewound to
 * that time from the rewind log: every block written since is written back through the new mirror, so
 * its targets get exactly those blocks (or resync just their chunks).
 */
export async function promote(d: DaemonCore, t: TargetCopy, why: string, rewindTo?: number, rolledBack?: { blocks: number; bytes: number }): Promise<SourceCopy> {
  const r = t.record;
  if (r.size === 0) throw new RpcError(`this node's copy of "${r.tag}" never received data from a source; there is nothing to bring in service`);
  await d.detachTarget(t);
  const record = asSourceRecord(r, d.node, MAX_TARGETS);
  const rollback = rewindTo === undefined ? undefined : async (mirror: SourceMirror) => {
    const journal = t.rewind.requireJournal();
    const view = new RewoundView(t.store, journal, journal.overlayAt(rewindTo), rewindTo, mirror.size);
    try {
      for (const run of view.changedRuns()) {
        await mirror.write(run.offset, [await view.read(run.offset, run.length)], false);
        if (rolledBack) rolledBack.bytes += run.length;
      }
      await mirror.flush();
      if (rolledBack) rolledBack.blocks = view.changedBlocks;
    } finally {
      await view.close();
    }
    d.log.warn(`${r.tag}: rewound to ${isoMicro(rewindTo)}: ${view.changedBlocks} blocks written back from the rewind log`);
  };
  const copy = await d.openSource(record, 'in service', t.store, rollback);
  // A source keeps no rewind log; when this node is a target again its log starts afresh.
  await t.rewind.remove();
  d.persist();
  d.log.warn(`${r.tag}: in service on ${d.node} (${why})`);
  return copy;
}
