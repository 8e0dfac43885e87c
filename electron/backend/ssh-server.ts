// A server reached over SSH: the connection keeper (reconnect with backoff), the agent link through
// `sudo tandem ctl` on an exec channel, deployment and uninstall. The agent does not depend on this
// link: when it drops, mirrors keep replicating, and the console re-attaches when SSH is back.
import fs from 'node:fs';
import path from 'node:path';
import type { PromptAnswer, ServerDefinition } from '../../common/console-api.js';
import { AgentLink } from './agent-link.js';
import type { SshConnectionContext, SshServerConnection } from './console-backend.js';
import { ClusterCaStore } from './deploy/cluster-ca.js';
import { deployAgent, uninstallAgent, type AgentManifest } from './deploy/deploy.js';
import { BIN_DIR } from './deploy/node-files.js';
import { BaseConnection } from './server-connection.js';
import { KnownHosts } from './ssh/known-hosts.js';
import { ConnectionKeeper } from './ssh/reconnecting.js';
import type { SshPrompt, SshPrompter, SshSession } from './ssh/types.js';

const CTL = `${BIN_DIR}/tandem ctl`;

export class SshServer extends BaseConnection implements SshServerConnection {
  private keeper: ConnectionKeeper | null = null;
  private session: SshSession | null = null;
  private attaching: Promise<void> | null = null;
  private readonly waiters: Array<() => void> = [];
  private readonly caStore: ClusterCaStore;

  constructor(private readonly def: ServerDefinition, private readonly ctx: SshConnectionContext) {
    super(def.name, 'ssh', `${def.ssh.user}@${def.ssh.host}:${def.ssh.port}`);
    this.caStore = new ClusterCaStore(ctx.dataDir, ctx.secrets);
  }

  private prompter(): SshPrompter {
    const used = new Set<string>();
    const ask = async (p: SshPrompt): Promise<boolean | string | string[] | null> => {
      const key = p.kind === 'passphrase' ? `${this.name}/passphrase:${p.keyFile}` : `${this.name}/${p.kind}`;
      // A remembered secret is offered once per attempt; if it fails the user is asked.
      if ((p.kind === 'password' || p.kind === 'passphrase' || p.kind === 'sudo-password') && !used.has(key)) {
        used.add(key);
        const remembered = this.ctx.secrets.get(key);
        if (remembered) return remembered;
      }
      const answer: PromptAnswer | null = await this.ctx.ask(this.name, p);
      if (p.kind === 'host-key') return !!answer && 'accept' in answer && answer.accept;
      if (p.kind === 'keyboard-interactive') return answer && 'answers' in answer ? answer.answers : null;
      const secret = answer && 'secret' in answer ? answer.secret : null;
      if (secret !== null) this.ctx.secrets.set(key, secret);
      return secret;
    };
    return { ask } as SshPrompter;
  }

  /** Resolves once connected with the agent attached (or known absent); rejects if the connection fails. */
  async connect(): Promise<void> {
    if (this.state === 'connected' && this.session) return;
    if (!this.keeper) {
      const knownHosts = new KnownHosts(path.join(this.ctx.dataDir, 'known_hosts'));
      this.keeper = new ConnectionKeeper({
        settings: this.def.ssh,
        deps: { knownHosts, prompter: this.prompter() },
        onState: (state, message, session) => {
          this.session = session;
          if (state === 'connected' && session) {
            this.setState('connected', message);
            this.attaching = this.attachAgent(session).finally(() => this.wake());
          } else {
            this.dropLink();
            this.setState(state, message);
            if (state === 'failed' || state === 'unreachable') this.wake();
          }
        },
      });
      this.keeper.start();
    } else if (this.state === 'failed' || this.state === 'disconnected') this.keeper.start();
    await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.state !== 'connected') throw new Error(`${this.name}: ${this.message}`);
    await this.attaching;
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private dropLink(): void {
    const link = this.link;
    this.link = null;
    link?.close();
  }

  /** Opens `sudo tandem ctl`; an agent not installed or not running is a state, not an error. */
  private async attachAgent(session: SshSession): Promise<void> {
    this.dropLink();
    let proc;
    try {
      proc = await session.spawn(CTL, { sudo: true });
    } catch (err) {
      this.agentInfo = null;
      this.setState('connected', `connected; sudo refused: ${(err as Error).message}`);
      return;
    }
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const link = new AgentLink(proc.stdout, proc.stdin, this.name);
    try {
      await this.adopt(link, (err) => {
        if (this.session === session && session.connected) this.setState('connected', `connected; the agent link closed: ${err.message}`);
      });
      this.setState('connected', `connected; agent ${this.agentInfo?.version ?? '?'} running`);
    } catch {
      link.close();
      this.link = null;
      this.agentInfo = null;
      this.mirrors = [];
      const exit = await Promise.race([proc.exit.catch(() => null), new Promise((r) => setTimeout(() => r(null), 2000))]) as { code: number | null } | null;
      const why = exit?.code === 127 || /not found|No such file/.test(stderr)
        ? 'the Tandem agent is not installed: deploy it'
        : stderr.trim() || 'the agent did not answer';
      this.setState('connected', `connected; ${why}`);
    }
  }

  private requireSession(action: string): SshSession {
    if (!this.session || !this.session.connected) throw new Error(`${action}: ${this.name} is not connected (${this.state}${this.message ? `: ${this.message}` : ''}); connect first`);
    return this.session;
  }

  async deploy(): Promise<void> {
    const session = this.requireSession('Deploy');
    this.dropLink();
    const manifestFile = path.join(path.dirname(this.ctx.agentBundle), 'manifest.json');
    if (!fs.existsSync(manifestFile)) throw new Error(`${manifestFile} is missing; build the agent first: npm run build`);
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as AgentManifest;
    try {
      await deployAgent({
        node: this.name, session, bundleFile: this.ctx.agentBundle, manifest, progress: this.ctx.progress,
        ca: {
          certPem: () => this.caStore.certPem(),
          authority: () => this.caStore.get(async (creating, why) => {
            const a = await this.ctx.ask(this.name, { kind: 'passphrase', keyFile: creating ? `${this.caStore.dir}/ca.key (new cluster CA)` : `${this.caStore.dir}/ca.key` });
            void why;
            return a && 'secret' in a ? a.secret : null;
          }),
        },
      });
    } finally {
      await this.attachAgent(session);
    }
  }

  async uninstall(): Promise<void> {
    const session = this.requireSession('Uninstall');
    this.dropLink();
    await uninstallAgent(session, this.name);
    this.agentInfo = null;
    this.mirrors = [];
    this.setState('connected', 'connected; the Tandem agent is not installed: deploy it');
  }

  async disconnect(): Promise<void> {
    this.keeper?.close();
    this.keeper = null;
    this.dropLink();
    this.session = null;
    this.setState('disconnected', '');
    this.wake();
  }
}

export function sshServer(def: ServerDefinition, ctx: SshConnectionContext): SshServer {
  return new SshServer(def, ctx);
}
