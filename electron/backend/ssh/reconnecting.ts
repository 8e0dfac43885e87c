// Keeps one server's SSH connection up: connects, and after a drop reconnects with exponential backoff.
// It gives up (state 'failed') on errors only the user can resolve — a refused or changed host key, a
// wrong password or passphrase, a cancelled prompt — since retrying those would only repeat the prompt
// or hammer the server with bad credentials.
import type { SshSettings } from '../../../common/console-api.js';
import { connectSsh, type ConnectDeps } from './connect.js';
import { NEEDS_USER, SshError, type SshSession } from './types.js';

export type KeeperState = 'connecting' | 'connected' | 'reconnecting' | 'unreachable' | 'failed';

export interface KeeperOptions {
  settings: SshSettings;
  deps: ConnectDeps;
  /** Every state change, with a message for the console (and the session while connected). */
  onState: (state: KeeperState, message: string, session: SshSession | null) => void;
  /** First retry delay; doubles per failed attempt up to maxDelayMs. Defaults 1 s and 30 s. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** For tests: the connect function. */
  connect?: typeof connectSsh;
}

/**
 * States: 'connecting' (first attempt), 'connected', 'reconnecting' (after a drop, retrying),
 * 'unreachable' (the first attempt failed, or retries reached the longest delay: still retrying, at that
 * delay), 'failed' (needs the user; no more attempts until start() is called again).
 */
export class ConnectionKeeper {
  private current: SshSession | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private attempt = 0;
  private everConnected = false;
  private _state: KeeperState = 'connecting';

  constructor(private readonly options: KeeperOptions) {}

  get state(): KeeperState {
    return this._state;
  }

  get session(): SshSession | null {
    return this.current;
  }

  /** Starts (or, after 'failed', restarts) connecting. */
  start(): void {
    this.stopped = false;
    this.attempt = 0;
    this.clearTimer();
    this.set(this.everConnected ? 'reconnecting' : 'connecting', `connecting to ${this.where()}`);
    void this.tryConnect();
  }

  /** Stops retrying and closes the connection. */
  close(): void {
    this.stopped = true;
    this.clearTimer();
    const s = this.current;
    this.current = null;
    s?.close();
  }

  private where(): string {
    const s = this.options.settings;
    return `${s.user}@${s.host}:${s.port}`;
  }

  private set(state: KeeperState, message: string): void {
    this._state = state;
    this.options.onState(state, message, state === 'connected' ? this.current : null);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private delay(): number {
    const initial = this.options.initialDelayMs ?? 1000;
    const max = this.options.maxDelayMs ?? 30_000;
    return Math.min(max, initial * 2 ** Math.max(0, this.attempt - 1));
  }

  private async tryConnect(): Promise<void> {
    this.attempt++;
    let session: SshSession;
    try {
      session = await (this.options.connect ?? connectSsh)(this.options.settings, this.options.deps);
    } catch (err) {
      if (this.stopped) return;
      const e = err instanceof SshError ? err : new SshError('unreachable', (err as Error).message);
      if (NEEDS_USER.has(e.kind)) return this.set('failed', e.message);
      const wait = this.delay();
      const atMax = wait >= (this.options.maxDelayMs ?? 30_000);
      const state = !this.everConnected || atMax ? 'unreachable' : 'reconnecting';
      this.set(state, `${e.message}; retrying in ${Math.round(wait / 100) / 10} s`);
      this.timer = setTimeout(() => void this.tryConnect(), wait);
      return;
    }
    if (this.stopped) return session.close(); // closed while connecting
    this.current = session;
    this.everConnected = true;
    this.attempt = 0;
    this.set('connected', `connected to ${this.where()}`);
    session.onClose((err) => {
      if (this.current !== session) return;
      this.current = null;
      if (this.stopped) return;
      this.set('reconnecting', `${err?.message ?? `connection to ${this.where()} closed`}; reconnecting`);
      this.attempt = 1;
      this.timer = setTimeout(() => void this.tryConnect(), this.delay());
    });
  }
}
