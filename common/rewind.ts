// Rewind points and the search for the last good one (pure: used by the agent's CLI and the rewind
// wizard). Times are milliseconds since the epoch with microseconds as the fraction: the rewind log
// gives every entry its own microsecond, so a printed time names one point between two entries.

/** ISO 8601 with microseconds, UTC: 2026-11-30T18:01:02.123456Z. */
export function formatRewindTime(t: number): string {
  let ms = Math.floor(t);
  let micro = Math.round((t - ms) * 1000);
  if (micro === 1000) {
    ms += 1;
    micro = 0;
  }
  return `${new Date(ms).toISOString().slice(0, -1)}${String(micro).padStart(3, '0')}Z`;
}

/**
 * A typed time: ISO 8601 (UTC "Z" or an offset; up to 6 fractional digits; a space for "T" is fine)
 * or milliseconds since the epoch. Null if it is neither.
 */
export function parseRewindTime(text: string): number | null {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (!m) return null;
  const zone = m[4] ? (m[4].toUpperCase() === 'Z' ? 'Z' : m[4].replace(/^([+-]\d{2})(\d{2})$/, '$1:$2')) : 'Z';
  const base = Date.parse(`${m[1]}T${m[2]!.length === 5 ? `${m[2]}:00` : m[2]}${zone}`);
  if (Number.isNaN(base)) return null;
  const frac = (m[3] ?? '').padEnd(6, '0');
  return base + Number(frac) / 1000;
}

export type Verdict = 'good' | 'bad';

/** One rewound view the administrator looked at. */
export interface Trial {
  time: number;
  verdict: Verdict;
  comment: string;
}

export interface Span {
  from: number;
  to: number;
  state: 'good' | 'bad' | 'unknown';
}

/**
 * What is known of the log's span [start, end]: data is taken to go bad once and stay bad (a bad
 * upgrade, ransomware, a mistake), so it is good up to the latest good point below the earliest bad one
 * and bad from that bad point on; between them, unknown. A good verdict after a bad one contradicts
 * that; it is shown as a good point inside the red.
 */
export function knownSpans(start: number, end: number, trials: readonly Trial[]): Span[] {
  const { lo, hi } = searchWindow(start, end, trials);
  const out: Span[] = [];
  if (lo > start) out.push({ from: start, to: lo, state: 'good' });
  if (hi > lo) out.push({ from: lo, to: hi, state: 'unknown' });
  if (hi < end) out.push({ from: hi, to: end, state: 'bad' });
  if (out.length === 0) out.push({ from: start, to: end, state: 'unknown' });
  return out;
}

/** The window the last good point is in: after the latest good time below the earliest bad one. */
export function searchWindow(start: number, end: number, trials: readonly Trial[]): { lo: number; hi: number } {
  let hi = end;
  for (const t of trials) if (t.verdict === 'bad' && t.time < hi) hi = Math.max(start, t.time);
  let lo = start;
  for (const t of trials) if (t.verdict === 'good' && t.time > lo && t.time < hi) lo = t.time;
  return { lo, hi };
}

/** Verdicts still needed to find the last good write among `entries` in the window (bisection). */
export function stepsRemaining(entries: number): number {
  return entries <= 1 ? 0 : Math.ceil(Math.log2(entries));
}

/**
 * The next time to try: the middle candidate strictly inside (lo, hi), candidates being entry times the
 * agent sampled evenly (by entry count) over that window; null when none is left inside.
 */
export function proposeTime(lo: number, hi: number, candidates: readonly number[]): number | null {
  const inside = candidates.filter((c) => c > lo && c < hi).sort((a, b) => a - b);
  if (inside.length === 0) return null;
  return inside[Math.floor((inside.length - 1) / 2)] as number;
}

/** Where a time sits on the bar, 0–100 %. */
export function barPercent(start: number, end: number, t: number): number {
  if (end <= start) return 100;
  return Math.max(0, Math.min(100, ((t - start) / (end - start)) * 100));
}

/** The copies of a mirror a rewind wizard looks at, as the console's status shows them. */
export interface RewindCopy {
  node: string;
  role: 'source' | 'target';
  state: string;
  logKept: boolean;
}

/**
 * Which target to rewind and which source to pause: the selected server if it is a target, else the
 * first target keeping a rewind log. Null with the reason when there is none.
 */
export function chooseRewindCopies(copies: readonly RewindCopy[], selected?: string): { target: string; source: string } | { reason: string } {
  const source = copies.find((c) => c.role === 'source' && c.state === 'in service');
  if (!source) return { reason: 'the mirror is not in service anywhere: bring it in service first' };
  const targets = copies.filter((c) => c.role === 'target');
  const chosen = targets.find((c) => c.node === selected) ?? targets.find((c) => c.logKept) ?? targets[0];
  if (!chosen) return { reason: 'the mirror has no target: the rewind log is kept on targets' };
  if (!chosen.logKept) return { reason: `${chosen.node} keeps no rewind log: set the Rewind Log Location (mirror_settings TAG logdir DIR), then pause and resume the mirror` };
  return { target: chosen.node, source: source.node };
}
