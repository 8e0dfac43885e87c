// The cluster as the window shows it: servers, their connection state and mirrors, kept live by the
// backend's events; questions (prompts) waiting for the user; the output log.
import { defineStore } from 'pinia';
import type { ClusterView, OutputEntry, Prompt, PromptAnswer } from '../../../common/console-api.js';
import { api, onConsoleEvent } from '../api.js';

export const useClusterStore = defineStore('cluster', {
  state: () => ({
    cluster: null as ClusterView | null,
    prompts: [] as Prompt[],
    output: [] as OutputEntry[],
    error: '',
    busy: '',
  }),
  actions: {
    async start() {
      onConsoleEvent((e) => {
        if (e.type === 'cluster') this.cluster = e.cluster;
        else if (e.type === 'prompt') this.prompts.push(e.prompt);
        else if (e.type === 'prompt-closed') this.prompts = this.prompts.filter((p) => p.id !== e.id);
        else if (e.type === 'output') this.output.push(e.entry);
      });
      await this.run('Connecting to the console backend', async () => {
        this.cluster = await api.cluster();
        this.output = await api.output();
      });
    },
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
    async openLocalLab(nodes: number) {
      const c = await this.run('Open Local Lab', () => api.openLocalLab(nodes));
      if (c) this.cluster = c;
    },
    async answer(id: string, answer: PromptAnswer) {
      this.prompts = this.prompts.filter((p) => p.id !== id);
      await this.run('Answer', () => api.answerPrompt(id, answer));
    },
  },
});
