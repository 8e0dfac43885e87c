// The local lab through the console API: the embedded default a new user gets. Real agents on
// loopback (mutual TLS), a mirror created and extended to two targets by agentCall, data written
// through the source's NBD export with qemu-io, and the status arriving through the event stream.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OutputEntry } from '../../common/console-api.js';
import { nbdUri, run, sha256File } from '../helpers/tools.js';
import { startLabBackend } from '../helpers/lab-backend.js';

const { backend, waitCluster } = startLabBackend('console-lab');

describe('local lab', () => {
  it('starts three agents, creates and extends a mirror, and the data is equal everywhere', async () => {
    const cluster = await backend.openLocalLab(3);
    expect(cluster.mode).toBe('local-lab');
    expect(cluster.servers.map((s) => [s.name, s.connection.state, s.agent.running])).toEqual([
      ['node1', 'connected', true], ['node2', 'connected', true], ['node3', 'connected', true],
    ]);
    const [n1, n2, n3] = backend.labNodes();
    const created = (await backend.agentCall('node1', 'mirror.create', { tag: 'labvol', disk: n1!.disks[0] })) as { export: string };
    expect(created.export).toBe(path.join(n1!.home, 'run', 'labvol.nbd.sock'));
    await backend.agentCall('node2', 'mirror.accept', { tag: 'labvol', disk: n2!.disks[0] });
    await backend.agentCall('node3', 'mirror.accept', { tag: 'labvol', disk: n3!.disks[0] });
    await backend.agentCall('node1', 'mirror.extend', { tag: 'labvol', node: 'node2', address: n2!.replication, mode: 'sync' });
    await backend.agentCall('node1', 'mirror.extend', { tag: 'labvol', node: 'node3', address: n3!.replication, mode: 'async' });

    const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4M', '-c', 'write -P 0xa5 100M 3M', '-c', 'write -P 0x11 255M 1M', nbdUri(created.export, 'labvol')]);
    expect(w.code, w.stderr).toBe(0);

    const inSync = await waitCluster((c) => {
      const m = c.servers.find((s) => s.name === 'node1')?.mirrors.find((x) => x.tag === 'labvol');
      return !!m && m.targets.length === 2 && m.targets.every((t) => t.status === 'Fully Operational' && t.dirtyChunks === 0 && t.queueDepth === 0);
    }, 'both targets Fully Operational');
    const source = inSync.servers.find((s) => s.name === 'node1')!.mirrors[0]!;
    expect(source.targets.map((t) => [t.node, t.mode])).toEqual([['node2', 'sync'], ['node3', 'async']]);
    // The targets' view arrives too: each says it is a target of node1.
    await waitCluster((c) => ['node2', 'node3'].every((n) => c.servers.find((s) => s.name === n)?.mirrors[0]?.source === 'node1'), 'targets see their source');

    const want = sha256File(n1!.disks[0]!);
    expect(sha256File(n2!.disks[0]!)).toBe(want);
    expect(sha256File(n3!.disks[0]!)).toBe(want);

    const output = (await backend.output()).map((e: OutputEntry) => [e.server, e.command, e.ok]);
    expect(output).toContainEqual(['node1', `tandem extend labvol --target node2 --address ${n2!.replication} --mode sync`, true]);
  });

  it('a refused call is an error naming the problem, recorded in the output', async () => {
    await expect(backend.agentCall('node2', 'mirror.create', { tag: 'labvol', disk: '/nonexistent/disk' })).rejects.toThrow(/already exists|nonexistent/);
    await expect(backend.agentCall('node9', 'mirror.status', {})).rejects.toThrow('no server "node9" in the cluster; servers: node1, node2, node3');
    const last = (await backend.output()).at(-1)!;
    expect(last.ok).toBe(false);
  });

  it('closing the lab stops its agents; reopening finds the mirror where it was', async () => {
    const agentHome = backend.labNodes()[0]!.home;
    await backend.closeLocalLab();
    expect((await backend.cluster()).mode).toBe('none');
    expect(fs.existsSync(path.join(agentHome, 'run', 'control.sock'))).toBe(false);
    await backend.openLocalLab(3);
    const m = (await backend.agentCall('node1', 'mirror.status', { tag: 'labvol' })) as Array<{ targets: unknown[] }>;
    expect(m[0]!.targets).toHaveLength(2);
  });
});
