// One round of the cluster manager, as a pure function: from what this server sees (membership,
// quorum) and its hierarchies, what it must do now, with the reasons to log. The daemon loop (not yet
// written) runs it every LCMHBEATTIME and carries the actions out through the in-service path.
import type { Quorum } from './quorum.js';
import { chooseSuccessor, type CopyFacts } from './successor.js';

export interface HierarchyFacts {
  tag: string;
  /** The server the hierarchy is in service on (as this server last knew). */
  source: string;
  /** Every server's copy, this one included, with states as membership sees them. */
  copies: CopyFacts[];
  /** The generation the source last announced. */
  currentGeneration: string;
  /** This server has Confirm Failover On for the source. */
  confirmFailover: boolean;
  /** Block Resource Failover is set on this server. */
  blockFailover: boolean;
}

export type Action =
  | { kind: 'out of service'; tag: string; reason: string }
  | { kind: 'in service'; tag: string; failed: string; reason: string; confirm: boolean }
  | { kind: 'none'; tag: string; reason: string };

export function decide(self: string, q: Quorum, hierarchies: readonly HierarchyFacts[]): Action[] {
  return hierarchies.map((h): Action => {
    if (h.source === self) {
      // The split-brain guard: a source that lost quorum stops serving before the quorate side's
      // detection time ends (both sides use the same detection time, and this side acts on its first round).
      if (!q.quorate) return { kind: 'out of service', tag: h.tag, reason: `${self} lost quorum (${q.reason}); QUORUM_LOSS_ACTION=osu takes ${h.tag} out of service` };
      return { kind: 'none', tag: h.tag, reason: `${h.tag} in service here` };
    }
    const src = h.copies.find((c) => c.server === h.source);
    if (!src || src.state !== 'failed') return { kind: 'none', tag: h.tag, reason: `${h.source} is ${src?.state ?? 'unknown'}: no failover` };
    const s = chooseSuccessor(h.source, h.copies, h.currentGeneration);
    const why = s.reasons.join('; ');
    if (s.successor !== self) return { kind: 'none', tag: h.tag, reason: `${h.source} failed; ${s.successor ? `${s.successor} takes over` : 'nobody takes over'}: ${why}` };
    if (!q.quorate) return { kind: 'none', tag: h.tag, reason: `${h.source} failed and ${self} would take over, but it has no quorum (${q.reason}): no failover` };
    if (h.blockFailover) return { kind: 'none', tag: h.tag, reason: `${h.source} failed and ${self} would take over, but Block Resource Failover is set on ${self}` };
    return { kind: 'in service', tag: h.tag, failed: h.source, confirm: h.confirmFailover, reason: `${h.source} failed; quorate (${q.reason}); ${why}` };
  });
}
