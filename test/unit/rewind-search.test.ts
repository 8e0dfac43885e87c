// The rewind wizard's pure logic: times printed and read back to the microsecond, the good/bad/unknown
// spans after verdicts, the bisection's next time and how many verdicts remain, the copies to use.
import { describe, expect, it } from 'vitest';
import {
  barPercent, chooseRewindCopies, formatRewindTime, knownSpans, parseRewindTime, proposeTime, searchWindow, stepsRemaining, type Trial,
} from '../../common/rewind.js';

describe('rewind times', () => {
  it('print with microseconds and read back to the same number', () => {
    const t = Date.UTC(2026, 10, 30, 18, 1, 2, 123) + 0.456;
    expect(formatRewindTime(t)).toBe('2026-11-30T18:01:02.123456Z');
    expect(parseRewindTime('2026-11-30T18:01:02.123456Z')).toBeCloseTo(t, 6);
    expect(formatRewindTime(parseRewindTime(formatRewindTime(t))!)).toBe('2026-11-30T18:01:02.123456Z');
    expect(formatRewindTime(Date.UTC(2026, 0, 1) + 0.9996)).toBe('2026-01-01T00:00:00.001000Z');
  });

  it('read fewer decimals, a space, offsets and epoch milliseconds; refuse anything else', () => {
    expect(parseRewindTime('2026-11-30 18:01')).toBe(Date.UTC(2026, 10, 30, 18, 1));
    expect(parseRewindTime('2026-11-30T18:01:02.5Z')).toBe(Date.UTC(2026, 10, 30, 18, 1, 2, 500));
    expect(parseRewindTime('2026-11-30T20:01:02+02:00')).toBe(Date.UTC(2026, 10, 30, 18, 1, 2));
    expect(parseRewindTime('1700000000123.5')).toBe(1700000000123.5);
    for (const bad of ['yesterday', '2026-13-45T99:00:00Z', '', '18:01', '2026-11-30T18:01:02.1234567Z']) expect(parseRewindTime(bad), bad).toBeNull();
  });
});

describe('the good/bad bar and the bisection', () => {
  const start = 1000;
  const end = 2000;
  const t = (time: number, verdict: Trial['verdict']): Trial => ({ time, verdict, comment: '' });

  it('is all unknown (yellow) before any verdict', () => {
    expect(knownSpans(start, end, [])).toEqual([{ from: 1000, to: 2000, state: 'unknown' }]);
  });

  it('after a good and a bad verdict: green up to the good point, red from the bad one, yellow between', () => {
    const trials = [t(1600, 'bad'), t(1300, 'good')];
    expect(knownSpans(start, end, trials)).toEqual([
      { from: 1000, to: 1300, state: 'good' },
      { from: 1300, to: 1600, state: 'unknown' },
      { from: 1600, to: 2000, state: 'bad' },
    ]);
    expect(searchWindow(start, end, trials)).toEqual({ lo: 1300, hi: 1600 });
  });

  it('uses the latest good below the earliest bad; a good after a bad does not widen the window', () => {
    const trials = [t(1500, 'bad'), t(1200, 'good'), t(1400, 'good'), t(1800, 'good'), t(1700, 'bad')];
    expect(searchWindow(start, end, trials)).toEqual({ lo: 1400, hi: 1500 });
  });

  it('proposes the middle candidate strictly inside the window, none when the window is empty', () => {
    expect(proposeTime(1300, 1600, [1100, 1350, 1400, 1450, 1500, 1700])).toBe(1400);
    expect(proposeTime(1300, 1600, [1300, 1600])).toBeNull();
    expect(proposeTime(start, end, [1500])).toBe(1500);
  });

  it('counts the verdicts left: log2 of the entries in the window, rounded up', () => {
    expect(stepsRemaining(0)).toBe(0);
    expect(stepsRemaining(1)).toBe(0);
    expect(stepsRemaining(2)).toBe(1);
    expect(stepsRemaining(1000)).toBe(10);
    expect(stepsRemaining(1_000_000)).toBe(20);
  });

  it('places times on the bar within 0–100 %', () => {
    expect(barPercent(start, end, 1250)).toBe(25);
    expect(barPercent(start, end, 500)).toBe(0);
    expect(barPercent(start, end, 5000)).toBe(100);
  });
});

describe('which copies a rewind uses', () => {
  const copies = [
    { node: 'adam', role: 'source' as const, state: 'in service', logKept: false },
    { node: 'eve', role: 'target' as const, state: 'target', logKept: false },
    { node: 'sophia', role: 'target' as const, state: 'target', logKept: true },
  ];
  it('the selected target, else the first keeping a log; the source in service is paused', () => {
    expect(chooseRewindCopies(copies)).toEqual({ target: 'sophia', source: 'adam' });
    expect(chooseRewindCopies(copies, 'adam')).toEqual({ target: 'sophia', source: 'adam' });
    expect(chooseRewindCopies(copies, 'eve')).toEqual({ reason: 'eve keeps no rewind log: set the Rewind Log Location (mirror_settings TAG logdir DIR), then pause and resume the mirror' });
  });
  it('says why when nothing is in service or there is no target', () => {
    expect(chooseRewindCopies(copies.slice(1))).toEqual({ reason: 'the mirror is not in service anywhere: bring it in service first' });
    expect(chooseRewindCopies(copies.slice(0, 1))).toEqual({ reason: 'the mirror has no target: the rewind log is kept on targets' });
  });
});
