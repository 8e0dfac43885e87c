// The generation rules alone: which way a resync may go, when it is partial, when it is split brain.
import { describe, expect, it } from 'vitest';
import { adopt, decide, discardToCommonAncestor, freshGenerations, rotate, UnconfirmedLabels, type Generations } from '../../agent/mirror/generations.js';

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

  it('a target that lost the connection before applying the end-of-resync notice is resynced partially, until a notice is acknowledged', () => {
    const { s, t } = inSyncPair(); // both at g0
    const labels = new UnconfirmedLabels();
    const s1 = rotate(s); // S writes while T is paused: g1; T stays g0
    // The resync ends: S labels T g1 and sends the notice, but T is paused before it applies it.
    labels.advanced('T', s1.peers.T, s1.current);
    s1.peers.T = s1.current;
    const s2 = rotate(s1); // S writes again while T is away: g2
    expect(decide(s2, 'S', t, 'T')).toBe('full'); // T still says g0, older than our bitmap's g1
    expect(labels.decide(s2, 'S', t, 'T')).toBe('partial');
    expect(labels.decide(s2, 'S', rotate(t), 'T')).toBe('split-brain'); // T changed by itself too: as before

    // Once T acknowledged holding g1, a T at g0 is an older copy (restored, say): in full.
    labels.acknowledged('T', s1.current);
    expect(labels.decide(s2, 'S', t, 'T')).toBe('full');
    expect(labels.decide(s2, 'S', adopt(t, s1.current), 'T')).toBe('partial');
  });
});
