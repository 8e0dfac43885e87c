// The failover and resync decisions alone, from tables: one row per situation in the manual's "Failover
// Scenarios" (1–4) and "Resynchronization" sections, built from the generations real copies would hold.
import { describe, expect, it } from 'vitest';
import { adopt, decide, freshGenerations, rotate, UnconfirmedLabels, type Generations } from '../../agent/mirror/generations.js';
import {
  admitPeer, mayGoInService, needsNewGeneration, newestCopies, onPeerIsSource, probeExpired, resyncDirection, successorEligibility,
  type CopyState, type CopyView, type InServiceDecision,
} from '../../agent/mirror/failover-rules.js';

/** Server 1 (S1, the source) and Server 2 (S2, its target), in sync at one generation. */
function inSyncPair(): { s1: Generations; s2: Generations } {
  const s1 = freshGenerations(true);
  s1.peers.S2 = s1.current;
  const s2 = adopt(freshGenerations(false), s1.current);
  s2.peers.S1 = s1.current;
  return { s1, s2 };
}

const target = (over: Partial<Extract<CopyState, { role: 'target' }>> = {}): CopyState => ({
  role: 'target', connectedSource: null, consistent: true, lostSourceInSync: true, hasData: true, ...over,
});
const source = (phase: 'in service' | 'starting' | 'out of service', dataCorrupt = false): CopyState => ({ role: 'source', phase, dataCorrupt });

describe('may this copy go in service (manual, Failover Scenarios and Resynchronization)', () => {
  const rows: Array<[string, CopyState, boolean, InServiceDecision]> = [
    ['scenario 1: S2 lost S1 after the replication completed: failover', target(), false, { ok: true, way: 'failover' }],
    ['scenario 2: S1 (now target) lost S2 during the resync back: refused', target({ consistent: false, lostSourceInSync: false }), false, { ok: false, refusal: 'incomplete-copy', scenario: 2 }],
    ['scenario 2 with force: the administrator knows better', target({ consistent: false, lostSourceInSync: false }), true, { ok: true, way: 'forced-failover' }],
    ['scenario 3: S1 returns alone and is starting: it looks for its targets first', source('starting'), false, { ok: true, way: 'start' }],
    ['scenario 3 after the probe (data_corrupt): forced in service', source('starting', true), true, { ok: true, way: 'force' }],
    ['scenario 4: S2 returns first and has not seen S1: refused', target({ lostSourceInSync: false }), false, { ok: false, refusal: 'source-not-seen', scenario: 4 }],
    ['scenario 4 with force: S1 is lost for good', target({ lostSourceInSync: false }), true, { ok: true, way: 'forced-failover' }],
    ['a source already in service', source('in service'), false, { ok: true, way: 'already' }],
    ['a source out of service is brought back: it looks for its targets first', source('out of service'), false, { ok: true, way: 'start' }],
    ['resynchronization: a target in sync with its connected source: switchover', target({ connectedSource: 'S1', lostSourceInSync: false }), false, { ok: true, way: 'switchover' }],
    ['resynchronization: a target still being resynced cannot take over', target({ connectedSource: 'S1', consistent: false, lostSourceInSync: false }), false, { ok: false, refusal: 'resyncing' }],
    ['force while the source is connected: use a switchover', target({ connectedSource: 'S1' }), true, { ok: false, refusal: 'force-while-source-connected' }],
    ['a target that never received data, forced: nothing to serve', target({ consistent: false, hasData: false, lostSourceInSync: false }), true, { ok: false, refusal: 'no-data' }],
  ];
  it.each(rows)('%s', (_what, copy, force, expected) => {
    expect(mayGoInService(copy, force)).toEqual(expected);
  });
});

describe('which way to resync (manual, Resynchronization and Failover Scenarios)', () => {
  const { s1, s2 } = inSyncPair();
  const s1wrote = rotate(s1); // S1 wrote while S2 was away
  const s2wrote = rotate(s2); // S2 took over and wrote (scenario 1)
  const fresh = freshGenerations(true);
  fresh.peers.S2 = '';
  const olderThanBitmap = adopt(freshGenerations(false), s1.current);
  const s1later = rotate(s1wrote);
  s1later.peers.S2 = 'a-generation-after';
  const rows: Array<[string, Generations, Generations, ReturnType<typeof resyncDirection>]> = [
    ['in sync: partial (nothing to do beyond the bitmaps)', s1, s2, { direction: 'to-peer', extent: 'partial' }],
    ['the target is behind (the source wrote while it was away): partial from the source', s1wrote, s2, { direction: 'to-peer', extent: 'partial' }],
    ['a new target that never held data: its bitmap says everything (partial)', fresh, freshGenerations(false), { direction: 'to-peer', extent: 'partial' }],
    ['a target older than the bitmap covers: full', s1later, olderThanBitmap, { direction: 'to-peer', extent: 'full' }],
    ['scenario 1, returning S1 meets S2 that took over: from the peer', s1, s2wrote, { direction: 'from-peer' }],
    ['scenario 1, the new source S2 resyncs S1: partial (both bitmaps)', s2wrote, s1, { direction: 'to-peer', extent: 'partial' }],
    ['both changed while apart: split brain, nothing resynced', s1wrote, s2wrote, { direction: 'none', why: 'split-brain' }],
  ];
  it.each(rows)('%s', (_what, local, peer, expected) => {
    const localNode = local === s2wrote ? 'S2' : 'S1';
    const peerNode = localNode === 'S1' ? 'S2' : 'S1';
    expect(resyncDirection(decide(local, localNode, peer, peerNode))).toEqual(expected);
  });

  it('a target that missed the end-of-resync notice is resynced partially, not in full', () => {
    const labels = new UnconfirmedLabels();
    const g1 = rotate(s1);
    labels.advanced('S2', g1.peers.S2, g1.current);
    g1.peers.S2 = g1.current;
    const g2 = rotate(g1);
    expect(resyncDirection(decide(g2, 'S1', s2, 'S2'))).toEqual({ direction: 'to-peer', extent: 'full' });
    expect(resyncDirection(labels.decide(g2, 'S1', s2, 'S2'))).toEqual({ direction: 'to-peer', extent: 'partial' });
  });
});

describe('admitting a target that welcomed the source', () => {
  const rows: Array<[string, Parameters<typeof admitPeer>, ReturnType<typeof admitPeer>]> = [
    ['in service, target behind: partial resync', ['partial', 'in service'], { action: 'resync', extent: 'partial', goInService: false }],
    ['scenario 4: S1 returns while S2 waits; S2 confirms S1 is newest: resync and go in service', ['partial', 'starting'], { action: 'resync', extent: 'partial', goInService: true }],
    ['target older than the bitmap: full resync', ['full', 'in service'], { action: 'resync', extent: 'full', goInService: false }],
    ['scenario 2: S2 returns and continues the resync of S1', ['partial', 'starting'], { action: 'resync', extent: 'partial', goInService: true }],
    ['the target is newer: refused, nothing resynced', ['peer-newer', 'in service'], { action: 'refuse', why: 'peer-newer' }],
    ['split brain: refused', ['split-brain', 'starting'], { action: 'refuse', why: 'split-brain' }],
  ];
  it.each(rows)('%s', (_what, args, expected) => {
    expect(admitPeer(...args)).toEqual(expected);
  });
});

describe('the peer is a source of the same mirror too', () => {
  const rows: Array<[string, Parameters<typeof onPeerIsSource>, ReturnType<typeof onPeerIsSource>]> = [
    ['scenario 1: returning S1 finds S2 in service with newer data: it becomes S2\'s target', ['peer-newer', 'starting', true], { action: 'demote' }],
    ['both in service, the peer newer: refused', ['peer-newer', 'in service', true], { action: 'refuse', why: 'peer-newer-in-service' }],
    ['both changed: split brain', ['split-brain', 'starting', true], { action: 'refuse', why: 'split-brain' }],
    ['the peer is in service with older data: it is taken out of service by the administrator', ['partial', 'in service', true], { action: 'refuse', why: 'peer-older-in-service' }],
    ['the peer is starting with older data: it demotes itself', ['full', 'in service', false], { action: 'refuse', why: 'peer-older-starting' }],
    ['the peer said nothing about its data', [null, 'starting', false], { action: 'refuse', why: 'no-generations' }],
  ];
  it.each(rows)('%s', (_what, args, expected) => {
    expect(onPeerIsSource(...args)).toEqual(expected);
  });
});

describe('scenario 3 and the write path', () => {
  it('scenario 3: the probe expires on a starting source: data_corrupt; on any other phase nothing', () => {
    expect(probeExpired('starting')).toEqual({ setDataCorrupt: true });
    expect(probeExpired('in service')).toEqual({ setDataCorrupt: false });
    expect(probeExpired('out of service')).toEqual({ setDataCorrupt: false });
  });

  it('the first write after losing an in-sync target starts a new generation; later ones do not', () => {
    const { s1 } = inSyncPair();
    expect(needsNewGeneration(s1, [{ node: 'S2', mirroring: true }])).toBe(false);
    expect(needsNewGeneration(s1, [{ node: 'S2', mirroring: false }])).toBe(true);
    expect(needsNewGeneration(rotate(s1), [{ node: 'S2', mirroring: false }])).toBe(false);
  });
});

describe('who is newest, and who may take over (for a cluster manager)', () => {
  it('scenario 1: S1 is lost in sync; S2 is newest and eligible', () => {
    const { s1, s2 } = inSyncPair();
    const copies: CopyView[] = [
      { node: 'S1', generations: s1, state: source('in service') },
      { node: 'S2', generations: s2, state: target() },
    ];
    expect(newestCopies(copies).sort()).toEqual(['S1', 'S2']); // same data: either
    expect(successorEligibility(copies[1]!, copies)).toEqual({ node: 'S2', eligible: true, reasons: ['newest'] });
  });

  it('scenario 1 with three nodes: the in-sync target is eligible, the one being resynced is not', () => {
    const { s1, s2 } = inSyncPair();
    s1.peers.S3 = '';
    const s3: Generations = { current: '', history: [], peers: {} };
    const copies: CopyView[] = [
      { node: 'S1', generations: s1, state: source('in service') },
      { node: 'S2', generations: s2, state: target() },
      { node: 'S3', generations: s3, state: target({ consistent: false, hasData: true }) },
    ];
    expect(newestCopies(copies).sort()).toEqual(['S1', 'S2']);
    expect(successorEligibility(copies[1]!, copies).eligible).toBe(true);
    expect(successorEligibility(copies[2]!, copies)).toEqual({ node: 'S3', eligible: false, reasons: ['not-newest', 'incomplete-copy'] });
  });

  it('scenario 2 and 4: a copy that may not go in service is not eligible, and says why', () => {
    const { s1, s2 } = inSyncPair();
    const copies: CopyView[] = [{ node: 'S1', generations: s1, state: source('in service') }, { node: 'S2', generations: s2, state: target({ lostSourceInSync: false }) }];
    expect(successorEligibility(copies[1]!, copies)).toEqual({ node: 'S2', eligible: false, reasons: ['source-not-seen'] });
  });

  it('the source wrote after the target was lost: the target is not newest', () => {
    const { s1, s2 } = inSyncPair();
    const copies: CopyView[] = [{ node: 'S1', generations: rotate(s1), state: source('out of service') }, { node: 'S2', generations: s2, state: target() }];
    expect(newestCopies(copies)).toEqual(['S1']);
    expect(successorEligibility(copies[1]!, copies)).toEqual({ node: 'S2', eligible: false, reasons: ['not-newest'] });
  });

  it('split brain: nobody is newest; only an administrator chooses', () => {
    const { s1, s2 } = inSyncPair();
    const copies: CopyView[] = [{ node: 'S1', generations: rotate(s1), state: source('in service') }, { node: 'S2', generations: rotate(s2), state: source('in service') }];
    expect(newestCopies(copies)).toEqual([]);
    expect(successorEligibility(copies[1]!, copies)).toEqual({ node: 'S2', eligible: false, reasons: ['split-brain'] });
  });
});
