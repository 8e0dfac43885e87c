// The failover and resync decisions of one copy of a mirror, as pure functions over what the copy knows
// (its generations, its phase, its flags). The daemon carries them out; a cluster manager asks them which
// node may take over. Manual: "Failover Scenarios" (1–4) and "Resynchronization". No I/O, no clock.
import { decide, type Generations, type Verdict } from './generations.js';

/** Where a source copy is: serving (ISP), looking for its targets before serving, or out of service. */
export type SourcePhaseName = 'in service' | 'starting' | 'out of service';

/** What one copy knows about itself that decides whether it may go in service. */
export type CopyState =
  | {
    role: 'source';
    phase: SourcePhaseName;
    /** The manual's data_corrupt: it came back and could not reach a target (scenario 3). */
    dataCorrupt: boolean;
  }
  | {
    role: 'target';
    /** The source replicating into it now, or null. */
    connectedSource: string | null;
    /** Its data is a usable copy (not in, or interrupted in, a resync). */
    consistent: boolean;
    /** It lost its source while holding a usable copy, and has not restarted since (scenario 1). */
    lostSourceInSync: boolean;
    /** It ever received data from a source (its size is known). */
    hasData: boolean;
  };

/** How a copy goes in service when the administrator (or a cluster manager) asks. */
export type InServiceWay =
  | 'already' //         a source in service: nothing to do
  | 'start' //           a source out of service or starting: look for the targets first (scenario 3)
  | 'force' //           a source forced in service: data_corrupt cleared
  | 'switchover' //      a target in sync with its connected source: the source steps down first
  | 'failover' //        a target that lost its source in sync (scenario 1)
  | 'forced-failover'; // a target forced in service: the administrator knows the source is gone

/** Why a copy may not go in service. */
export type InServiceRefusal =
  | 'force-while-source-connected' // force is for a lost source; a connected one is switched over
  | 'resyncing' //                    its connected source is still resyncing it
  | 'incomplete-copy' //              scenario 2: it lost its source during a resync
  | 'source-not-seen' //              scenario 4: it restarted and has not seen its source since
  | 'no-data'; //                     it never received data

export type InServiceDecision = { ok: true; way: InServiceWay } | { ok: false; refusal: InServiceRefusal; scenario?: 2 | 4 };

/**
 * May this copy go in service (manual, Failover Scenarios and Resynchronization: "cannot fail over to a
 * target that was in the synchronization process when the primary failed")? `force` is the manual's
 * "Force Mirror Online".
 */
export function mayGoInService(copy: CopyState, force = false): InServiceDecision {
  if (copy.role === 'source') {
    if (copy.phase === 'in service') return { ok: true, way: 'already' };
    return { ok: true, way: force ? 'force' : 'start' };
  }
  if (copy.connectedSource !== null) {
    if (force) return { ok: false, refusal: 'force-while-source-connected' };
    if (!copy.consistent) return { ok: false, refusal: 'resyncing' };
    return { ok: true, way: 'switchover' };
  }
  if (!force) {
    if (!copy.consistent) return { ok: false, refusal: 'incomplete-copy', scenario: 2 };
    if (!copy.lostSourceInSync) return { ok: false, refusal: 'source-not-seen', scenario: 4 };
  }
  if (!copy.hasData) return { ok: false, refusal: 'no-data' };
  return { ok: true, way: force ? 'forced-failover' : 'failover' };
}

/**
 * Which way data flows between this copy (a would-be source) and a peer's, from the generations alone:
 * to the peer (partially from the bitmaps, or in full), from the peer (it is newer), or nowhere until an
 * administrator picks the survivor (split brain).
 */
export type ResyncDirection =
  | { direction: 'to-peer'; extent: 'partial' | 'full' }
  | { direction: 'from-peer' }
  | { direction: 'none'; why: 'split-brain' };

export function resyncDirection(verdict: Verdict): ResyncDirection {
  switch (verdict) {
    case 'partial': return { direction: 'to-peer', extent: 'partial' };
    case 'full': return { direction: 'to-peer', extent: 'full' };
    case 'peer-newer': return { direction: 'from-peer' };
    case 'split-brain': return { direction: 'none', why: 'split-brain' };
  }
}

/** What a source does with a target that welcomed it. */
export type AdmitDecision =
  | { action: 'resync'; extent: 'partial' | 'full'; /** a returning source found a target that confirms it is newest */ goInService: boolean }
  | { action: 'refuse'; why: 'peer-newer' | 'split-brain' };

/**
 * Admit a peer: a source (in service, or starting and looking for its targets) meets a target's WELCOME.
 * The verdict comes from the generations (decide, or UnconfirmedLabels.decide).
 */
export function admitPeer(verdict: Verdict, phase: SourcePhaseName): AdmitDecision {
  const way = resyncDirection(verdict);
  if (way.direction === 'from-peer') return { action: 'refuse', why: 'peer-newer' };
  if (way.direction === 'none') return { action: 'refuse', why: 'split-brain' };
  return { action: 'resync', extent: way.extent, goInService: phase === 'starting' };
}

/** What a source does when the peer it connects to is a source of the same mirror itself. */
export type PeerIsSourceDecision =
  | { action: 'demote' } //                     scenario 1: the old source returns and becomes a target of the new one
  | { action: 'refuse'; why: PeerIsSourceRefusal };

export type PeerIsSourceRefusal =
  | 'no-generations' //         the peer said nothing about its data: only its message
  | 'peer-newer-in-service' //  both in service, the peer newer: the administrator takes this one down
  | 'split-brain'
  | 'peer-older-in-service' //  both in service, this one newer: the administrator takes the peer down
  | 'peer-older-starting'; //   the peer is starting with older data: it demotes itself when it sees us

export function onPeerIsSource(verdict: Verdict | null, phase: SourcePhaseName, peerInService: boolean): PeerIsSourceDecision {
  if (verdict === null) return { action: 'refuse', why: 'no-generations' };
  if (verdict === 'peer-newer') return phase === 'starting' ? { action: 'demote' } : { action: 'refuse', why: 'peer-newer-in-service' };
  if (verdict === 'split-brain') return { action: 'refuse', why: 'split-brain' };
  return { action: 'refuse', why: peerInService ? 'peer-older-in-service' : 'peer-older-starting' };
}

/**
 * Scenario 3: a returning source looked for its targets for the probe time and none answered. It cannot
 * tell whether one took over meanwhile, so it sets data_corrupt and stays out of service until forced.
 */
export function probeExpired(phase: SourcePhaseName): { setDataCorrupt: boolean } {
  return { setDataCorrupt: phase === 'starting' };
}

/**
 * Whether the next write starts a new generation: some peer's bitmap generation is the current one while
 * that peer does not receive the writes in order (from here our data differs from what it holds).
 */
export function needsNewGeneration(g: Generations, peers: ReadonlyArray<PeerStream>): boolean {
  // Called before every write: a plain loop, no allocation.
  for (const p of peers) if (g.peers[p.node] === g.current && !p.mirroring) return true;
  return false;
}

/** A peer as the write path sees it: does it receive the writes in order now? */
export interface PeerStream {
  readonly node: string;
  readonly mirroring: boolean;
}

/** One node's copy as a cluster manager sees it when it chooses who takes over. */
export interface CopyView {
  node: string;
  generations: Generations;
  state: CopyState;
}

/**
 * Who holds the newest data: the copies every other copy could be resynced from (partially or in full)
 * without losing anything. Empty when two copies split (each changed since they last agreed): only an
 * administrator can choose then. Copies that never held data ('' current) never count as newest while
 * another holds data.
 */
export function newestCopies(copies: readonly CopyView[]): string[] {
  const held = copies.filter((c) => c.generations.current !== '');
  const pool = held.length > 0 ? held : copies.slice();
  return pool.filter((c) => copies.every((o) => o === c || canSourceTo(c, o))).map((c) => c.node);
}

function canSourceTo(a: CopyView, b: CopyView): boolean {
  const v = decide(a.generations, a.node, b.generations, b.node);
  return v === 'partial' || v === 'full';
}

export type SuccessorReason = 'newest' | 'not-newest' | 'split-brain' | InServiceRefusal;

/** Whether `candidate` may take over, and why (or why not): it must hold the newest data and may go in service. */
export interface SuccessorVerdict {
  node: string;
  eligible: boolean;
  reasons: SuccessorReason[];
}

/**
 * A successor-eligibility check over all the copies a cluster manager can see (the lost source's
 * included when its generations are known). Reasons name every obstacle: not the newest, split brain,
 * or the copy's own refusal (scenario 2's incomplete copy, scenario 4's unseen source, no data).
 */
export function successorEligibility(candidate: CopyView, all: readonly CopyView[]): SuccessorVerdict {
  const reasons: SuccessorReason[] = [];
  const others = all.filter((c) => c.node !== candidate.node);
  for (const o of others) {
    const v = decide(candidate.generations, candidate.node, o.generations, o.node);
    if (v === 'split-brain' && !reasons.includes('split-brain')) reasons.push('split-brain');
    if (v === 'peer-newer' && !reasons.includes('not-newest')) reasons.push('not-newest');
  }
  const may = mayGoInService(candidate.state);
  if (!may.ok) reasons.push(may.refusal);
  if (reasons.length === 0) return { node: candidate.node, eligible: true, reasons: ['newest'] };
  return { node: candidate.node, eligible: false, reasons };
}
