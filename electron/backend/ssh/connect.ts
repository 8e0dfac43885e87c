// Opening an SSH connection: TCP (or a tunnel through a jump host), host key verification against the
// console's known_hosts, then user authentication. The order matters for safety: ssh2 calls the host
// verifier during the key exchange, before the userauth service starts, so an unknown key is put to the
// user and a changed key refused before any credential leaves this machine.
import type { Duplex } from 'node:stream';
import { Client, utils, type Algorithms, type ConnectConfig } from 'ssh2';
import type { SshEndpoint, SshSettings } from '../../../common/console-api.js';
import { makeAuthHandler, type AuthState } from './auth.js';
import { fingerprint, type KnownHosts } from './known-hosts.js';
import { Session } from './session.js';
import { SshError, type SshPrompter, type SshSession } from './types.js';

export interface ConnectDeps {
  knownHosts: KnownHosts;
  prompter: SshPrompter;
  /** The agent's socket; default $SSH_AUTH_SOCK (on Windows the OpenSSH agent pipe, then Pageant). */
  agentSocket?: string;
  /** For reaching the server, the handshake and authentication, per hop, not counting time spent in
   *  prompts (a user reading a fingerprint is not a dead network). Default 20 s. */
  readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** Keepalives unanswered before the connection counts as dropped. */
const KEEPALIVE_COUNT_MAX = 3;

/** A timer that can be paused while the user answers a prompt. */
class Deadline {
  private timer: NodeJS.Timeout | null = null;
  private left: number;
  private since = 0;
  private paused = 0;
  constructor(ms: number, private readonly onExpire: () => void) {
    this.left = ms;
    this.start();
  }
  private start(): void {
    this.since = Date.now();
    this.timer = setTimeout(this.onExpire, this.left);
  }
  pause(): void {
    if (this.paused++ || !this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
    this.left = Math.max(0, this.left - (Date.now() - this.since));
  }
  resume(): void {
    if (--this.paused === 0 && this.left > 0) this.start();
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.left = 0;
  }
}

function unreachable(where: string, reason: string): SshError {
  return new SshError('unreachable', `cannot reach ${where}: ${reason}; check the address and that sshd runs`);
}

/** Host key algorithms for the key types known_hosts already has for this host, so the server presents
 *  a key we can check rather than another type we would have to ask about. */
function preferKnownTypes(types: string[]): Algorithms | undefined {
  const algos = types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [t]))
    .filter((a) => ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'].includes(a));
  if (!algos.length) return undefined;
  // ssh2 unshifts each prepended name in turn: give them reversed to keep this order.
  return { serverHostKey: { remove: algos, prepend: [...algos].reverse() } } as unknown as Algorithms;
}

/** Host key check, then authentication, on one hop. Resolves with the ready client. */
function openClient(endpoint: SshEndpoint, deps: ConnectDeps, keepaliveMs: number, sock?: Duplex): Promise<Client> {
  const where = `${endpoint.host}:${endpoint.port}`;
  const timeoutMs = deps.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let settled = false;
    let hostKeyError: SshError | null = null;
    const fail = (err: SshError): void => {
      if (settled) return;
      settled = true;
      deadline.clear();
      client.end();
      if (sock) sock.destroy();
      reject(err);
    };
    const deadline = new Deadline(timeoutMs, () => fail(unreachable(where, `no SSH session within ${timeoutMs / 1000} s`)));
    const auth: AuthState = {
      tried: [],
      fatal: null,
      onPrompt: (open) => (open ? deadline.pause() : deadline.resume()),
      abort: (err) => fail(err),
    };
    const classify = (err: Error & { level?: string; code?: string }): SshError | null => {
      if (hostKeyError) return hostKeyError;
      if (auth.fatal) return auth.fatal;
      // ssh2 reports a failed agent or a refused signature as an error, then carries on with the next
      // method: not the end of the attempt.
      if (err.level === 'agent') {
        auth.tried.push(`(agent unavailable: ${err.message})`);
        return null;
      }
      if (err.level === 'client-authentication') {
        if (!/All configured authentication methods failed/.test(err.message)) {
          auth.tried.push(`(${err.message})`);
          return null;
        }
        const tried = auth.tried.length ? auth.tried.join(', ') : `none of ${endpoint.auth.join(', ')} was usable`;
        return new SshError('auth-failed', `authentication failed for ${endpoint.user}@${where} (tried: ${tried})`);
      }
      if (err.level === 'client-timeout') return unreachable(where, 'timed out waiting for the SSH handshake');
      return unreachable(where, err.message);
    };
    client.on('error', (err: Error) => {
      if (settled) return;
      const e = classify(err);
      if (e) fail(e);
    });
    client.on('close', () => fail(hostKeyError ?? auth.fatal ?? unreachable(where, 'the connection closed before the login completed')));
    client.on('ready', () => {
      if (settled) return void client.end();
      settled = true;
      deadline.clear();
      resolve(client);
    });

    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      const parsed = utils.parseKey(key);
      const keyType = parsed instanceof Error ? 'unknown' : (Array.isArray(parsed) ? parsed[0]?.type : parsed.type) ?? 'unknown';
      const fp = fingerprint(key);
      const check = deps.knownHosts.lookup(endpoint.host, endpoint.port, key);
      const file = deps.knownHosts.file;
      switch (check.status) {
        case 'known':
          return verify(true);
        case 'revoked':
          hostKeyError = new SshError('host-key-revoked', `the host key of ${where} (${keyType} ${fp}) is marked @revoked in ${file} line ${check.entries[0]!.line}; refusing to connect, nothing was sent`);
          return verify(false);
        case 'changed': {
          const lines = check.entries.map((e) => e.line).join(', ');
          hostKeyError = new SshError('host-key-changed',
            `WARNING: the host key of ${where} has CHANGED: it now presents ${keyType} ${fp}. Someone may be intercepting the connection (a man-in-the-middle attack), or the server's key was replaced. Nothing was sent. If the change is expected, remove line ${lines} of ${file} and connect again to check and accept the new key.`);
          return verify(false);
        }
        case 'unknown':
          deadline.pause();
          deps.prompter.ask({ kind: 'host-key', host: endpoint.host, port: endpoint.port, keyType, fingerprint: fp }).then((ok) => {
            deadline.resume();
            if (settled) return;
            if (!ok) {
              hostKeyError = new SshError('host-key-rejected', `the host key of ${where} (${keyType} ${fp}) was not accepted; nothing was sent`);
              return verify(false);
            }
            deps.knownHosts.add(endpoint.host, endpoint.port, keyType, key);
            verify(true);
          }, (err: unknown) => {
            deadline.resume();
            hostKeyError = new SshError('host-key-rejected', `the host key of ${where} could not be checked: ${(err as Error).message}`);
            verify(false);
          });
      }
    };

    const config: ConnectConfig = {
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.user,
      hostVerifier,
      authHandler: makeAuthHandler(endpoint, deps.prompter, deps.agentSocket, auth),
      readyTimeout: 0, // our Deadline instead: ssh2's would also count the time the user spends on prompts
      keepaliveInterval: keepaliveMs,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    };
    const algorithms = preferKnownTypes(deps.knownHosts.lookup(endpoint.host, endpoint.port, Buffer.alloc(0)).knownTypes);
    if (algorithms) config.algorithms = algorithms;
    if (sock) config.sock = sock;
    try {
      client.connect(config);
    } catch (err) {
      fail(unreachable(where, (err as Error).message));
    }
  });
}

/** A tunnel from the jump host to the target, for the target's SSH connection to run in. */
function forwardOut(jump: Client, host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => jump.forwardOut('127.0.0.1', 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream))));
}

/** Connects (through settings.jumpHost if set), checks host keys and logs in; see SshError for failures. */
export async function connectSsh(settings: SshSettings, deps: ConnectDeps): Promise<SshSession> {
  const keepaliveMs = (settings.keepaliveSeconds ?? 0) * 1000;
  let jump: Client | null = null;
  let sock: Duplex | undefined;
  if (settings.jumpHost) {
    const j = settings.jumpHost;
    jump = await openClient(j, deps, keepaliveMs);
    try {
      sock = await forwardOut(jump, settings.host, settings.port);
    } catch (err) {
      jump.end();
      // The jump host's sshd says why (e.g. "Connection refused", or forwarding not allowed).
      throw unreachable(`${settings.host}:${settings.port}`, `from the jump host ${j.user}@${j.host}:${j.port}: ${(err as Error).message}`);
    }
  }
  try {
    const client = await openClient(settings, deps, keepaliveMs, sock);
    return new Session(settings, client, deps.prompter, jump);
  } catch (err) {
    jump?.end();
    throw err;
  }
}
