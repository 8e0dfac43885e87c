// The cluster as the window shows it: servers, their connection state and mirrors, the resource
// database, kept live by the backend's events; questions (prompts) waiting for the user; the output log.
import { defineStore } from 'pinia';
import { markRaw } from 'vue';
import type { ClusterView, OutputEntry, Prompt, PromptAnswer } from '../../../common/console-api.js';
import type { ResourceDatabase } from '../../../common/resource-database.js';
import { statusTable, type StatusTable } from '../../../common/resource-state.js';
import { api, onConsoleEvent } from '../api.js';
import { useMetricsStore } from './metrics.js';

/** Entries kept in the Output Panel (the backend keeps its own, longer log). */
export const MAX_OUTPUT_ENTRIES = 500;

export const useClusterStore = defineStore('cluster', {
  state: () => ({
    // Replaced whole by every event and never changed in place, so not made deeply reactive (markRaw):
    // with 10 000 cells the proxies would cost more than the rendering.
    cluster: null as ClusterView | null,
    prompts: [] as Prompt[],
    output: [] as OutputEntry[],
    error: '',
    busy: '',
    /** Set once the event stream is subscribed (start() runs once). */
    started: false,
  }),
  getters: {
    /** The status display (tree + grid), derived once per cluster event. */
    table(state): StatusTable {
      return statusTable(state.cluster ?? { servers: [], resources: { version: 0, resources: [], flags: [] } });
    },
    resources(state): ResourceDatabase {
      return state.cluster?.resources ?? { version: 0, resources: [], flags: [] };
    },
  },
  actions: {
    async start() {
      if (this.started) return;
      this.started = true;
      onConsoleEvent((e) => this.apply(e));
      await this.run('Connecting to the console backend', async () => {
        this.cluster = markRaw(await api.cluster());
        this.output = (await api.output()).slice(-MAX_OUTPUT_ENTRIES);
      });
    },
    apply(e: import('../../../common/console-api.js').ConsoleEvent) {
      if (e.type === 'cluster') {
        this.cluster = markRaw(e.cluster);
        useMetricsStore().record(e.cluster);
      } else if (e.type === 'prompt') this.prompts.push(e.prompt);
      else if (e.type === 'prompt-closed') this.prompts = this.prompts.filter((p) => p.id !== e.id);
      else if (e.type === 'output') {
        this.output.push(e.entry);
        if (this.output.length > MAX_OUTPUT_ENTRIES) this.output.splice(0, this.output.length - MAX_OUTPUT_ENTRIES);
      }
    },
    /** Runs one user action; its error is shown (and the backend records it in the Output Panel). */
    async run<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
      this.busy = what;
      this.error = '';
      try {
        return await work();
      } catch (err) {
        this.error = `${what}: ${(err as Error).message}`;
        return undefined;
      } finally {
        this.busy = '';
      }
    },
    async refresh() {
      const c = await this.run('Refresh', () => api.cluster());
      if (c) this.cluster = markRaw(c);
    },
    async openLocalLab(nodes: number) {
      const c = await this.run('Open Local Lab', () => api.openLocalLab(nodes));
      if (c) this.cluster = markRaw(c);
    },
    async closeLocalLab() {
      const c = await this.run('Close Local Lab', () => api.closeLocalLab());
      if (c) this.cluster = markRaw(c);
    },
    async connect(server: string, connect: boolean) {
      await this.run(connect ? `Connect to ${server}` : `Disconnect from ${server}`, () => (connect ? api.connect(server) : api.disconnect(server)));
    },
    /** One agent call from the GUI (mirror toolbar, context menus); true if it succeeded. */
    async agentAction(label: string, server: string, method: string, params: Record<string, unknown>): Promise<boolean> {
      const r = await this.run(label, async () => {
        await api.agentCall(server, method, params);
        return true;
      });
      return r === true;
    },
    /** Saves a changed resource database (db.version = the version it was read at); false if refused. */
    async saveResources(label: string, db: ResourceDatabase): Promise<boolean> {
      const saved = await this.run(label, () => api.saveResourceDatabase(db));
      if (saved && this.cluster) this.cluster = markRaw({ ...this.cluster, resources: saved });
      return saved !== undefined;
    },
    answer(id: string, answer: PromptAnswer) {
      this.prompts = this.prompts.filter((p) => p.id !== id);
      return this.run('Answer', () => api.answerPrompt(id, answer));
    },
  },
});
