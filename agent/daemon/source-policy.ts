// The failover rules a source copy follows toward each of its targets, carried out: what HELLO says, the
// answer to a WELCOME or to a peer that is a source too, generations at the end of a resync and on the
// first write after losing a target, and a switchover. The decisions are failover-rules.ts's.
import type { LinkBlock, MirrorPolicy } from '../mirror/mirror-core.js';
import { decide, rotate, UnconfirmedLabels } from '../mirror/generations.js';
import { admitPeer, needsNewGeneration, onPeerIsSource } from '../mirror/failover-rules.js';
import type { MemberInfo, Switched } from '../replication/wire.js';
import type { Logger } from '../log.js';
import type { SourceMirror } from '../mirror/source-mirror.js';
import type { SourceCopy } from './source-copy.js';

/** What the policy needs from the daemon. */
export interface PolicyHost {
  readonly node: string;
  readonly advertisedAddress: string;
  readonly log: Logger;
  persist(): void;
  /** Opens the export: in service here (on `mirror`, else the copy's open one). */
  goInService(copy: SourceCopy, mirror?: SourceMirror): Promise<void>;
  demote(copy: SourceCopy, newSource: string, consistent: boolean, why: string): Promise<void>;
}

/** The failover rules toward each target of one source copy (decided by failover-rules.ts). */
export function policyFor(entry: SourceCopy, host: PolicyHost): MirrorPolicy {
  const r = entry.record;
  const gens = () => r.generations;
  // Labels moved in the write stream and not yet acknowledged (see UnconfirmedLabels).
  const unconfirmed = new UnconfirmedLabels();
  const advance = (peer: string, label: string) => {
    unconfirmed.advanced(peer, r.generations.peers[peer], label);
    r.generations.peers[peer] = label;
  };
  return {
    hello: () => ({
      generations: gens(),
      members: [
        { node: host.node, address: host.advertisedAddress, mode: 'sync' },
        ...(entry.mirror?.links ?? []).map((l): MemberInfo => ({ node: l.config.node, address: l.config.address, mode: l.config.mode })),
      ],
      sourceAddress: host.advertisedAddress,
      fileSystem: r.fileSystem ?? null,
    }),

    admit: async (link, welcome): Promise<'go' | LinkBlock> => {
      const peer = link.config.node;
      const decision = admitPeer(unconfirmed.decide(gens(), host.node, welcome.generations, peer), entry.phaseName);
      if (decision.action === 'refuse') {
        if (decision.why === 'split-brain') return splitBrain(r.tag, host.node, peer);
        return { state: 'refused', message: `${peer} holds newer data of "${r.tag}" than this node (it changed since they last agreed, this node did not); nothing was resynced. Take the mirror out of service here and bring it in service on ${peer}` };
      }
      if (decision.extent === 'full') {
        host.log.info(`${r.tag}: ${peer}'s copy is older than this node's bitmap covers; full resync`);
        await entry.mirror!.log.setAll(link.slot);
      }
      if (welcome.dirty) await entry.mirror!.log.mergeDirty(link.slot, Buffer.from(welcome.dirty, 'base64'));
      if (decision.goInService && entry.phase.name === 'starting') await host.goInService(entry);
      return 'go';
    },

    peerIsSource: (link, refusal): LinkBlock | null => {
      const peer = link.config.node;
      const verdict = refusal.generations ? decide(gens(), host.node, refusal.generations, peer) : null;
      const decision = onPeerIsSource(verdict, entry.phaseName, refusal.inService === true);
      if (decision.action === 'demote') {
        // Manual, scenario 1: the old source comes back, finds the new one, drops last_owner and is
        // resynced from it (partially: both bitmaps).
        void host.demote(entry, peer, false, `${peer} took over while this node was away`).catch((e: Error) => host.log.error(`demoting ${r.tag}: ${e.message}`));
        return null;
      }
      switch (decision.why) {
        case 'no-generations': return { state: 'refused', message: refusal.message };
        case 'split-brain': return splitBrain(r.tag, host.node, peer);
        case 'peer-newer-in-service':
          return { state: 'refused', message: `${peer} is in service with newer data of "${r.tag}" while this node is too; take it out of service here (tandem outofservice ${r.tag}) to become its target` };
        case 'peer-older-in-service':
          return { state: 'refused', message: `${peer} is in service too, with data this node has changed since they last agreed; take it out of service there (tandem outofservice ${r.tag}) to make it a target of this node` };
        case 'peer-older-starting':
          return { state: 'refused', message: `${peer} is starting as a source of "${r.tag}" with older data; it becomes a target when it sees this node` };
      }
    },

    inSync: (link) => {
      advance(link.config.node, r.generations.current);
      host.persist();
      return r.generations.current;
    },

    noticeSettled: (link, label, acknowledged) => {
      if (acknowledged) unconfirmed.acknowledged(link.config.node, label);
    },

    beforeWrite: () => {
      if (entry.rotating) return entry.rotating;
      const g = r.generations;
      const links = entry.mirror?.links ?? [];
      if (!needsNewGeneration(g, links)) return null;
      entry.rotating = (async () => {
        // The first write after losing a target: from here our data differs from what it holds.
        const next = rotate(g);
        r.generations = next;
        for (const l of links) if (l.mirroring) advance(l.config.node, next.current);
        host.persist();
        for (const l of links) if (l.mirroring) l.sendGeneration(next.current, true);
        host.log.info(`${r.tag}: new generation ${next.current}`);
      })().finally(() => {
        entry.rotating = null;
      });
      return entry.rotating;
    },

    switchover: async (link): Promise<Switched> => {
      const peer = link.config.node;
      if (entry.phase.name !== 'in service') return { ok: false, message: `the mirror is not in service on ${host.node}` };
      const status = link.status();
      if (status.state !== 'mirroring') {
        return { ok: false, message: `${peer} is not in sync (${status.status}, ${status.percentSynced}% synced); switchover to it is refused until its resync completes` };
      }
      // Out of service here: the file system unmounted (refused while busy), no new writes, then
      // everything written reaches the new source.
      try {
        await entry.takeDownFileSystem();
      } catch (err) {
        return { ok: false, message: `${r.fileSystem?.mountPoint ?? 'the file system'} on ${host.node} could not be unmounted: ${(err as Error).message}` };
      }
      const server = entry.server;
      entry.stepDown();
      await server?.close();
      await entry.mirror!.flush();
      const drained = await link.drain(30_000);
      if (!drained || !link.mirroring) {
        await host.goInService(entry);
        return { ok: false, message: `${peer} did not acknowledge every write in time; the mirror stays in service on ${host.node}` };
      }
      for (const l of entry.mirror!.links) if (l !== link) await l.drain(10_000);
      r.generations.peers[peer] = r.generations.current;
      return { ok: true, message: `${host.node} is out of service`, generations: r.generations };
    },

    afterSwitchover: (link) => {
      void host.demote(entry, link.config.node, true, 'switchover').catch((e: Error) => host.log.error(`demoting ${r.tag}: ${e.message}`));
    },
  };
}

export function splitBrain(tag: string, node: string, peer: string): LinkBlock {
  return {
    state: 'split-brain',
    message: `split brain: ${node} and ${peer} both changed "${tag}" while apart; nothing is resynced until you choose the survivor. On the node whose changes are to be discarded run: tandem resolve ${tag} --survivor NODE`,
  };
}
