// The SSH layer's contract with the rest of the backend (deploy, the agent link over `tandem ctl`).
import type { Readable, Writable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import type { SshSettings } from '../../../common/console-api.js';

/** A question for the user; the answer type depends on the kind (see SshPrompter). */
export type SshPrompt =
  | { kind: 'host-key'; host: string; port: number; keyType: string; fingerprint: string }
  | { kind: 'password'; host: string; user: string }
  | { kind: 'passphrase'; keyFile: string }
  | { kind: 'keyboard-interactive'; host: string; user: string; name: string; instructions: string; questions: Array<{ prompt: string; echo: boolean }> }
  | { kind: 'sudo-password'; host: string; user: string };

/**
 * Asks the user. host-key → true to trust the key (it is then saved in known_hosts);
 * password / passphrase / sudo-password → the secret, or null if the user cancelled;
 * keyboard-interactive → one answer per question, or null.
 */
export interface SshPrompter {
  ask(prompt: Extract<SshPrompt, { kind: 'host-key' }>): Promise<boolean>;
  ask(prompt: Extract<SshPrompt, { kind: 'keyboard-interactive' }>): Promise<string[] | null>;
  ask(prompt: Exclude<SshPrompt, { kind: 'host-key' | 'keyboard-interactive' }>): Promise<string | null>;
}

/** Why a connection failed, so the console can say what to do. */
export type SshErrorKind =
  | 'unreachable' // DNS, refused, timeout, network down
  | 'host-key-rejected' // the user did not accept an unknown key
  | 'host-key-changed' // the key differs from known_hosts: refused, nothing sent
  | 'host-key-revoked' // known_hosts marks this key @revoked: refused, nothing sent
  | 'auth-failed' // every configured method failed
  | 'passphrase' // the key file's passphrase was wrong or not given
  | 'key-file' // the key file is missing or unreadable
  | 'sudo' // sudo refused (wrong password, not allowed)
  | 'cancelled' // the user cancelled a prompt (password, passphrase, sudo password)
  | 'closed'; // the connection dropped

export class SshError extends Error {
  constructor(readonly kind: SshErrorKind, message: string) {
    super(message);
  }
}

/** Kinds that need the user (a decision, a credential, a file) before another try makes sense. */
export const NEEDS_USER: ReadonlySet<SshErrorKind> = new Set<SshErrorKind>([
  'host-key-rejected', 'host-key-changed', 'host-key-revoked', 'auth-failed', 'passphrase', 'key-file', 'sudo', 'cancelled',
]);

export interface ExecProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Resolves when the remote command ends; rejects with SshError('closed') if the connection dropped first. */
  exit: Promise<{ code: number | null; signal: string | null }>;
  /** Closes the channel. */
  close(): void;
  /** Sends the remote command a signal ("TERM", "KILL"… without "SIG"). */
  kill?(signal?: string): void;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  /** The exit status; -1 when the command ended by a signal (or sent no exit status). */
  code: number;
}

export interface SshSession {
  readonly settings: SshSettings;
  /** Runs a command to completion. sudo: run as root (prefixes sudo for a non-root login, asking for the password if sudo does). */
  run(command: string, options?: { sudo?: boolean; input?: string | Buffer; timeoutMs?: number }): Promise<RunResult>;
  /** Starts a long-running command with its streams (the `tandem ctl` bridge). With sudo it resolves once
   *  sudo has let the command start (after the password, if asked), and rejects with SshError('sudo') if not. */
  spawn(command: string, options?: { sudo?: boolean }): Promise<ExecProcess>;
  sftp(): Promise<SFTPWrapper>;
  /** True while the connection is up. */
  readonly connected: boolean;
  /** Called once when the connection ends (err set if it dropped rather than being closed). */
  onClose(listener: (err?: Error) => void): void;
  close(): void;
}
