// The status display's states, derived from what the agents report (common/resource-state.ts).
import { describe, expect, it } from 'vitest';
import { formatEta, mirrorCell, statusTable } from '../../common/resource-state.js';
import type { ResourceDatabase } from '../../common/resource-database.js';
import { mirror, server, target, view } from '../fixtures/cluster-view.js';

const fsOver = (mounted = true, error = '') => ({ tag: 'ext4-srv', mountPoint: '/srv', fstype: 'ext4', device: '/dev/nbd0', mounted, error });
const db: ResourceDatabase = {
  version: 4,
  resources: [
    { tag: 'datarep-srv', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 10 }, { server: 'n3', priority: 20 }] },
    { tag: 'ext4-srv', kind: 'filesystem', mountPoint: '/srv', fstype: 'ext4', dependsOn: ['datarep-srv'], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 10 }, { server: 'n3', priority: 20 }] },
    { tag: 'app', kind: 'generic', dependsOn: ['ext4-srv'], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 10 }] },
  ],
  flags: [],
};

const texts = (t: ReturnType<typeof statusTable>) => t.rows.map((r, i) => [`${'  '.repeat(r.depth)}${r.tag}`, ...t.cells[i]!.map((c) => (c ? `${c.state} ${c.text}` : ''))]);

describe('status display states', () => {
  it('a hierarchy: application over file system over mirror; Source, Target, Resyncing with progress, empty where undefined', () => {
    const src = mirror('datarep-srv', 'n1', 'source', { fileSystem: fsOver(), targets: [target('n2'), target('n3', { status: 'Resyncing', state: 'resyncing', percentSynced: 37.5, resyncSpeed: 2 << 20, etaSeconds: 75 })] });
    const t = statusTable(view([
      server('n1', [src]),
      server('n2', [mirror('datarep-srv', 'n2', 'target', { source: 'n1' })]),
      server('n3', [mirror('datarep-srv', 'n3', 'target', { state: 'resyncing', consistent: false, source: 'n1' })]),
    ], db));
    expect(texts(t)).toEqual([
      ['app', 'ISP In Service', 'OSS Standby', ''],
      ['  ext4-srv', 'ISP In Service', 'OSS Standby', 'OSU Out of Service'],
      ['    datarep-srv', 'ISP Source', 'OSS Target', 'OSU Resyncing'],
    ]);
    expect(t.cells[2]![2]!.progress).toEqual({ percent: 37.5, speed: 2 << 20, etaSeconds: 75 });
    expect(t.cells[2]![2]!.tone).toBe('busy');
    expect(t.overall.get('app')).toMatchObject({ state: 'ISP', server: 'n1' });
    expect(t.rows.map((r) => [r.key, r.root, r.discovered])).toEqual([['app', 'app', false], ['app/ext4-srv', 'app', false], ['app/ext4-srv/datarep-srv', 'app', false]]);
  });

  it('Paused, Out Of Sync with its reason, split brain, and an unprotected source (ISU)', () => {
    const src = (targets: ReturnType<typeof target>[]) => mirror('v', 'n1', 'source', { targets });
    const tgt = mirror('v', 'n2', 'target');
    expect(mirrorCell(tgt, src([target('n2', { status: 'Paused', state: 'paused' })]))).toMatchObject({ state: 'OSS', role: 'Paused', text: 'Paused', tone: 'warning' });
    expect(mirrorCell(tgt, src([target('n2', { status: 'Out Of Sync', state: 'connecting', lastError: 'connection refused' })])))
      .toMatchObject({ state: 'OSF', role: 'Out Of Sync', detail: 'out of sync from n1: connection refused' });
    expect(mirrorCell(tgt, src([target('n2', { status: 'Split Brain', state: 'split-brain' })]))).toMatchObject({ state: 'OSF', role: 'Out Of Sync', detail: 'split brain from n1' });
    expect(mirrorCell(src([target('n2', { status: 'Out Of Sync' })]), null)).toMatchObject({ state: 'ISU', role: 'Source', tone: 'warning' });
    expect(mirrorCell(src([]), null)).toMatchObject({ state: 'ISU', detail: 'in service with no target: unprotected' });
    expect(mirrorCell(src([target('n2', { status: 'Resyncing' })]), null)).toMatchObject({ state: 'ISP', role: 'Source' });
  });

  it('out of service (OSU), data_corrupt (OSF), starting, and a target whose source is away', () => {
    expect(mirrorCell(mirror('v', 'n1', 'source', { state: 'out of service' }), null)).toMatchObject({ state: 'OSU', role: null, text: 'Out of Service' });
    expect(mirrorCell(mirror('v', 'n1', 'source', { state: 'out of service', dataCorrupt: true }), null)).toMatchObject({ state: 'OSF', tone: 'failed' });
    expect(mirrorCell(mirror('v', 'n1', 'source', { state: 'starting' }), null)).toMatchObject({ state: 'OSU', text: 'Starting' });
    expect(mirrorCell(mirror('v', 'n2', 'target', { state: 'target (source not connected)', consistent: true, lastSource: 'n1' }), null))
      .toMatchObject({ state: 'OSS', role: 'Target', detail: 'in sync (last source n1, not connected); ready to take over' });
    expect(mirrorCell(mirror('v', 'n2', 'target', { state: 'target (source not connected)', consistent: false }), null)).toMatchObject({ state: 'OSF', role: 'Out Of Sync' });
  });

  it('an unreachable server shows Unknown where the resource is defined; the overall state comes from the others', () => {
    const t = statusTable(view([
      server('n1', [], 'unreachable'),
      server('n2', [mirror('datarep-srv', 'n2', 'source', { targets: [target('n3')] })]),
      server('n3', [mirror('datarep-srv', 'n3', 'target', { source: 'n2' })]),
    ], { ...db, resources: db.resources.slice(0, 1) }));
    expect(texts(t)).toEqual([['datarep-srv', 'unknown Unknown', 'ISP Source', 'OSS Target']]);
    expect(t.cells[0]![0]!.detail).toBe('n1 is unreachable');
    expect(t.overall.get('datarep-srv')).toMatchObject({ state: 'ISP', server: 'n2' });
  });

  it('a mounting or failed file system, and mirrors the database does not list yet (found on the agents)', () => {
    const t = statusTable(view([
      server('n1', [mirror('lab', 'n1', 'source', { targets: [target('n2')], fileSystem: fsOver(false, 'mount: wrong fs type') })]),
      server('n2', [mirror('lab', 'n2', 'target')]),
    ]));
    expect(t.rows.map((r) => [r.key, r.kind, r.discovered])).toEqual([['ext4-srv', 'filesystem', true], ['ext4-srv/lab', 'datakeeper', true]]);
    expect(t.rows[1]!.definition.instances).toEqual([{ server: 'n1', priority: 1 }, { server: 'n2', priority: 10 }]);
    expect(texts(t)).toEqual([['ext4-srv', 'OSF Failed', 'OSS Standby'], ['  lab', 'ISP Source', 'OSS Target']]);
    expect(t.cells[0]![0]!.detail).toBe('/srv: mount: wrong fs type');
  });

  it('formats the time left', () => {
    expect([formatEta(null), formatEta(45), formatEta(725), formatEta(7300)]).toEqual(['—', '45s', '12m 5s', '2h 1m']);
  });
});
