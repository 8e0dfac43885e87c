// A console backend of its own for one test file (the embedded default a new user gets: the local lab
// is opened by the test), its events recorded, closed and its data folder removed after the file.
import fs from 'node:fs';
import { afterAll } from 'vitest';
import { ConsoleBackend } from '../../electron/backend/console-backend.js';
import type { ClusterView, ConsoleEvent } from '../../common/console-api.js';
import { AGENT_BUNDLE, tempDir } from './tools.js';

export interface LabBackend {
  backend: ConsoleBackend;
  events: ConsoleEvent[];
  /** Waits for a cluster event that satisfies `ok` (the pushed status, not a poll of the agent). */
  waitCluster(ok: (c: ClusterView) => boolean, what: string, timeoutMs?: number): Promise<ClusterView>;
}

/** Call at the top level of a test file: the teardown is registered with afterAll. */
export function startLabBackend(prefix: string): LabBackend {
  const dataDir = tempDir(prefix);
  const backend = new ConsoleBackend({ dataDir, agentBundle: AGENT_BUNDLE });
  const events: ConsoleEvent[] = [];
  backend.onEvent((e) => events.push(e));
  afterAll(async () => {
    await backend.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  async function waitCluster(ok: (c: ClusterView) => boolean, what: string, timeoutMs = 60_000): Promise<ClusterView> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = [...events].reverse().find((e) => e.type === 'cluster');
      if (last?.type === 'cluster' && ok(last.cluster)) return last.cluster;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last cluster event: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { backend, events, waitCluster };
}
