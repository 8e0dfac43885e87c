// Where an agent keeps things on its node — shared by the agent and the console (which deploys agents
// and, in the local lab, reaches their control sockets). Node paths are Linux paths even when the
// console runs on Windows, hence path.posix. TANDEM_HOME puts everything under one folder, so several
// agents can share a machine (tests, the local lab); otherwise the system paths.
import path from 'node:path';

export interface AgentPaths {
  stateDir: string;
  runDir: string;
  controlSocket: string;
  bitmapDir: string;
  /** ca.crt, node.crt, node.key (0600) for the replication transport. */
  tlsDir: string;
  exportSocket(tag: string): string;
  targetExportSocket(tag: string): string;
}

export function agentLayout(home: string | undefined): AgentPaths {
  const p = path.posix;
  const stateDir = home ? p.join(home, 'state') : '/var/lib/tandem';
  const runDir = home ? p.join(home, 'run') : '/run/tandem';
  return {
    stateDir,
    runDir,
    controlSocket: p.join(runDir, 'control.sock'),
    bitmapDir: p.join(stateDir, 'bitmaps'),
    tlsDir: p.join(stateDir, 'tls'),
    exportSocket: (tag) => p.join(runDir, `${tag}.nbd.sock`),
    targetExportSocket: (tag) => p.join(runDir, `${tag}.target.nbd.sock`),
  };
}

/** Where the console installs the agent on a node (deploy) and the programs it puts on the PATH. */
export const INSTALL_DIR = '/opt/tandem';
export const AGENT_FILE = 'tandem-agent.cjs';
export const NODE_PROGRAMS = ['tandem', 'mirror_status', 'mirror_action', 'mirror_settings', 'bitmap', 'lk_confirmso'] as const;
export const SYSTEMD_UNIT = 'tandem-agent.service';
