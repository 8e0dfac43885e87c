// Wires one ConsoleBackend for either front door (Electron's main process or the browser-mode server).
import path from 'node:path';
import { ConsoleBackend } from './console-backend.js';
import type { SecretCipher } from './cluster-store.js';
import { sshServer } from './ssh-server.js';

/** Where the built files are: next to the bundled console (resources/console/*.cjs). */
export function resourcesDir(bundleDir: string): string {
  return path.resolve(bundleDir, '..');
}

export function createBackend(options: { dataDir: string; resources: string; cipher: SecretCipher | null }): ConsoleBackend {
  return new ConsoleBackend({
    dataDir: options.dataDir,
    agentBundle: path.join(options.resources, 'agent', 'tandem-agent.cjs'),
    cipher: options.cipher,
    sshConnection: sshServer,
  });
}
