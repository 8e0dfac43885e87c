// Generation identifiers: which copy of a mirror's data is newer, decided without looking at the data.
//
// Every node that holds a copy keeps:
//   current  — the id of the data on its disk now;
//   history  — the ids it had before, newest first;
//   peers    — per other node, the id both held when this node's bitmap for that node began to be the
//              complete record of their differences ("bitmap generation"); '' for a target that never
//              held a copy (a new extend: its bitmap says what it needs).
// A source starts a new generation on the first write while some node whose bitmap generation is the
// current one is not receiving its writes in order (lost, paused, resyncing, or after becoming source
// while disconnected). A target takes the source's generation once it holds everything (end of resync).
// Pure logic, no I/O.
import crypto from 'node:crypto';

export interface Generations {
  current: string;
  history: string[];
  peers: Record<string, string>;
}

export const HISTORY_LENGTH = 8;

export function newGenerationId(): string {
  return crypto.randomBytes(8).toString('hex');
}

/** A brand-new copy (a mirror just created, or a target that never held data). */
export function freshGenerations(hasData: boolean): Generations {
  return { current: hasData ? newGenerationId() : '', history: [], peers: {} };
}

/** The copy changes from here on: a new current id, the old one into history. */
export function rotate(g: Generations): Generations {
  const history = g.current ? [g.current, ...g.history].slice(0, HISTORY_LENGTH) : g.history.slice();
  return { current: newGenerationId(), history, peers: { ...g.peers } };
}

/** This node's copy is now the given generation (a target at the end of a resync, or a demoted node). */
export function adopt(g: Generations, current: string): Generations {
  if (g.current === current) return g;
  const history = g.current ? [g.current, ...g.history.filter((h) => h !== current)].slice(0, HISTORY_LENGTH) : g.history.slice();
  return { current, history, peers: { ...g.peers } };
}

/**
 * What a would-be sync source (`local`) may do with a peer's copy:
 *   partial     — the peer holds an older state of ours that our bitmap for it (plus its bitmap for
 *                 us) fully describes: resync those chunks;
 *   full        — the peer's copy is older than anything our bitmap covers (or it never had one);
 *   peer-newer  — the peer changed since we last agreed, and we did not: it holds the newer data;
 *   split-brain — both changed since they last agreed: only an administrator can pick the survivor.
 */
export type Verdict = 'partial' | 'full' | 'peer-newer' | 'split-brain';

export function decide(local: Generations, localNode: string, peer: Generations, peerNode: string): Verdict {
  const ourBitmapGen = local.peers[peerNode];
  const theirBitmapGen = peer.peers[localNode];
  if (peer.current === local.current && local.current !== '') return 'partial';
  if (ourBitmapGen !== undefined && peer.current === ourBitmapGen) return 'partial';
  if (theirBitmapGen !== undefined && theirBitmapGen === local.current && local.current !== '') return 'peer-newer';
  if (local.current !== '' && peer.history.includes(local.current)) return 'peer-newer';
  if (peer.current === '' || local.history.includes(peer.current)) return 'full';
  if (local.current === '') return 'peer-newer';
  return 'split-brain';
}

/** Split brain resolved against this node: it keeps its changes only in its bitmap, to be overwritten. */
export function discardToCommonAncestor(g: Generations, survivor: string): Generations {
  const common = g.peers[survivor] ?? '';
  return { current: common, history: g.history.filter((h) => h !== common), peers: { ...g.peers } };
}

/**
 * A source's labels for its targets that moved in the write stream without the target's acknowledgement
 * yet (the generation notice at the end of a resync, or a rotation while it mirrors). A target that lost
 * the connection before applying such a notice comes back at the label before it, which the source's
 * bitmap for it covers just as well: it changed only by what the source sent since, and bits are cleared
 * only once acknowledged. Once a notice is acknowledged the target holds its label, and no earlier one.
 * In memory only: after a restart such a target is resynced in full, as before.
 */
export class UnconfirmedLabels {
  private readonly byPeer = new Map<string, Array<{ before: string; label: string }>>();

  /** Our label for `peer` moves from `before` to `label` (a notice naming `label` is being sent). */
  advanced(peer: string, before: string | undefined, label: string): void {
    if (before === undefined || before === label) return;
    const list = this.byPeer.get(peer) ?? [];
    list.push({ before, label });
    this.byPeer.set(peer, list);
  }

  /** The notice naming `label` was acknowledged by `peer`: it holds `label` durably. */
  acknowledged(peer: string, label: string): void {
    const list = this.byPeer.get(peer);
    if (!list) return;
    const i = list.findIndex((u) => u.label === label);
    if (i >= 0) list.splice(0, i + 1);
    if (list.length === 0) this.byPeer.delete(peer);
  }

  /** decide(), but a peer at a label we moved away from without its acknowledgement is resynced partially. */
  decide(local: Generations, localNode: string, peer: Generations, peerNode: string): Verdict {
    const verdict = decide(local, localNode, peer, peerNode);
    if (verdict === 'full' && this.byPeer.get(peerNode)?.some((u) => u.before === peer.current)) return 'partial';
    return verdict;
  }
}
