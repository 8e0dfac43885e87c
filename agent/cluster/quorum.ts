// Quorum: may this server's partition bring hierarchies in service by failover? Pure.
//   majority — more than half of the cluster's servers (this one included) are alive to it;
//   witness  — the witness votes for this side (a tie-breaker for two-server clusters), or a majority
//              counting the witness as one vote;
//   none     — always quorate; allowed only with a fence command, and status warns.
import type { QuorumMode } from './settings.js';

export interface QuorumInput {
  mode: QuorumMode;
  /** Every server of the cluster, this one included. */
  servers: readonly string[];
  /** The servers this one sees alive, itself included. */
  alive: readonly string[];
  /** With mode witness: true when the witness granted this side its vote, false when it refused or is unreachable. */
  witnessVote?: boolean;
}

export interface Quorum {
  quorate: boolean;
  votes: number;
  needed: number;
  expected: number;
  witness: 'granted' | 'refused' | 'not used';
  /** Why, in words, for status and the log. */
  reason: string;
  warning: string;
}

export function quorum(q: QuorumInput): Quorum {
  const expected = q.servers.length;
  const votes = q.alive.filter((s) => q.servers.includes(s)).length;
  if (q.mode === 'none') {
    return {
      quorate: true, votes, needed: 0, expected, witness: 'not used', reason: 'QUORUM_MODE=none: every partition is quorate; only the fence command prevents split brain',
      warning: 'QUORUM_MODE=none: no quorum is kept; a failover relies on FENCE_CMD alone to keep two servers from running the same hierarchy',
    };
  }
  if (q.mode === 'witness') {
    const w = q.witnessVote === true;
    const total = expected + 1;
    const needed = Math.floor(total / 2) + 1;
    const v = votes + (w ? 1 : 0);
    const quorate = v >= needed;
    return {
      quorate, votes: v, needed, expected: total, witness: w ? 'granted' : 'refused',
      reason: `${v} of ${total} votes (${votes} server${votes === 1 ? '' : 's'}${w ? ' + the witness' : ', the witness not voting for this side'}), ${needed} needed`,
      warning: '',
    };
  }
  const needed = Math.floor(expected / 2) + 1;
  const quorate = votes >= needed;
  let warning = '';
  if (expected === 2) warning = 'two servers and QUORUM_MODE=majority: when one fails the other has 1 of 2 votes and no automatic failover happens; add a witness (QUORUM_MODE=witness, WITNESS=HOST:PORT)';
  return { quorate, votes, needed, expected, witness: 'not used', reason: `${votes} of ${expected} servers, ${needed} needed`, warning };
}

/**
 * The witness's rule: it votes for at most one side at a time. It grants a requester when nothing else
 * holds its vote, or the holder's lease has run out (it stopped asking), or the requester holds it.
 */
export class WitnessVote {
  private holder: string | null = null;
  private until = 0;

  constructor(private readonly leaseMs: number) {}

  request(server: string, now: number): boolean {
    if (this.holder === null || this.holder === server || now >= this.until) {
      this.holder = server;
      this.until = now + this.leaseMs;
      return true;
    }
    return false;
  }

  get current(): string | null {
    return this.holder;
  }
}
