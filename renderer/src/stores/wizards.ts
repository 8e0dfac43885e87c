// Which wizard is open, and for what. Menus, right-click menus and toolbars open a wizard with the
// server or resource they were invoked on preselected (the manual skips a dialog when it is).
import { defineStore } from 'pinia';

export type WizardName =
  | 'add-server'
  | 'create-hierarchy'
  | 'extend'
  | 'unextend'
  | 'delete'
  | 'in-service'
  | 'out-of-service'
  | 'create-dependency'
  | 'delete-dependency'
  | 'local-lab'
  | 'rewind';

export interface WizardContext {
  server?: string;
  tag?: string;
}

export const useWizardStore = defineStore('wizards', {
  state: () => ({
    active: null as { name: WizardName; context: WizardContext } | null,
    /** The server whose questions (host key, passwords) the open wizard shows itself (Add Server). */
    promptsFor: null as string | null,
  }),
  actions: {
    open(name: WizardName, context: WizardContext = {}) {
      this.active = { name, context };
    },
    close() {
      this.active = null;
      this.promptsFor = null;
    },
  },
});
