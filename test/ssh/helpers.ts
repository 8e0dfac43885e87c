// Shared by the SSH tests: temp dirs, client keys made with ssh-keygen, a scripted prompter, log slices.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sshSettings, type SshSettings } from '../../common/console-api.js';
import type { Sshd } from '../lab/sshd.js';
import type { SshPrompt, SshPrompter } from '../../electron/backend/ssh/types.js';

export function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tandem-${name}-`));
  // The lab's users (not root) must reach their authorized_keys and home directories in here.
  fs.chmodSync(dir, 0o755);
  return dir;
}

export interface ClientKey {
  file: string;
  /** The OpenSSH public key line. */
  pub: string;
  /** As ssh-keygen -l prints it. */
  fingerprint: string;
}

export function makeKey(dir: string, name: string, type: 'ed25519' | 'ecdsa' | 'rsa', passphrase = ''): ClientKey {
  const file = path.join(dir, name);
  const args = ['-q', '-t', type, '-N', passphrase, '-C', name, '-f', file];
  if (type === 'rsa') args.push('-b', '2048');
  execFileSync('ssh-keygen', args);
  const fp = execFileSync('ssh-keygen', ['-l', '-f', file + '.pub']).toString().split(/\s+/)[1]!;
  return { file, pub: fs.readFileSync(file + '.pub', 'utf8').trim(), fingerprint: fp };
}

export interface Answers {
  hostKey?: boolean;
  password?: string | null;
  passphrase?: string | null;
  sudo?: string | null;
  keyboard?: (questions: Array<{ prompt: string; echo: boolean }>) => string[] | null;
}

/** A prompter that answers from a script and records every question. */
export function scripted(answers: Answers = {}): { prompter: SshPrompter; calls: SshPrompt[] } {
  const calls: SshPrompt[] = [];
  const ask = async (q: SshPrompt): Promise<boolean | string | string[] | null> => {
    calls.push(q);
    switch (q.kind) {
      case 'host-key': return answers.hostKey ?? true;
      case 'password': return answers.password ?? null;
      case 'passphrase': return answers.passphrase ?? null;
      case 'sudo-password': return answers.sudo ?? null;
      case 'keyboard-interactive': return answers.keyboard ? answers.keyboard(q.questions) : null;
    }
  };
  return { prompter: { ask } as SshPrompter, calls };
}

export function endpoint(sshd: Sshd, over: Partial<SshSettings> = {}): SshSettings {
  return sshSettings.parse({ host: sshd.address, port: sshd.port, user: 'alice', auth: ['password'], ...over });
}

/** The log written after a mark (log length from a previous call). */
export function logMark(sshd: Sshd): number {
  return sshd.log().length;
}

export function logSince(sshd: Sshd, mark: number): string {
  return sshd.log().slice(mark);
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Rejects with the SshError the promise rejects with, or fails if it resolves. */
export async function sshErrorOf(p: Promise<unknown>): Promise<{ kind: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { kind: string; message: string };
  }
  throw new Error('expected an SshError, the call succeeded');
}
