// An authenticated connection: commands (with sudo for non-root logins), SFTP, and the end of the line.
import crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import type { SshSettings } from '../../../common/console-api.js';
import { SshError, type ExecProcess, type RunResult, type SshPrompter, type SshSession } from './types.js';

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An exec channel with its end already watched (see Session.exec). */
interface Exec {
  ch: ClientChannel;
  exit: Promise<{ code: number | null; signal: string | null }>;
  closedByCaller: boolean;
}

export class Session implements SshSession {
  private up = true;
  private closing = false;
  private lastError: Error | null = null;
  private closeError: Error | undefined;
  private readonly closeListeners: Array<(err?: Error) => void> = [];
  /** Per-command callbacks for a dropped connection (ssh2 only closes a channel once its output is read). */
  private readonly dropWatchers = new Set<() => void>();
  // The sudo password lives only here, for this connection's lifetime: never on disk, never logged.
  private sudoPassword: string | null = null;
  private sudoAsking: Promise<string | null> | null = null;
  // Random per session so a command's own output can never be taken for sudo's prompt or our "ready" line.
  private readonly sudoPrompt = `[tandem-sudo-${crypto.randomBytes(8).toString('hex')}]`;
  private readonly sudoReady = `tandem-sudo-ready-${crypto.randomBytes(8).toString('hex')}`;

  constructor(readonly settings: SshSettings, private readonly client: Client, private readonly prompter: SshPrompter, private readonly jump: Client | null) {
    const where = `${settings.user}@${settings.host}:${settings.port}`;
    client.on('error', (err: Error) => (this.lastError = err));
    client.on('close', () => {
      this.up = false;
      this.jump?.end();
      this.closeError = this.closing ? undefined
        : new SshError('closed', `connection to ${where} lost${this.lastError ? `: ${this.lastError.message}` : ''}`);
      for (const w of [...this.dropWatchers]) w();
      for (const l of this.closeListeners.splice(0)) l(this.closeError);
    });
    // A drop of the jump host's connection ends the tunnel, and with it this one.
    jump?.on('error', (err: Error) => (this.lastError = err));
    jump?.on('close', () => this.client.end());
  }

  get connected(): boolean {
    return this.up;
  }

  onClose(listener: (err?: Error) => void): void {
    if (this.up) this.closeListeners.push(listener);
    else process.nextTick(listener, this.closeError);
  }

  close(): void {
    this.closing = true;
    this.client.end();
    this.jump?.end();
  }

  sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => this.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
  }

  private needsSudo(sudo: boolean | undefined): boolean {
    return !!sudo && this.settings.user !== 'root';
  }

  /**
   * sudo reads the password from stdin (-S) after printing our unique prompt (-p) on stderr. The wrapper
   * then prints a "ready" line before exec'ing the command, so we know exactly when sudo is done: the
   * caller's stdin is only connected after it (it must not be read as a password), and stderr before it
   * is sudo's alone (its complaints become the SshError's message).
   */
  private sudoCommand(command: string): string {
    const wrapper = 'printf "%s\\n" "$0" >&2; exec /bin/sh -c "$1"';
    return `sudo -S -p ${shellQuote(this.sudoPrompt)} -- /bin/sh -c ${shellQuote(wrapper)} ${shellQuote(this.sudoReady)} ${shellQuote(command)}`;
  }

  private askSudoPassword(): Promise<string | null> {
    if (this.sudoPassword !== null) return Promise.resolve(this.sudoPassword);
    // Commands started together share one question.
    this.sudoAsking ??= this.prompter.ask({ kind: 'sudo-password', host: this.settings.host, user: this.settings.user }).then((pw) => {
      this.sudoAsking = null;
      if (pw !== null) this.sudoPassword = pw;
      return pw;
    }, (err: unknown) => {
      this.sudoAsking = null;
      throw err;
    });
    return this.sudoAsking;
  }

  /**
   * Opens an exec channel and starts watching for its end at once, in ssh2's callback: over a jump host
   * the whole reply (data, exit status, close) can arrive in one chunk, before any later listener.
   */
  private exec(command: string): Promise<Exec> {
    if (!this.up) return Promise.reject(new SshError('closed', `not connected to ${this.settings.host}:${this.settings.port}`));
    return new Promise((resolve, reject) => this.client.exec(command, (err, ch) => {
      if (err) return reject(err);
      const x: Exec = { ch, closedByCaller: false, exit: null as unknown as Exec['exit'] };
      x.exit = new Promise((res, rej) => {
        const onDrop = (): void => rej(new SshError('closed', `the connection to ${this.settings.host} ended before the command did`));
        this.dropWatchers.add(onDrop);
        const settle = (): void => void this.dropWatchers.delete(onDrop);
        ch.on('exit', (code: number | null, signal?: string) => {
          settle();
          res({ code: code ?? null, signal: signal ? signal.replace(/^SIG/, '') : null });
        });
        // 'close' only comes once stdout was read; without an exit status it is a hang-up or our close().
        ch.on('close', () => {
          settle();
          if (x.closedByCaller) res({ code: null, signal: null });
          else onDrop();
        });
      });
      x.exit.catch(() => {}); // a caller that only reads the streams must not get an unhandled rejection
      resolve(x);
    }));
  }

  /** Waits for sudo's ready line, answering its prompt; stderr after the line goes on to `stderr`. */
  private sudoHandshake({ ch, exit }: Exec, stderr: PassThrough): Promise<void> {
    const who = `${this.settings.user}@${this.settings.host}`;
    return new Promise((resolve, reject) => {
      let text = '';
      let prompts = 0;
      let done = false;
      const fail = (err: SshError): void => {
        if (done) return;
        done = true;
        ch.stderr.removeListener('data', onData);
        ch.close();
        reject(err);
      };
      const onData = (d: Buffer): void => {
        text += d.toString('utf8');
        let i: number;
        while ((i = text.indexOf(this.sudoPrompt)) !== -1) {
          text = text.slice(0, i) + text.slice(i + this.sudoPrompt.length);
          if (++prompts > 1) {
            // Asked again: the password we sent was wrong. Forget it so the next sudo asks the user.
            this.sudoPassword = null;
            return fail(new SshError('sudo', `sudo on ${this.settings.host}: wrong password for ${this.settings.user}`));
          }
          this.askSudoPassword().then((pw) => {
            if (pw === null) fail(new SshError('cancelled', `sudo password for ${who} not given`));
            else ch.write(pw + '\n');
          }, (err: unknown) => fail(new SshError('sudo', (err as Error).message)));
        }
        const r = text.indexOf(this.sudoReady + '\n');
        if (r === -1) return;
        done = true;
        ch.stderr.removeListener('data', onData);
        const rest = text.slice(r + this.sudoReady.length + 1);
        if (rest) stderr.write(rest);
        ch.stderr.pipe(stderr);
        resolve();
      };
      ch.stderr.on('data', onData);
      // sudo ending before the ready line means it refused (wrong password, not in sudoers…). The exit
      // status can overtake stderr still buffered in the stream: read that first, it may hold the line.
      const ended = (err?: SshError): void => {
        setImmediate(() => {
          while (ch.stderr.read() !== null); // each chunk goes through onData ('data' is emitted by read())
          if (done) return;
          if (err) return fail(err);
          if (prompts > 0) this.sudoPassword = null;
          const said = text.trim().split('\n').filter(Boolean).join('; ');
          fail(new SshError('sudo', `sudo on ${this.settings.host} refused to run the command as root for ${this.settings.user}${said ? `: ${said}` : ''}`));
        });
      };
      exit.then(() => ended(), (err: SshError) => ended(new SshError('closed', `the connection to ${this.settings.host} ended while sudo was starting: ${err.message}`)));
    });
  }

  async spawn(command: string, options: { sudo?: boolean } = {}): Promise<ExecProcess> {
    const sudo = this.needsSudo(options.sudo);
    const x = await this.exec(sudo ? this.sudoCommand(command) : command);
    const ch = x.ch;
    const proc: ExecProcess = {
      stdin: ch,
      stdout: ch,
      stderr: ch.stderr,
      exit: x.exit,
      close: () => {
        x.closedByCaller = true;
        ch.close();
      },
      kill: (signal = 'TERM') => {
        ch.signal(signal);
      },
    };
    if (!sudo) return proc;
    const stderr = new PassThrough();
    await this.sudoHandshake(x, stderr);
    return { ...proc, stderr };
  }

  async run(command: string, options: { sudo?: boolean; input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    const proc = await this.spawn(command, { sudo: options.sudo });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on('data', (d: Buffer) => out.push(d));
    proc.stderr.on('data', (d: Buffer) => err.push(d));
    if (options.input !== undefined) proc.stdin.end(options.input);
    else proc.stdin.end();
    let timer: NodeJS.Timeout | null = null;
    const timeout = new Promise<never>((_resolve, reject) => {
      if (!options.timeoutMs) return;
      timer = setTimeout(() => {
        // Ask the remote side to stop it (sshd delivers signals since OpenSSH 7.9), then hang up: the
        // channel would otherwise stay open until the command ends by itself.
        proc.kill?.('TERM');
        proc.close();
        reject(new Error(`${command.split(/\s/)[0]} on ${this.settings.host} did not finish within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
    });
    try {
      const [{ code }] = await Promise.race([timeout, Promise.all([
        proc.exit,
        // The streams may still hold data when the channel reports its exit: wait for both to end.
        finished(proc.stdout).catch(() => {}),
        finished(proc.stderr).catch(() => {}),
      ])]);
      return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code: code ?? -1 };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
}
