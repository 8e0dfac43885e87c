// The manual's GUI mirror administration (Pause and Resume, Force Mirror Online, Full Resync, Set
// Compression Level, Set Rewind Log Location / Max Size, Bookmarks) as agent calls, shared by the
// mirror toolbar and the right-click menus. Each call lands in the Output Panel with its CLI command.
import type { ClusterView } from '../../common/console-api.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { useClusterStore } from './stores/cluster.js';
import { useUiStore } from './stores/ui.js';
import { useWizardStore } from './stores/wizards.js';
import { wizards } from './wizards/registry.js';

/** The mirror an action on (tag, server) works on: a file system resource acts on its DataKeeper resource. */
export interface MirrorTarget {
  /** The DataKeeper resource's tag (the mirror's). */
  tag: string;
  /** Where the mirror is in service now (actions that change the mirror run there), or null. */
  source: string | null;
  /** The selected server when it holds a target copy: pause/resume/full resync act on that target only. */
  targets: string[];
  /** The selected server (Force Mirror Online runs there). */
  server: string | null;
  /** Every connected server holding a copy (mirror_settings runs on all, as the manual advises). */
  holders: string[];
  sourceStatus: MirrorStatus | null;
}

export function mirrorTarget(cluster: ClusterView | null, tag: string | null, server: string | null): MirrorTarget | null {
  if (!cluster || !tag) return null;
  // A file system (or any resource) over a DataKeeper resource: follow the first dependency down.
  let dk = tag;
  const byTag = new Map(cluster.resources.resources.map((r) => [r.tag, r]));
  const copies = (t: string) => cluster.servers.flatMap((s) => s.mirrors.filter((m) => m.tag === t));
  for (let i = 0; i < 64 && copies(dk).length === 0; i++) {
    const below = byTag.get(dk)?.dependsOn[0] ?? cluster.servers.flatMap((s) => s.mirrors).find((m) => m.fileSystem?.tag === dk)?.tag;
    if (!below) return null;
    dk = below;
  }
  const all = copies(dk);
  if (all.length === 0) return null;
  const source = all.find((m) => m.role === 'source' && m.state === 'in service') ?? null;
  const selected = all.find((m) => m.node === server);
  return {
    tag: dk, source: source?.node ?? null, server, sourceStatus: source,
    targets: selected?.role === 'target' ? [selected.node] : [],
    holders: cluster.servers.filter((s) => s.agent.running && s.mirrors.some((m) => m.tag === dk)).map((s) => s.name),
  };
}

export const hasWizard = (name: keyof typeof wizards): boolean => wizards[name] !== undefined;

export function useMirrorActions() {
  const cluster = useClusterStore();
  const ui = useUiStore();
  const wizard = useWizardStore();
  const needSource = (m: MirrorTarget, what: string): string | null => {
    if (m.source) return m.source;
    cluster.error = `${what}: "${m.tag}" is not in service anywhere; bring it in service first`;
    return null;
  };
  const who = (m: MirrorTarget) => (m.targets.length ? ` (${m.targets.join(', ')})` : '');
  return {
    async pause(m: MirrorTarget) {
      const s = needSource(m, 'Pause Mirror');
      if (s) await cluster.agentAction(`Pause Mirror ${m.tag}${who(m)}`, s, 'mirror.pause', { tag: m.tag, targets: m.targets });
    },
    async resume(m: MirrorTarget) {
      const s = needSource(m, 'Resume Mirror');
      if (s) await cluster.agentAction(`Resume Mirror ${m.tag}${who(m)}`, s, 'mirror.resume', { tag: m.tag, targets: m.targets });
    },
    async fullResync(m: MirrorTarget) {
      const s = needSource(m, 'Full Resync');
      if (s) await cluster.agentAction(`Full Resync ${m.tag}${who(m)}`, s, 'mirror.fullresync', { tag: m.tag, targets: m.targets });
    },
    /** Clears data_corrupt and brings the mirror in service on the selected server (manual: Force Mirror Online). */
    async forceOnline(m: MirrorTarget) {
      if (!m.server) return;
      await cluster.agentAction(`Force Mirror Online ${m.tag} on ${m.server}`, m.server, 'mirror.inservice', { tag: m.tag, force: true });
    },
    /** mirror_settings on every server holding a copy; effective after the next pause and resume. */
    async setting(m: MirrorTarget, setting: 'compress' | 'logdir' | 'logmax', value: string) {
      for (const server of m.holders) {
        await cluster.agentAction(`Set ${setting} of ${m.tag} on ${server}`, server, 'mirror.settings', { tag: m.tag, setting, value });
      }
    },
    askSetting(m: MirrorTarget, setting: 'compress' | 'logdir' | 'logmax') {
      ui.open({ kind: 'setting', setting, tag: m.tag });
    },
    confirm(m: MirrorTarget, action: 'force' | 'fullresync') {
      if (m.server) ui.open({ kind: 'confirm', action, tag: m.tag, server: m.server });
    },
    /** Bookmarks (the manual's "Create and View Rewind Bookmarks") are listed and made in the rewind wizard's first dialog. */
    bookmarksAvailable: () => hasWizard('rewind'),
    openBookmarks(m: MirrorTarget) {
      wizard.open('rewind', { tag: m.tag, server: m.server ?? m.source ?? undefined });
    },
  };
}
