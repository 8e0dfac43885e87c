// The generation rules alone: which way a resync may go, when it is partial, when it is split brain.
import { describe, expect, it } from 'vitest';
import { adopt, decide, discardToCommonAncestor, freshGenerations, rotate, type Generations } from '../../agent/mirror/generations.js';

/** Source S and target T, in sync at generation g0. */
function inSyncPair(): { s: Generations; t: Generations } {
  const s = freshGenerations(true);
  s.peers.T = s.current;
  const t = adopt(freshGenerations(false), s.current);
  t.peers.S = s.current;
  return { s, t };
}

describe('generations', () => {
  it('in sync, or the target merely behind (source wrote while it was away): partial, from the source', () => {
    const { s, t } = inSyncPair();
    expect(decide(s, 'S', t, 'T')).toBe('partial');
    const s2 = rotate(s); // first write after losing T
    expect(s2.history[0]).toBe(s.current);
    expect(decide(s2, 'S', t, 'T')).toBe('partial');
    expect(decide(rotate(s2), 'S', t, 'T')).toBe('partial'); // several generations later, still the bitmap's
  });

  it('a new target (never held data) follows its bitmap; one older than the bitmap covers gets a full resync', () => {
    const s = freshGenerations(true);
    s.peers.T = '';
    expect(decide(s, 'S', freshGenerations(false), 'T')).toBe('partial');
    const old = adopt(freshGenerations(false), s.current);
    const s2 = rotate(s);
    s2.peers.T = 'someone-else';
    expect(decide(s2, 'S', old, 'T')).toBe('full');
    delete s2.peers.T;
    expect(decide(s2, 'S', freshGenerations(false), 'T')).toBe('full');
  });

  it('scenario 1: the target took over and wrote; the returning source sees the peer is newer, and the new source resyncs it partially', () => {
    const { s, t } = inSyncPair();
    const promoted = rotate(t); // the first write on T after becoming source while S is gone
    expect(decide(s, 'S', promoted, 'T')).toBe('peer-newer');
    expect(decide(promoted, 'T', s, 'S')).toBe('partial');
  });

  it('split brain: both wrote after parting; resolved in favour of S, the loser goes back to the common ancestor and the resync is partial', () => {
    const { s, t } = inSyncPair();
    const s2 = rotate(s);
    const t2 = rotate(t);
    expect(decide(s2, 'S', t2, 'T')).toBe('split-brain');
    expect(decide(t2, 'T', s2, 'S')).toBe('split-brain');
    const loser = discardToCommonAncestor(t2, 'S');
    expect(loser.current).toBe(s.current);
    expect(decide(s2, 'S', loser, 'T')).toBe('partial');
  });

  it('a peer that already holds our current generation in its history is newer than us', () => {
    const { s, t } = inSyncPair();
    const t2 = rotate(rotate(t));
    delete t2.peers.S;
    expect(decide(s, 'S', t2, 'T')).toBe('peer-newer');
  });

  it('history is bounded and adopt moves the old id into it', () => {
    let g = freshGenerations(true);
    for (let i = 0; i < 20; i++) g = rotate(g);
    expect(g.history).toHaveLength(8);
    const a = adopt(g, 'abc');
    expect(a.current).toBe('abc');
    expect(a.history[0]).toBe(g.current);
  });
});
