// User authentication: ssh2's authHandler, driven by the endpoint's list of methods in order. Secrets
// come from the prompter at the moment a method is tried (never earlier, so nothing is asked of the
// user for a host whose key was refused) and are never logged or kept beyond the attempt.
import fs from 'node:fs';
import { utils, type AuthenticationType, type AuthHandlerMiddleware, type NextAuthHandler, type ParsedKey } from 'ssh2';
import type { AuthMethod, SshEndpoint } from '../../../common/console-api.js';
import { SshError, type SshPrompter } from './types.js';

/** The agent to try on this platform: the given socket, $SSH_AUTH_SOCK, or Windows' agents. */
export function agentCandidates(agentSocket: string | undefined, platform = process.platform, env = process.env): string[] {
  if (agentSocket) return [agentSocket];
  if (env.SSH_AUTH_SOCK) return [env.SSH_AUTH_SOCK];
  // Windows: the OpenSSH agent service's named pipe first, then PuTTY's Pageant (ssh2 knows the name).
  if (platform === 'win32') return ['\\\\.\\pipe\\openssh-ssh-agent', 'pageant'];
  return [];
}

/**
 * ssh2 signs with ssh-rsa (SHA-1) when the server does not say it accepts rsa-sha2-*; OpenSSH has
 * refused SHA-1 signatures by default since 8.8 and they are weak. This wrapper refuses to make one, so
 * an RSA key is only ever used with rsa-sha2-256/512.
 */
export function withoutSha1(key: ParsedKey): ParsedKey {
  if (key.type !== 'ssh-rsa') return key;
  const wrapped = Object.create(key) as ParsedKey; // keeps ssh2's private fields through the prototype
  wrapped.sign = (data: Buffer | string, algo?: string) => {
    if (!algo || algo === 'sha1') return new Error('refusing an ssh-rsa (SHA-1) signature; the server must accept rsa-sha2-256 or rsa-sha2-512') as unknown as Buffer;
    return key.sign(data, algo);
  };
  return wrapped;
}

/** Reads and decrypts a private key, asking for its passphrase if it has one. */
export async function loadPrivateKey(keyFile: string, prompter: SshPrompter): Promise<ParsedKey> {
  let data: Buffer;
  try {
    data = fs.readFileSync(keyFile);
  } catch (err) {
    throw new SshError('key-file', `cannot read the key file ${keyFile}: ${(err as Error).message}`);
  }
  const first = utils.parseKey(data);
  const firstKey = Array.isArray(first) ? (first[0] as ParsedKey | Error) : first;
  if (!(firstKey instanceof Error)) return firstKey;
  // ssh2 says "Encrypted … key detected, but no passphrase given" for a protected key; anything else is
  // a file that is not a private key we can use.
  if (!/passphrase|encrypted/i.test(firstKey.message)) throw new SshError('key-file', `${keyFile} is not a usable private key: ${firstKey.message}`);
  const passphrase = await prompter.ask({ kind: 'passphrase', keyFile });
  if (passphrase === null) throw new SshError('cancelled', `no passphrase given for the key file ${keyFile}`);
  const second = utils.parseKey(data, passphrase);
  const key = Array.isArray(second) ? (second[0] as ParsedKey | Error) : second;
  if (key instanceof Error) throw new SshError('passphrase', `wrong passphrase for the key file ${keyFile}`);
  return key;
}

/** What ssh2's server side calls the method (agent and key are both "publickey"). */
function wireName(m: AuthMethod): AuthenticationType {
  return m === 'agent' || m === 'key' ? 'publickey' : m;
}

export interface AuthState {
  /** The methods actually attempted, for the "tried: …" of auth-failed. */
  tried: string[];
  /** An error that ended authentication on our side (cancel, key file, passphrase): it wins over ssh2's. */
  fatal: SshError | null;
  /** Set while a prompt is open, so the connect timeout does not count the user's time. */
  onPrompt(open: boolean): void;
  /** Ends the connection now with this error (a cancel in the middle of a keyboard-interactive round). */
  abort(err: SshError): void;
}

export function makeAuthHandler(endpoint: SshEndpoint, prompter: SshPrompter, agentSocket: string | undefined, state: AuthState): AuthHandlerMiddleware {
  const username = endpoint.user;
  // Expand the configured order into single attempts (agent may mean several agents on Windows).
  const queue: Array<{ method: AuthMethod; agent?: string }> = [];
  for (const method of endpoint.auth) {
    if (method === 'agent') for (const agent of agentCandidates(agentSocket)) queue.push({ method, agent });
    else queue.push({ method });
  }
  const ask = async <T>(fn: () => Promise<T>): Promise<T> => {
    state.onPrompt(true);
    try {
      return await fn();
    } finally {
      state.onPrompt(false);
    }
  };
  const stop = (next: NextAuthHandler, err?: SshError): void => {
    if (err) state.fatal = err;
    next(false as unknown as AuthenticationType); // ssh2 takes false as "no more methods"; its types omit it
  };

  return (methodsLeft, _partialSuccess, next) => {
    void (async () => {
      for (;;) {
        const item = queue.shift();
        if (!item) return stop(next);
        // After the first failure the server lists what it still accepts: skip the rest.
        if (methodsLeft && !methodsLeft.includes(wireName(item.method))) continue;
        switch (item.method) {
          case 'agent':
            state.tried.push(`agent (${item.agent})`);
            return next({ type: 'agent', username, agent: item.agent! });
          case 'key': {
            if (!endpoint.keyFile) continue; // nothing configured: not an attempt
            state.tried.push(`key ${endpoint.keyFile}`);
            const key = await ask(() => loadPrivateKey(endpoint.keyFile!, prompter));
            return next({ type: 'publickey', username, key: withoutSha1(key) });
          }
          case 'password': {
            const password = await ask(() => prompter.ask({ kind: 'password', host: endpoint.host, user: username }));
            if (password === null) return stop(next, new SshError('cancelled', `password for ${username}@${endpoint.host} not given`));
            state.tried.push('password');
            return next({ type: 'password', username, password });
          }
          case 'keyboard-interactive':
            state.tried.push('keyboard-interactive');
            return next({
              type: 'keyboard-interactive',
              username,
              prompt: (name, instructions, _lang, prompts, finish) => {
                if (!prompts.length) return finish([]); // an info-only round: nothing to ask
                void ask(() => prompter.ask({
                  kind: 'keyboard-interactive', host: endpoint.host, user: username, name, instructions,
                  questions: prompts.map((p) => ({ prompt: p.prompt, echo: !!p.echo })),
                })).then((answers) => {
                  // A cancel hangs up rather than sending empty answers the server would count as a failure.
                  if (answers === null) state.abort(new SshError('cancelled', `keyboard-interactive login of ${username}@${endpoint.host} cancelled`));
                  else finish(answers);
                }, (err: unknown) => state.abort(new SshError('auth-failed', (err as Error).message)));
              },
            });
        }
      }
    })().catch((err: unknown) => stop(next, err instanceof SshError ? err : new SshError('auth-failed', (err as Error).message)));
  };
}
