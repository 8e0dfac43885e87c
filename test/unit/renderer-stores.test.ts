// The renderer's Pinia stores (cluster, ui, metrics, wizards), its menus and mirror actions, driven
// through the same console API transport the page uses — here wired to a real ConsoleBackend (and, for
// the mirror actions, real agents of the local lab).
import fs from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPinia, setActivePinia } from 'pinia';
import { ConsoleBackend } from '../../electron/backend/console-backend.js';
import { parseConsoleCall, type ConsoleEvent, type OutputEntry } from '../../common/console-api.js';
import { AGENT_BUNDLE, tempDir } from '../helpers/tools.js';
import { mirror, server, target, view } from '../fixtures/cluster-view.js';

const dataDir = tempDir('renderer-stores');
const backend = new ConsoleBackend({ dataDir, agentBundle: AGENT_BUNDLE });
// The page's transport (window.tandem, as the preload exposes it), calling the backend after the same
// validation the IPC handlers and the browser-mode server do.
(globalThis as unknown as { tandem: unknown }).tandem = {
  call: (method: string, args: unknown[]) => {
    const c = parseConsoleCall(method, args);
    return (backend as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[c.method]!.apply(backend, c.args);
  },
  onEvent: (listener: (e: ConsoleEvent) => void) => backend.onEvent(listener),
};

type Stores = typeof import('../../renderer/src/stores/cluster.js') & typeof import('../../renderer/src/stores/ui.js')
  & typeof import('../../renderer/src/stores/metrics.js') & typeof import('../../renderer/src/stores/wizards.js')
  & typeof import('../../renderer/src/menus.js') & typeof import('../../renderer/src/mirror-actions.js')
  & { wizards: typeof import('../../renderer/src/wizards/registry.js').wizards };
let s: Stores;

beforeAll(async () => {
  s = {
    ...(await import('../../renderer/src/stores/cluster.js')), ...(await import('../../renderer/src/stores/ui.js')),
    ...(await import('../../renderer/src/stores/metrics.js')), ...(await import('../../renderer/src/stores/wizards.js')),
    ...(await import('../../renderer/src/menus.js')), ...(await import('../../renderer/src/mirror-actions.js')),
    wizards: (await import('../../renderer/src/wizards/registry.js')).wizards,
  } as Stores;
});
beforeEach(() => setActivePinia(createPinia()));
afterAll(async () => {
  await backend.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const labView = () => view([
  server('n1', [mirror('vol', 'n1', 'source', { targets: [target('n2'), target('n3', { status: 'Paused', state: 'paused' })], fileSystem: { tag: 'ext4-vol', mountPoint: '/vol', fstype: 'ext4', device: '/dev/nbd0', mounted: true, error: '' } })]),
  server('n2', [mirror('vol', 'n2', 'target')]),
  server('n3', [mirror('vol', 'n3', 'target')]),
]);

describe('cluster store', () => {
  it('starts from the backend, follows cluster events into the status table, and keeps the output bounded', async () => {
    const cluster = s.useClusterStore();
    await cluster.start();
    expect(cluster.cluster?.name).toBe('No cluster');
    expect(cluster.table.rows).toEqual([]);
    cluster.apply({ type: 'cluster', cluster: labView() });
    expect(cluster.table.rows.map((r) => r.key)).toEqual(['ext4-vol', 'ext4-vol/vol']);
    expect(cluster.table.cells[1]!.map((c) => c?.text)).toEqual(['Source', 'Target', 'Paused']);
    const entry: OutputEntry = { time: 1, server: 'n1', action: 'Pause Mirror', command: 'mirror_action vol pause', ok: true, message: 'done' };
    for (let i = 0; i < s.MAX_OUTPUT_ENTRIES + 20; i++) cluster.apply({ type: 'output', entry: { ...entry, time: i } });
    expect(cluster.output.length).toBe(s.MAX_OUTPUT_ENTRIES);
    expect(cluster.output[0]!.time).toBe(20);
    cluster.apply({ type: 'prompt', prompt: { id: 'p1', server: 'n1', kind: 'host-key', message: 'trust?' } });
    cluster.apply({ type: 'prompt-closed', id: 'p1' });
    expect(cluster.prompts).toEqual([]);
  });

  it('a refused action shows its error, named by the action, and reports failure', async () => {
    const cluster = s.useClusterStore();
    expect(await cluster.agentAction('Pause Mirror vol', 'n9', 'mirror.pause', { tag: 'vol' })).toBe(false);
    expect(cluster.error).toBe('Pause Mirror vol: no server "n9" in the cluster; servers: none');
    expect(await cluster.saveResources('Priorities of vol', { version: 0, resources: [], flags: [] })).toBe(false);
    expect(cluster.error).toBe('Priorities of vol: no server is connected: the resource database lives on the servers; connect to at least one first');
    expect(cluster.busy).toBe('');
  });
});

describe('ui store', () => {
  it('selection, panels, dialogs and folded hierarchies', () => {
    const ui = s.useUiStore();
    ui.tab = 'replication';
    ui.select('n2', 'vol');
    expect([ui.selection, ui.tab]).toEqual([{ server: 'n2', tag: 'vol' }, 'replication']);
    ui.select('n3', null);
    expect(ui.tab).toBe('general');
    ui.showProperties = false;
    ui.showPropertiesOf('n1', 'vol', 'equivalencies');
    expect([ui.showProperties, ui.tab, ui.selection]).toEqual([true, 'equivalencies', { server: 'n1', tag: 'vol' }]);
    ui.toggleOutput();
    expect(ui.showOutput).toBe(false);
    ui.toggleCollapsed('ext4-vol');
    ui.toggleCollapsed('other');
    ui.toggleCollapsed('ext4-vol');
    expect(ui.collapsed).toEqual(['other']);
    ui.open({ kind: 'about' });
    ui.closeDialog();
    expect(ui.dialog).toBeNull();
  });
});

describe('metrics store', () => {
  it('turns the agents’ byte counters into a rate and keeps the queue depth, bounded', () => {
    const metrics = s.useMetricsStore();
    const at = (bytesSent: number, queueDepth: number) => view([server('n1', [mirror('vol', 'n1', 'source', { targets: [target('n2', { bytesSent, queueDepth })] })])]);
    metrics.record(at(1000, 0), 10_000);
    expect(metrics.series('vol', 'n2')?.time).toEqual([]); // the first push only sets the counter
    metrics.record(at(1000 + 2 * 1048576, 7), 12_000);
    metrics.record(at(500, 3), 13_000); // the agent restarted: its counter began again
    expect(metrics.series('vol', 'n2')).toMatchObject({ time: [12, 13], rate: [1048576, 500], queue: [7, 3] });
    for (let i = 0; i < s.MAX_SAMPLES + 5; i++) metrics.record(at(500 + i, 1), 14_000 + i * 1000);
    expect(metrics.series('vol', 'n2')!.time.length).toBe(s.MAX_SAMPLES);
    expect(metrics.revision).toBe(s.MAX_SAMPLES + 8);
  });
});

describe('menus', () => {
  it('the Resource menu preselects the selected resource and server; wizards not in the build are disabled with a reason', () => {
    const cluster = s.useClusterStore();
    const ui = s.useUiStore();
    cluster.apply({ type: 'cluster', cluster: labView() });
    ui.select('n2', 'ext4-vol');
    const resource = s.useMenus().menuBar().find((m) => m.id === 'edit')!.submenu!.find((m) => m.id === 'edit-resource')!.submenu!;
    const extend = resource.find((m) => m.id === 'extend')!;
    const registered = s.hasWizard('extend');
    expect(extend.disabled).toBe(!registered);
    if (!registered) expect(extend.reason).toBe('this wizard is not part of this build');
    // A file system resource over a mirror carries the mirror's actions.
    expect(resource.filter((m) => !m.disabled).map((m) => m.label)).toEqual(expect.arrayContaining(['Pause Mirror', 'Resume Mirror', 'Force Mirror Online…', 'Set Compression Level…', 'Properties']));
    // Once a wizard is registered, the item opens it with the selection as its context.
    const saved = s.wizards.extend;
    s.wizards.extend = {};
    try {
      const item = s.useMenus().resourceItems('ext4-vol', 'n2').find((m) => m.id === 'extend')!;
      expect(item.disabled).toBe(false);
      item.action!();
      expect(s.useWizardStore().active).toEqual({ name: 'extend', context: { server: 'n2', tag: 'ext4-vol' } });
    } finally {
      if (saved) s.wizards.extend = saved;
      else delete s.wizards.extend;
    }
    const view = s.useMenus().menuBar().find((m) => m.id === 'view')!.submenu!;
    expect(view.map((m) => [m.label, m.checked])).toEqual([['Properties Panel', true], ['Output Panel', true]]);
    view[1]!.action!();
    expect(ui.showOutput).toBe(false);
  });

  it('the server menu: Connect/Disconnect follow the connection state', () => {
    const cluster = s.useClusterStore();
    cluster.apply({ type: 'cluster', cluster: view([server('n1', []), server('n2', [], 'unreachable')]) });
    const items = (name: string) => Object.fromEntries(s.useMenus().serverItems(name).map((m) => [m.id, !m.disabled]));
    expect(items('n1')).toMatchObject({ connect: false, disconnect: true, 'server-properties': true });
    expect(items('n2')).toMatchObject({ connect: true, disconnect: false });
  });

  it('mirrorTarget: a file system acts on its mirror; a target cell narrows pause/resume to that target', () => {
    expect(s.mirrorTarget(labView(), 'ext4-vol', 'n3')).toMatchObject({ tag: 'vol', source: 'n1', targets: ['n3'], server: 'n3', holders: ['n1', 'n2', 'n3'] });
    expect(s.mirrorTarget(labView(), 'vol', 'n1')).toMatchObject({ targets: [] });
    expect(s.mirrorTarget(labView(), 'nothing', 'n1')).toBeNull();
  });
});

describe('mirror actions against real agents', () => {
  it('pause and resume of one target and a setting on every server, each in the output with its command', async () => {
    await backend.openLocalLab(2);
    const [n1, n2] = backend.labNodes();
    await backend.agentCall('node1', 'mirror.create', { tag: 'uvol', disk: n1!.disks[0] });
    await backend.agentCall('node2', 'mirror.accept', { tag: 'uvol', disk: n2!.disks[0] });
    await backend.agentCall('node1', 'mirror.extend', { tag: 'uvol', node: 'node2', address: n2!.replication, mode: 'sync', initialSync: 'none' });
    const cluster = s.useClusterStore();
    await cluster.refresh();
    for (let i = 0; i < 100 && !cluster.cluster?.servers.every((x) => x.mirrors.length === 1); i++) {
      await new Promise((r) => setTimeout(r, 200));
      await cluster.refresh();
    }
    const m = s.mirrorTarget(cluster.cluster, 'uvol', 'node2')!;
    expect(m).toMatchObject({ tag: 'uvol', source: 'node1', targets: ['node2'] });
    const actions = s.useMirrorActions();
    await actions.pause(m);
    expect((await backend.agentCall('node1', 'mirror.status', { tag: 'uvol' }) as Array<{ targets: Array<{ status: string }> }>)[0]!.targets[0]!.status).toBe('Paused');
    await actions.resume(m);
    await actions.setting(m, 'compress', '4');
    const out = (await backend.output()).map((e) => [e.server, e.action, e.command, e.ok]);
    expect(out).toEqual(expect.arrayContaining([
      ['node1', 'Pause Mirror', 'mirror_action uvol pause node2', true],
      ['node1', 'Resume Mirror', 'mirror_action uvol resume node2', true],
      ['node1', 'Set Compression Level', 'mirror_settings uvol compress 4', true],
      ['node2', 'Set Compression Level', 'mirror_settings uvol compress 4', true],
    ]));
    expect(cluster.error).toBe('');
    // Not in service anywhere: the action says so instead of calling an agent.
    await actions.pause({ ...m, source: null });
    expect(cluster.error).toBe('Pause Mirror: "uvol" is not in service anywhere; bring it in service first');
  });
});
