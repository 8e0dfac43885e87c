// What the window shows besides the cluster: which server or resource is selected (the Properties
// Panel shows it, menus act on it), which panels are open, and the small dialogs.
import { defineStore } from 'pinia';
import type { MenuItem } from '../menu-item.js';

export type PropertiesTab = 'general' | 'relations' | 'equivalencies' | 'replication';

/** A mirror setting asked for in a small dialog (the manual's Set … toolbar actions). */
export type SettingKind = 'compress' | 'logdir' | 'logmax';

export type Dialog =
  | { kind: 'about' }
  | { kind: 'setting'; setting: SettingKind; tag: string }
  | { kind: 'confirm'; action: 'force' | 'fullresync'; tag: string; server: string };

export interface Selection {
  server: string | null;
  /** The resource's tag; with `server`, one cell of the grid. */
  tag: string | null;
}

export const useUiStore = defineStore('ui', {
  state: () => ({
    selection: { server: null, tag: null } as Selection,
    showProperties: true,
    showOutput: true,
    tab: 'general' as PropertiesTab,
    dialog: null as Dialog | null,
    /** The open right-click menu, where it was opened. */
    menu: null as { x: number; y: number; label: string; items: MenuItem[] } | null,
    /** Hierarchy rows folded in the tree (their resources hidden in the grid too). */
    collapsed: [] as string[],
  }),
  actions: {
    select(server: string | null, tag: string | null) {
      // Selecting a resource keeps the tab; selecting a server alone shows its General tab.
      if (!tag) this.tab = 'general';
      this.selection = { server, tag };
    },
    /** Right-click → Properties, or a click with the panel closed: open it on this selection. */
    showPropertiesOf(server: string | null, tag: string | null, tab?: PropertiesTab) {
      this.select(server, tag);
      if (tab) this.tab = tab;
      this.showProperties = true;
    },
    toggleProperties() {
      this.showProperties = !this.showProperties;
    },
    toggleOutput() {
      this.showOutput = !this.showOutput;
    },
    openMenu(x: number, y: number, label: string, items: MenuItem[]) {
      this.menu = { x, y, label, items };
    },
    closeMenu() {
      this.menu = null;
    },
    toggleCollapsed(rowKey: string) {
      this.collapsed = this.collapsed.includes(rowKey) ? this.collapsed.filter((k) => k !== rowKey) : [...this.collapsed, rowKey];
    },
    open(dialog: Dialog) {
      this.dialog = dialog;
    },
    closeDialog() {
      this.dialog = null;
    },
  },
});
