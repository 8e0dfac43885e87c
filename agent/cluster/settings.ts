// The cluster manager's settings: tandem.conf with the manual's names (LifeKeeper's LCMHBEATTIME,
// LCMNUMHBEATS, CONFIRMSOTO, CONFIRMSODEF) plus quorum and fencing. NAME=value lines, '#' comments;
// the environment overrides the file. Pure parsing here; reading the file is settingsFile()/loadSettings().
import fs from 'node:fs';
import path from 'node:path';

export type QuorumMode = 'majority' | 'witness' | 'none';
export type QuorumLossAction = 'osu';

export interface ClusterSettings {
  /** Seconds between heartbeats on each comm path. */
  heartbeatSeconds: number;
  /** Heartbeats missed on every path before a server is declared failed. */
  missedBeats: number;
  /** Seconds a Confirm Failover waits for lk_confirmso before applying confirmDefault. */
  confirmTimeoutSeconds: number;
  /** What happens when no answer comes in time: proceed (0) or block (1). */
  confirmDefault: 'proceed' | 'block';
  quorumMode: QuorumMode;
  /** host:port of the witness, with quorumMode 'witness'. */
  witness: string | null;
  quorumLossAction: QuorumLossAction;
  /** Run with the failed server's name before a failover; failover waits for it to succeed. */
  fenceCommand: string | null;
}

export const DEFAULT_SETTINGS: ClusterSettings = {
  heartbeatSeconds: 5, missedBeats: 3, confirmTimeoutSeconds: 600, confirmDefault: 'proceed',
  quorumMode: 'majority', witness: null, quorumLossAction: 'osu', fenceCommand: null,
};

export const SETTING_NAMES = ['LCMHBEATTIME', 'LCMNUMHBEATS', 'CONFIRMSOTO', 'CONFIRMSODEF', 'QUORUM_MODE', 'WITNESS', 'QUORUM_LOSS_ACTION', 'FENCE_CMD'] as const;
type SettingName = (typeof SETTING_NAMES)[number];

export class SettingsError extends Error {}

/** Where tandem.conf is: $TANDEM_HOME/etc/tandem.conf when TANDEM_HOME is set, else /etc/tandem/tandem.conf. */
export function settingsFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.TANDEM_HOME ? path.join(env.TANDEM_HOME, 'etc', 'tandem.conf') : '/etc/tandem/tandem.conf';
}

/** NAME=value lines of a tandem.conf (comments and blank lines skipped; quotes around a value removed). */
export function parseConf(text: string, file: string): Map<string, { value: string; where: string }> {
  const out = new Map<string, { value: string; where: string }>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new SettingsError(`${where}: "${line}" is not a NAME=value line; write e.g. LCMHBEATTIME=5`);
    const name = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out.set(name, { value, where });
  });
  return out;
}

function integer(name: SettingName, value: string, where: string, min: number, what: string): number {
  if (!/^\d+$/.test(value)) throw new SettingsError(`${name}=${value} (${where}) is not a whole number; set ${name} to ${what}`);
  const n = Number(value);
  if (n < min) throw new SettingsError(`${name}=${value} (${where}) is below the minimum ${min}; set ${name} to ${what}`);
  return n;
}

/**
 * The settings from tandem.conf's text and the environment (which wins). Unknown names in the file are
 * refused (a typo would otherwise silently leave a default in force); values are checked with the fix named.
 */
export function resolveSettings(fileText: string | null, file: string, env: NodeJS.ProcessEnv): ClusterSettings {
  const entries = fileText === null ? new Map<string, { value: string; where: string }>() : parseConf(fileText, file);
  for (const name of entries.keys()) {
    if (!(SETTING_NAMES as readonly string[]).includes(name)) {
      throw new SettingsError(`${entries.get(name)!.where}: unknown setting ${name}; the settings are ${SETTING_NAMES.join(', ')}`);
    }
  }
  for (const name of SETTING_NAMES) {
    const v = env[name];
    if (v !== undefined && v !== '') entries.set(name, { value: v.trim(), where: 'environment' });
  }
  const s: ClusterSettings = { ...DEFAULT_SETTINGS };
  const get = (name: SettingName) => entries.get(name);
  let e = get('LCMHBEATTIME');
  if (e) s.heartbeatSeconds = integer('LCMHBEATTIME', e.value, e.where, 1, 'the seconds between heartbeats, at least 1 (default 5)');
  e = get('LCMNUMHBEATS');
  if (e) s.missedBeats = integer('LCMNUMHBEATS', e.value, e.where, 2, 'the heartbeats missed before a server is failed, at least 2 (default 3)');
  e = get('CONFIRMSOTO');
  if (e) s.confirmTimeoutSeconds = integer('CONFIRMSOTO', e.value, e.where, 0, 'the seconds to wait for lk_confirmso, 0 or more (default 600)');
  e = get('CONFIRMSODEF');
  if (e) {
    if (e.value !== '0' && e.value !== '1') throw new SettingsError(`CONFIRMSODEF=${e.value} (${e.where}) is neither 0 nor 1; set CONFIRMSODEF=0 (proceed with the failover) or 1 (block it)`);
    s.confirmDefault = e.value === '0' ? 'proceed' : 'block';
  }
  e = get('QUORUM_MODE');
  if (e) {
    if (e.value !== 'majority' && e.value !== 'witness' && e.value !== 'none') {
      throw new SettingsError(`QUORUM_MODE=${e.value} (${e.where}) is unknown; set QUORUM_MODE to majority (default), witness (with WITNESS=HOST:PORT) or none (only with FENCE_CMD)`);
    }
    s.quorumMode = e.value;
  }
  e = get('WITNESS');
  if (e && e.value !== '') {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(e.value) || Number(e.value.slice(e.value.lastIndexOf(':') + 1)) > 65535) {
      throw new SettingsError(`WITNESS=${e.value} (${e.where}) is not HOST:PORT; set WITNESS to the address the witness listens on (tandem-agent witness --listen HOST:PORT)`);
    }
    s.witness = e.value;
  }
  e = get('QUORUM_LOSS_ACTION');
  if (e) {
    if (e.value !== 'osu') throw new SettingsError(`QUORUM_LOSS_ACTION=${e.value} (${e.where}) is unknown; the only action is osu (take the hierarchies out of service)`);
    s.quorumLossAction = e.value;
  }
  e = get('FENCE_CMD');
  if (e && e.value !== '') s.fenceCommand = e.value;
  if (s.quorumMode === 'witness' && !s.witness) throw new SettingsError('QUORUM_MODE=witness needs WITNESS=HOST:PORT (the address of tandem-agent witness --listen HOST:PORT)');
  if (s.quorumMode === 'none' && !s.fenceCommand) {
    throw new SettingsError('QUORUM_MODE=none is allowed only with FENCE_CMD (a command that fences the failed server): without both, two partitions could run the same hierarchy. Set FENCE_CMD or use QUORUM_MODE=majority or witness');
  }
  return s;
}

/** Reads tandem.conf (missing file: defaults) and applies the environment. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, file = settingsFile(env)): ClusterSettings {
  let text: string | null = null;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new SettingsError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return resolveSettings(text, file, env);
}

/** The time after which a server whose every path is silent is declared failed. */
export function detectionMs(s: ClusterSettings): number {
  return s.heartbeatSeconds * s.missedBeats * 1000;
}
