// The manual's service actions on one mirror here: in service (start, switchover, failover, force,
// rewind recovery), out of service, and resolving a split brain. Whether a copy may go in service is
// failover-rules.ts's mayGoInService; the refusals' words are here.
import { RpcError } from '../control/json-rpc.js';
import { discardToCommonAncestor } from '../mirror/generations.js';
import { mayGoInService, type CopyState } from '../mirror/failover-rules.js';
import { isoMicro } from '../rewind/journal.js';
import type { DaemonCore } from './daemon-core.js';
import { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';

/** What the failover rules need to know about a copy here. */
export function copyState(e: SourceCopy | TargetCopy): CopyState {
  if (e instanceof SourceCopy) return { role: 'source', phase: e.phaseName, dataCorrupt: e.record.dataCorrupt };
  return { role: 'target', connectedSource: e.connected, consistent: e.record.consistent, lostSourceInSync: e.lostSourceInSync, hasData: e.record.size > 0 };
}

/** Bring the mirror in service on this node: start a returning source, switch over, or fail over. */
export async function inService(d: DaemonCore, tag: string, force: boolean, rewindTo?: number): Promise<string> {
  if (rewindTo !== undefined) return recoverRewound(d, tag, rewindTo);
  const s = d.sourceCopy(tag);
  if (s) {
    const way = mayGoInService(copyState(s), force);
    if (way.ok && way.way === 'already') {
      s.confirmedInService();
      return `${tag} is already in service on ${d.node}`;
    }
    if (force) {
      await d.goInService(s, s.mirror ?? await d.openMirror(s));
      return `${tag} forced in service on ${d.node}; data_corrupt cleared`;
    }
    if (s.phase.name !== 'starting') {
      const mirror = s.mirror ?? await d.openMirror(s);
      if (mirror.links.length === 0) await d.goInService(s, mirror);
      else d.startProbe(s, mirror);
    }
    if (s.phase.name === 'starting') {
      const outcome = await s.whenStarted();
      if (outcome !== null) throw new RpcError(outcome);
    }
    await s.resourceReady;
    if (s.resourceError) throw new RpcError(`${tag} is in service on ${d.node}, but ${s.resourceError}`);
    return `${tag} in service on ${d.node}`;
  }
  const t = d.targetCopy(tag);
  if (!t) throw new RpcError(`no mirror "${tag}" on this node (${d.node}); see: tandem status`);
  const source = t.record.source ?? 'the source';
  const may = mayGoInService(copyState(t), force);
  if (!may.ok) {
    switch (may.refusal) {
      case 'force-while-source-connected':
        throw new RpcError(`${t.connected} is connected and in service; force is only for when it is gone. Use a switchover: tandem inservice ${tag}`);
      case 'resyncing':
        throw new RpcError(`this node (${d.node}) is being resynced from ${t.connected}; a switchover to it is refused until the resync completes`);
      case 'incomplete-copy':
        throw new RpcError(`this node (${d.node}) was being resynced when it lost ${source}; its copy is incomplete, so it cannot be brought in service (manual, scenario 2). Bring the mirror in service on ${source}`);
      case 'source-not-seen':
        throw new RpcError(`this node (${d.node}) has not seen ${source} since it started, so it cannot know whether ${source} wrote after this node went down (manual, scenario 4). Start ${source}: it goes in service and resyncs this node. If ${source} is lost for good: mirror_action ${tag} force ${d.node}`);
      case 'no-data':
        throw new RpcError(`this node's copy of "${tag}" never received data from a source; there is nothing to bring in service`);
    }
  }
  if (may.way === 'switchover') {
    const answer = await d.requestSwitchover(tag);
    if (!answer.ok) throw new RpcError(`switchover refused by ${t.connected}: ${answer.message}`);
    if (answer.generations && answer.generations.current !== t.record.generations.current) {
      throw new RpcError(`${t.connected} went out of service but this node does not hold its latest generation; bring it back in service there`);
    }
    const promoted = await d.promote(t, `switchover from ${source}`);
    await promoted.resourceReady;
    if (promoted.resourceError) throw new RpcError(`${tag} switched over to ${d.node}, but ${promoted.resourceError}`);
    return `${tag} switched over: in service on ${d.node}; ${source} is now its target`;
  }
  await d.promote(t, force ? 'forced' : `failover from ${source}`);
  return `${tag} in service on ${d.node} (${force ? 'forced' : `failover from ${source}`})`;
}

/**
 * The manual's rewind recovery "Move applications to the target": the switchover to this target,
 * whose data then goes back to `time` before it goes in service; the old source becomes its target and
 * gets only the chunks that differ. Needs the mirror resumed and this target in sync (a switchover).
 */
async function recoverRewound(d: DaemonCore, tag: string, time: number): Promise<string> {
  const t = d.targetCopy(tag);
  if (!t) {
    if (d.sourceCopy(tag)) throw new RpcError(`this node (${d.node}) is the source of "${tag}"; run the rewind recovery on the target whose rewound data is to be used`);
    throw new RpcError(`no mirror "${tag}" on this node (${d.node}); see: tandem status`);
  }
  t.rewind.checkTime(time);
  const source = t.connected ?? t.record.source ?? 'the source';
  if (!t.connected) {
    throw new RpcError(`moving applications to ${d.node} is a switchover, which needs the mirror resumed: on ${source} run mirror_action ${tag} resume ${source} ${d.node}, wait until it is Fully Operational, then run this again (the rewind log keeps the point)`);
  }
  if (!t.record.consistent) throw new RpcError(`this node (${d.node}) is being resynced from ${t.connected}; wait until the mirror is Fully Operational, then run this again`);
  await t.rewind.closeView();
  const answer = await d.requestSwitchover(tag);
  if (!answer.ok) throw new RpcError(`switchover refused by ${source}: ${answer.message}`);
  if (answer.generations && answer.generations.current !== t.record.generations.current) {
    throw new RpcError(`${source} went out of service but this node does not hold its latest generation; bring it back in service there`);
  }
  const rolledBack = { blocks: 0, bytes: 0 };
  const promoted = await d.promote(t, `rewind to ${isoMicro(time)}, switchover from ${source}`, time, rolledBack);
  await promoted.resourceReady;
  const done = `${tag} rewound to ${isoMicro(time)} and switched over: in service on ${d.node}; ${rolledBack.blocks} blocks (${rolledBack.bytes} bytes) written back, and only their chunks go to ${source}, now its target`;
  if (promoted.resourceError) throw new RpcError(`${done}, but ${promoted.resourceError}`);
  return done;
}

export async function outOfService(d: DaemonCore, tag: string): Promise<string> {
  const s = d.sourceCopy(tag);
  if (!s) {
    if (d.targetCopy(tag)) throw new RpcError(`"${tag}" is not in service on this node (${d.node}): it is a target here`);
    throw new RpcError(`no mirror "${tag}" on this node (${d.node}); see: tandem status`);
  }
  if (s.phaseName === 'out of service') return `${tag} is already out of service on ${d.node}`;
  await s.takeDownFileSystem(); // refused while busy: nothing changes
  await d.closeSource(s);
  s.takenOutOfService();
  return `${tag} out of service on ${d.node}; its bitmap keeps what changed`;
}

/** Split brain: this node's copy gives way to `survivor`'s; only its diverged chunks are rewritten. */
export async function resolve(d: DaemonCore, tag: string, survivor: string): Promise<string> {
  if (survivor === d.node) {
    throw new RpcError(`run this on the node whose changes are to be discarded, not on the survivor (${survivor}): there, run tandem resolve ${tag} --survivor ${survivor}`);
  }
  const s = d.sourceCopy(tag);
  if (!s) {
    if (d.targetCopy(tag)) throw new RpcError(`this node (${d.node}) is already a target of "${tag}"; nothing to resolve here`);
    throw new RpcError(`no mirror "${tag}" on this node (${d.node}); see: tandem status`);
  }
  const members = s.targets().map((t) => t.node);
  if (!members.includes(survivor)) throw new RpcError(`"${survivor}" is not a node of mirror "${tag}"; nodes: ${members.join(', ') || 'none'}`);
  // Our changes since we last agreed stay recorded in our bitmap for the survivor, so its resync
  // overwrites exactly those chunks (together with the ones it changed).
  s.record.generations = discardToCommonAncestor(s.record.generations, survivor);
  await d.demote(s, survivor, false, `split brain resolved in favour of ${survivor}`);
  return `${tag}: this node (${d.node}) is now a target of ${survivor}; its diverged chunks will be resynced from ${survivor}`;
}
