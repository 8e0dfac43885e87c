// Who takes over a hierarchy when its source server fails, and whether a Confirm Failover lets it.
// Pure and deterministic: every survivor computes the same successor from the same facts (the
// hierarchy's priorities and each copy's state), so exactly one brings it in service.

export interface CopyFacts {
  server: string;
  /** Priority of this server's instance: 1 is the highest. */
  priority: number;
  state: ServerState;
  role: 'source' | 'target';
  /** The copy holds everything the source acknowledged up to its failure (was Fully Operational). */
  inSync: boolean;
  /** The copy's generation id. */
  generation: string;
  /** The copy was being resynced when the source was lost: incomplete (manual, scenario 2). */
  resyncing: boolean;
  /** % done of that resync, for the reason. */
  percentSynced?: number;
}

type ServerState = 'alive' | 'failed' | 'stopped' | 'unknown';

export interface Succession {
  /** The chosen server, or null: no failover. */
  successor: string | null;
  /** One line per server considered, in priority order, and the verdict. */
  reasons: string[];
}

/**
 * The highest-priority (lowest number) alive server whose copy is usable: a Target in sync with the
 * current generation — the last one the failed source announced to its targets (`currentGeneration`).
 * Ties in priority go to the server name, so every survivor agrees.
 */
export function chooseSuccessor(failed: string, copies: readonly CopyFacts[], currentGeneration: string): Succession {
  const ordered = [...copies].filter((c) => c.server !== failed).sort((a, b) => a.priority - b.priority || (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
  const reasons: string[] = [];
  const current = currentGeneration;
  let successor: string | null = null;
  for (const c of ordered) {
    const name = `${c.server} (priority ${c.priority})`;
    if (successor) {
      reasons.push(`${name} follows ${successor} as a target`);
      continue;
    }
    if (c.state !== 'alive') reasons.push(`${name} skipped: ${c.state}`);
    else if (c.role !== 'target') reasons.push(`${name} skipped: not a target of the failed source`);
    else if (c.resyncing) reasons.push(`${name} skipped: resyncing, ${c.percentSynced ?? 0} % done; its copy is incomplete (manual, scenario 2)`);
    else if (!c.inSync) reasons.push(`${name} skipped: out of sync with ${failed}`);
    else if (c.generation !== current) reasons.push(`${name} skipped: holds an older generation than the one ${failed} last announced`);
    else {
      successor = c.server;
      reasons.push(`${name} chosen: highest priority with an in-sync copy`);
    }
  }
  if (!successor) reasons.push(`no failover: no surviving server holds a usable copy of what ${failed} served`);
  return { successor, reasons };
}

export type ConfirmAnswer = 'proceed' | 'block';

/**
 * A Confirm Failover waiting for lk_confirmso: at most CONFIRMSOTO seconds, then CONFIRMSODEF.
 * CONFIRMSOTO=0 applies the default at once (with CONFIRMSODEF=1: failover is blocked completely).
 * Timers are injected so tests control time.
 */
export interface Timers {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface PendingConfirmation {
  failed: string;
  /** ms since the epoch when the default applies. */
  deadline: number;
}

export class ConfirmGate {
  private readonly pending = new Map<string, { deadline: number; handle: unknown; resolve: (a: { answer: ConfirmAnswer; by: string }) => void }>();

  constructor(private readonly timers: Timers, private readonly timeoutSeconds: number, private readonly fallback: ConfirmAnswer) {}

  /** Waits for the answer about a failover away from `failed`. */
  wait(failed: string): Promise<{ answer: ConfirmAnswer; by: string }> {
    const existing = this.pending.get(failed);
    // A second failure report for the same server replaces the first wait (it is blocked, the new one decides).
    if (existing) this.answer(failed, 'block', 'superseded');
    if (this.timeoutSeconds === 0) return Promise.resolve({ answer: this.fallback, by: `CONFIRMSOTO=0, CONFIRMSODEF=${this.fallback === 'block' ? 1 : 0}` });
    return new Promise((resolve) => {
      const ms = this.timeoutSeconds * 1000;
      const handle = this.timers.setTimeout(() => {
        this.pending.delete(failed);
        resolve({ answer: this.fallback, by: `no answer within CONFIRMSOTO=${this.timeoutSeconds} s, CONFIRMSODEF=${this.fallback === 'block' ? 1 : 0}` });
      }, ms);
      this.pending.set(failed, { deadline: this.timers.now() + ms, handle, resolve });
    });
  }

  /** lk_confirmso -y|-n -s FAILED. False when nothing waits for FAILED. */
  answer(failed: string, answer: ConfirmAnswer, by = `lk_confirmso ${answer === 'proceed' ? '-y' : '-n'}`): boolean {
    const p = this.pending.get(failed);
    if (!p) return false;
    this.pending.delete(failed);
    this.timers.clearTimeout(p.handle);
    p.resolve({ answer, by });
    return true;
  }

  list(): PendingConfirmation[] {
    return [...this.pending].map(([failed, p]) => ({ failed, deadline: p.deadline }));
  }
}
