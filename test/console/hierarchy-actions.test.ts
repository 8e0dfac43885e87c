// The wizards' actions through the console API against real agents of the local lab: create a
// DataKeeper resource, extend it to two targets (sync and async), write through the source's export,
// switch over with In Service, unextend and delete — with the resource database and the Output Panel
// checked as a user would see them, and each refusal worded with its reason.
import { describe, expect, it } from 'vitest';
import type { ClusterView } from '../../common/console-api.js';
import type { DiskCandidate } from '../../common/hierarchy.js';
import { extendDefaults } from '../../common/wizard-rules.js';
import { nbdUri, run, sha256File } from '../helpers/tools.js';
import { startLabBackend } from '../helpers/lab-backend.js';

const { backend } = startLabBackend('console-hierarchy');

async function waitCluster(ok: (c: ClusterView) => boolean, what: string, timeoutMs = 90_000): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await backend.cluster();
    if (ok(c)) return c;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; cluster: ${JSON.stringify(c.servers.map((s) => [s.name, s.mirrors]))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const mirrorOn = (c: ClusterView, server: string, tag: string) => c.servers.find((s) => s.name === server)?.mirrors.find((m) => m.tag === tag);

async function extendForm(tag: string, template: string, target: string, targets = 0) {
  const cluster = await waitCluster((c) => mirrorOn(c, template, tag)?.role === 'source' && mirrorOn(c, template, tag)!.targets.length === targets, `${tag} on ${template} with ${targets} targets`);
  const db = await backend.resourceDatabase();
  const disks = ((await backend.agentCall(target, 'resource.disks', {})) as { disks: DiskCandidate[] }).disks;
  const info = (await backend.agentCall(target, 'agent.info', {})) as { bitmapDir: string };
  return extendDefaults({ cluster, db, targetDisks: disks, targetBitmapDir: info.bitmapDir }, template, tag, target);
}

describe('hierarchy actions on the local lab', () => {
  it('create, extend sync and async, write, switch over, unextend, delete', async () => {
    await backend.openLocalLab(3);
    const [n1, n2, n3] = backend.labNodes();
    // The lab's agents offer their image files, never this machine's disks.
    const disks = ((await backend.agentCall('node1', 'resource.disks', {})) as { disks: DiskCandidate[] }).disks;
    expect(disks.map((d) => [d.path, d.kind, d.eligible])).toEqual([[n1!.disks[0], 'file', true], [n1!.disks[1], 'file', true]]);

    const created = await backend.createHierarchy({
      type: 'device', switchback: 'intelligent', server: 'node1', sourceDisk: n1!.disks[0], dataKeeperTag: 'datarep-lab',
      bitmapFile: `${n1!.home}/state/bitmaps/datarep-lab.bitmap`, asyncReplication: true,
    });
    expect(created.tag).toBe('datarep-lab');
    expect(created.warning).toBe('');
    // A used tag is refused beside its field before any node is touched.
    await expect(backend.createHierarchy({
      type: 'device', switchback: 'intelligent', server: 'node2', sourceDisk: n2!.disks[1], dataKeeperTag: 'datarep-lab', bitmapFile: 'none', asyncReplication: false,
    })).rejects.toThrow('dataKeeperTag: DataKeeper Resource Tag "datarep-lab" is already used in this cluster');

    // The disk in use is now ineligible, with its reason.
    const after = ((await backend.agentCall('node1', 'resource.disks', {})) as { disks: DiskCandidate[] }).disks;
    expect(after[0]!.reasons).toEqual(['already protected by Tandem (a mirror, target or NetRAID device)']);

    const first = await extendForm('datarep-lab', 'node1', 'node2');
    expect(first).toMatchObject({ templatePriority: 1, targetPriority: 2, targetDisk: n2!.disks[0], dataKeeperTag: 'datarep-lab', pairs: [{ other: 'node1', addresses: ['127.0.0.1', '127.0.0.1'], mode: 'sync' }] });
    await backend.extendHierarchy(first);
    const second = await extendForm('datarep-lab', 'node1', 'node3', 1);
    // Not the first extend: no template priority; a pair for every existing server.
    expect(second.templatePriority).toBeNull();
    expect(second.targetPriority).toBe(3);
    expect(second.pairs.map((p) => p.other)).toEqual(['node1', 'node2']);
    // Priority in use → refused, naming who holds it.
    await expect(backend.extendHierarchy({ ...second, targetPriority: 2 })).rejects.toThrow('targetPriority: priority 2 is already used by node2 for "datarep-lab"');
    await backend.extendHierarchy({ ...second, pairs: second.pairs.map((p) => ({ ...p, mode: 'async' as const })) });

    const db = await backend.resourceDatabase();
    expect(db.resources).toEqual([{ tag: 'datarep-lab', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'node1', priority: 1 }, { server: 'node2', priority: 2 }, { server: 'node3', priority: 3 }] }]);

    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 8M', '-c', 'write -P 0xa5 200M 2M', nbdUri(created.export, 'datarep-lab')]);
    expect(w.code, w.stderr).toBe(0);
    const synced = await waitCluster((c) => {
      const m = mirrorOn(c, 'node1', 'datarep-lab');
      return !!m && m.targets.length === 2 && m.targets.every((t) => t.status === 'Fully Operational' && t.queueDepth === 0 && t.dirtyChunks === 0);
    }, 'both targets Fully Operational');
    expect(mirrorOn(synced, 'node1', 'datarep-lab')!.targets.map((t) => [t.node, t.mode])).toEqual([['node2', 'sync'], ['node3', 'async']]);
    expect(sha256File(n2!.disks[0]!)).toBe(sha256File(n1!.disks[0]!));
    expect(sha256File(n3!.disks[0]!)).toBe(sha256File(n1!.disks[0]!));

    // Unextending the server where it is in service is refused with the way out.
    await expect(backend.unextendHierarchy('datarep-lab', 'node1')).rejects.toThrow('node1 is where "datarep-lab" is in service; it cannot be unextended there');

    // Switchover: In Service on node2.
    const sw = await backend.inService('datarep-lab', 'node2');
    expect(sw.message).toContain('switched over');
    const swapped = await waitCluster((c) => mirrorOn(c, 'node2', 'datarep-lab')?.state === 'in service' && mirrorOn(c, 'node1', 'datarep-lab')?.role === 'target', 'node2 in service, node1 its target');
    expect(mirrorOn(swapped, 'node2', 'datarep-lab')!.role).toBe('source');
    // node3 learned the members when node3 was added: the new source replicates to both others.
    await waitCluster((c) => mirrorOn(c, 'node2', 'datarep-lab')?.targets.map((t) => t.node).sort().join() === 'node1,node3', 'node2 replicating to node1 and node3');

    await backend.unextendHierarchy('datarep-lab', 'node3');
    await waitCluster((c) => !mirrorOn(c, 'node3', 'datarep-lab'), 'node3 released');
    expect((await backend.resourceDatabase()).resources[0]!.instances.map((i: { server: string }) => i.server)).toEqual(['node1', 'node2']);

    const del = await backend.deleteHierarchy('datarep-lab');
    expect(del.removed).toEqual(['datarep-lab']);
    await waitCluster((c) => c.servers.every((s) => s.mirrors.length === 0), 'no mirror left');
    expect((await backend.resourceDatabase()).resources).toEqual([]);

    // The wizards' own entries (each agent call has its entry too, with the message "done").
    const out = (await backend.output()).filter((e) => e.action !== 'Save resource database' && e.message !== 'done');
    expect(out.map((e) => [e.action, e.ok])).toEqual([
      ['Open Local Lab', true],
      ['Create Resource Hierarchy', true],
      ['Extend Resource Hierarchy to node2', true],
      ['Extend Resource Hierarchy to node3', true],
      ['In Service (switchover from node1)', true],
      ['Unextend Resource Hierarchy', true],
      ['Delete Resource Hierarchy', true],
    ]);
    expect((await backend.output()).map((e) => e.command)).toContain('tandem inservice datarep-lab');
  });

  it('asynchronous replication is refused for a hierarchy created without it', async () => {
    const [n1] = backend.labNodes();
    await backend.createHierarchy({ type: 'device', switchback: 'intelligent', server: 'node1', sourceDisk: n1!.disks[1], dataKeeperTag: 'syncvol', bitmapFile: 'none', asyncReplication: false });
    const form = await extendForm('syncvol', 'node1', 'node2');
    expect(form.bitmapFile).toBe('none');
    await expect(backend.extendHierarchy({ ...form, pairs: form.pairs.map((p) => ({ ...p, mode: 'async' as const })) }))
      .rejects.toThrow('"syncvol" was created without asynchronous replication; choose synchronous');
    // Not the template server → the manual's error.
    await expect(backend.extendHierarchy({ ...form, templateServer: 'node3', targetServer: 'node2' })).rejects.toThrow('"syncvol" is not in service on node3 (it is in service on node1)');
    await backend.deleteHierarchy('syncvol');
  });
});
