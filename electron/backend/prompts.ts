// Questions for the user (host keys, passwords, passphrases, keyboard-interactive, sudo), asked through
// the console's event stream and answered by answerPrompt. One pending question per id; a question left
// unanswered times out as a refusal, so no connection waits forever.
import crypto from 'node:crypto';
import type { Prompt, PromptAnswer } from '../../common/console-api.js';
import type { SshPrompt } from './ssh/types.js';

const PROMPT_TIMEOUT_MS = 10 * 60_000;

interface Waiting {
  prompt: Prompt;
  resolve(answer: PromptAnswer | null): void;
  timer: NodeJS.Timeout;
}

export function describePrompt(p: SshPrompt): Pick<Prompt, 'kind' | 'message' | 'keyType' | 'fingerprint' | 'questions'> {
  switch (p.kind) {
    case 'host-key':
      return {
        kind: p.kind, keyType: p.keyType, fingerprint: p.fingerprint,
        message: `The authenticity of ${p.host} port ${p.port} cannot be established: it is not in the console's known hosts. Its ${p.keyType} key fingerprint is ${p.fingerprint}. Compare it with the server's own (on the server: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) before trusting it.`,
      };
    case 'password': return { kind: p.kind, message: `Password for ${p.user}@${p.host}` };
    case 'passphrase': return { kind: p.kind, message: `Passphrase for the key ${p.keyFile}` };
    case 'sudo-password': return { kind: p.kind, message: `sudo password for ${p.user} on ${p.host}` };
    case 'keyboard-interactive':
      return { kind: p.kind, questions: p.questions, message: [p.name, p.instructions].filter(Boolean).join(': ') || `${p.user}@${p.host} asks:` };
  }
}

export class PromptBroker {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly publish: (prompt: Prompt) => void,
    private readonly closed: (id: string) => void,
  ) {}

  /** Asks and waits; null when refused, cancelled or timed out. */
  ask(server: string, p: SshPrompt): Promise<PromptAnswer | null> {
    const id = crypto.randomUUID();
    const prompt: Prompt = { id, server, ...describePrompt(p) };
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.finish(id, null), PROMPT_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, { prompt, resolve, timer });
      this.publish(prompt);
    });
  }

  answer(id: string, answer: PromptAnswer): void {
    if (!this.waiting.has(id)) throw new Error(`no question ${id} is waiting for an answer (it was answered or timed out)`);
    this.finish(id, answer);
  }

  pending(): Prompt[] {
    return [...this.waiting.values()].map((w) => w.prompt);
  }

  cancelAll(): void {
    for (const id of [...this.waiting.keys()]) this.finish(id, null);
  }

  private finish(id: string, answer: PromptAnswer | null): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    this.closed(id);
    w.resolve(answer);
  }
}
