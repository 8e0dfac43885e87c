// The menus (menu bar, right-click menus) as data: what each item says, whether it can be used now and
// what it does. Server and resource items open the wizards with the item's server or resource
// preselected, as the manual's pop-up menus do.
import { useClusterStore } from './stores/cluster.js';
import { useUiStore } from './stores/ui.js';
import { useWizardStore, type WizardName } from './stores/wizards.js';
import { hasWizard, mirrorTarget, useMirrorActions } from './mirror-actions.js';
import type { MenuItem } from './menu-item.js';

export type { MenuItem } from './menu-item.js';

export function useMenus() {
  const cluster = useClusterStore();
  const ui = useUiStore();
  const wizard = useWizardStore();
  const mirror = useMirrorActions();

  const wizardItem = (id: string, label: string, name: WizardName, context: { server?: string; tag?: string }, separatorBefore = false): MenuItem => ({
    id, label, separatorBefore,
    disabled: !hasWizard(name),
    reason: hasWizard(name) ? undefined : 'this wizard is not part of this build',
    action: () => wizard.open(name, context),
  });

  const ctx = (server: string | null, tag: string | null) => ({ ...(server ? { server } : {}), ...(tag ? { tag } : {}) });

  function serverItems(server: string | null): MenuItem[] {
    const view = cluster.cluster?.servers.find((s) => s.name === server);
    const connected = view?.connection.state === 'connected';
    return [
      wizardItem('create-hierarchy', 'Create Resource Hierarchy…', 'create-hierarchy', ctx(server, null)),
      wizardItem('add-server', 'Add Server…', 'add-server', {}),
      {
        id: 'connect', label: 'Connect', separatorBefore: true, disabled: !view || connected,
        reason: !view ? 'select a server first' : 'already connected', action: () => void cluster.connect(server!, true),
      },
      { id: 'disconnect', label: 'Disconnect', disabled: !view || !connected, reason: !view ? 'select a server first' : 'not connected', action: () => void cluster.connect(server!, false) },
      { id: 'server-properties', label: 'Properties', separatorBefore: true, disabled: !view, reason: 'select a server first', action: () => ui.showPropertiesOf(server, null) },
    ];
  }

  function resourceItems(tag: string | null, server: string | null): MenuItem[] {
    const c = ctx(server, tag);
    const items: MenuItem[] = [
      wizardItem('extend', 'Extend Resource Hierarchy…', 'extend', c),
      wizardItem('unextend', 'Unextend Resource Hierarchy…', 'unextend', c),
      wizardItem('delete', 'Delete Resource Hierarchy…', 'delete', c),
      wizardItem('in-service', 'In Service…', 'in-service', c, true),
      wizardItem('out-of-service', 'Out of Service…', 'out-of-service', c),
      wizardItem('create-dependency', 'Create Dependency…', 'create-dependency', c, true),
      wizardItem('delete-dependency', 'Delete Dependency…', 'delete-dependency', c),
    ];
    const m = mirrorTarget(cluster.cluster, tag, server);
    if (m) {
      const noSource = m.source ? undefined : `"${m.tag}" is not in service anywhere`;
      items.push(
        { id: 'pause', label: 'Pause Mirror', separatorBefore: true, disabled: !m.source, reason: noSource, action: () => void mirror.pause(m) },
        { id: 'resume', label: 'Resume Mirror', disabled: !m.source, reason: noSource, action: () => void mirror.resume(m) },
        { id: 'force', label: 'Force Mirror Online…', disabled: !m.server, reason: 'select the server to bring it in service on', action: () => mirror.confirm(m, 'force') },
        { id: 'fullresync', label: 'Full Resync…', disabled: !m.source || !m.server, reason: noSource ?? 'select a server', action: () => mirror.confirm(m, 'fullresync') },
        { id: 'compress', label: 'Set Compression Level…', action: () => mirror.askSetting(m, 'compress') },
        { id: 'logdir', label: 'Set Rewind Log Location…', action: () => mirror.askSetting(m, 'logdir') },
        { id: 'logmax', label: 'Set Rewind Log Max Size…', action: () => mirror.askSetting(m, 'logmax') },
        {
          id: 'bookmarks', label: 'Bookmarks…', disabled: !mirror.bookmarksAvailable(), reason: 'bookmarks come with the rewind log (not in this build)',
          action: () => mirror.openBookmarks(m),
        },
        {
          id: 'rewind', label: 'Rewind and Recover Data…', disabled: !mirror.bookmarksAvailable() || !m.source, reason: noSource ?? 'the rewind wizard is not part of this build',
          action: () => mirror.openBookmarks(m),
        },
      );
    }
    items.push({
      id: 'resource-properties', label: 'Properties', separatorBefore: true, disabled: !tag, reason: 'select a resource first',
      action: () => ui.showPropertiesOf(server, tag, m ? 'replication' : 'general'),
    });
    return items;
  }

  function menuBar(): MenuItem[] {
    const { server, tag } = ui.selection;
    const lab = cluster.cluster?.mode === 'local-lab';
    return [
      {
        id: 'file', label: 'File', submenu: [
          wizardItem('file-add-server', 'Add Server…', 'add-server', {}),
          {
            id: 'open-lab', label: 'Open Local Lab…', disabled: lab, reason: 'the local lab is open',
            action: () => (hasWizard('local-lab') ? wizard.open('local-lab') : void cluster.openLocalLab(3)),
          },
          { id: 'close-lab', label: 'Close Local Lab', disabled: !lab, reason: 'the local lab is not open', action: () => void cluster.closeLocalLab() },
          { id: 'refresh', label: 'Refresh', separatorBefore: true, action: () => void cluster.refresh() },
        ],
      },
      {
        id: 'edit', label: 'Edit', submenu: [
          { id: 'edit-server', label: 'Server', submenu: serverItems(server) },
          { id: 'edit-resource', label: 'Resource', submenu: resourceItems(tag, server) },
        ],
      },
      {
        id: 'view', label: 'View', submenu: [
          { id: 'view-properties', label: 'Properties Panel', checked: ui.showProperties, action: () => ui.toggleProperties() },
          { id: 'view-output', label: 'Output Panel', checked: ui.showOutput, action: () => ui.toggleOutput() },
        ],
      },
      { id: 'help', label: 'Help', submenu: [{ id: 'about', label: 'About Tandem', action: () => ui.open({ kind: 'about' }) }] },
    ];
  }

  return { menuBar, serverItems, resourceItems };
}
