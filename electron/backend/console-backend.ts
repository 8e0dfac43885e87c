// The console API implemented in plain Node: the cluster (saved definition or the local lab), one
// connection per server, prompts, deployment and the output log. Electron's main process and the
// browser-mode server both hand calls to one ConsoleBackend after validating them (parseConsoleCall).
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KnownHosts } from './ssh/known-hosts.js';
import type {
  ClusterDefinition, ClusterView, CommPath, ConsoleApi, ConsoleEvent, DeployProgress, OutputEntry, PromptAnswer, ServerDefinition,
  ServerDefinitionInput, ServerView,
} from '../../common/console-api.js';
import { serverDefinition } from '../../common/console-api.js';
import { actionName, cliEquivalent } from '../../common/cli-equivalent.js';
import { EMPTY_RESOURCE_DATABASE, type ResourceDatabase } from '../../common/resource-database.js';
import { ClusterStore, SecretStore, type SecretCipher } from './cluster-store.js';
import { LocalLab, type LocalLabNode } from './local-lab.js';
import { PromptBroker } from './prompts.js';
import { BaseConnection, type ServerConnection } from './server-connection.js';
import { HierarchyActions } from './hierarchy-actions.js';
import type { HierarchyRequest } from '../../common/hierarchy.js';
import type { ExtendForm } from '../../common/wizard-rules.js';

const MAX_OUTPUT = 1000;

/** A local-lab node: its agent link is there from the start. */
class LabConnection extends BaseConnection {
  constructor(private readonly node: LocalLabNode) {
    super(node.name, 'local', `local ${node.replication}`);
  }
  async connect(): Promise<void> {
    if (this.link && !this.link.closed) return;
    this.setState('connecting');
    await this.adopt(this.node.link, (err) => this.setState('failed', `the lab agent stopped: ${err.message}`));
    this.setState('connected');
  }
  async disconnect(): Promise<void> {
    this.setState('disconnected');
  }
}

/** Everything a server connection over SSH needs from the backend. */
export interface SshConnectionContext {
  ask(server: string, prompt: import('./ssh/types.js').SshPrompt): Promise<PromptAnswer | null>;
  secrets: SecretStore;
  dataDir: string;
  agentBundle: string;
  progress(p: DeployProgress): void;
}

export interface SshServerConnection extends ServerConnection {
  deploy(): Promise<void>;
  uninstall(): Promise<void>;
}

export interface ConsoleBackendOptions {
  /** The console's data folder (cluster.json, known_hosts, secrets, the local lab). */
  dataDir: string;
  /** The built agent bundle deployed to nodes and run by the local lab. */
  agentBundle: string;
  /** Electron's safeStorage; null in browser mode (nothing is remembered). */
  cipher?: SecretCipher | null;
  /** How SSH servers are reached (electron/backend/ssh-server.ts). */
  sshConnection?: (def: ServerDefinition, context: SshConnectionContext) => SshServerConnection;
}

export class ConsoleBackend implements ConsoleApi {
  private readonly events = new EventEmitter();
  private readonly store: ClusterStore;
  readonly secrets: SecretStore;
  private readonly prompts: PromptBroker;
  private definition: ClusterDefinition | null;
  private lab: LocalLab | null = null;
  private readonly connections = new Map<string, ServerConnection>();
  private readonly log: OutputEntry[] = [];
  private clusterTimer: NodeJS.Timeout | null = null;
  private readonly hierarchy = new HierarchyActions({
    cluster: () => this.cluster(),
    call: (server, method, params) => this.agentCall(server, method, params),
    record: (server, action, command, ok, message) => this.record(server, action, command, ok, message),
    db: { read: () => this.resourceDatabase(), write: (db) => this.saveResourceDatabase(db) },
  });
  private readonly catchingUp = new Set<string>();
  /** Saves run one after another: the version check and the writes must not interleave. */
  private saving: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ConsoleBackendOptions) {
    this.events.setMaxListeners(100);
    this.store = new ClusterStore(options.dataDir);
    this.secrets = new SecretStore(options.dataDir, options.cipher ?? null);
    this.prompts = new PromptBroker((prompt) => this.emit({ type: 'prompt', prompt }), (id) => this.emit({ type: 'prompt-closed', id }));
    this.definition = this.store.load();
    for (const s of this.definition?.servers ?? []) this.addConnection(s);
  }

  onEvent(listener: (e: ConsoleEvent) => void): () => void {
    this.events.on('event', listener);
    return () => this.events.off('event', listener);
  }

  private emit(e: ConsoleEvent): void {
    this.events.emit('event', e);
  }

  /** Coalesces bursts of changes into one cluster event. */
  private clusterChanged(): void {
    if (this.clusterTimer) return;
    this.clusterTimer = setTimeout(() => {
      this.clusterTimer = null;
      this.catchUpResourceDatabases();
      this.emit({ type: 'cluster', cluster: this.view() });
    }, 50);
  }

  private view(): ClusterView {
    const servers: ServerView[] = [...this.connections.values()].map((c) => c.view());
    const resources = this.newestResourceDatabase();
    if (this.lab) return { name: 'Local lab', mode: 'local-lab', servers, commPaths: this.labCommPaths(), resources };
    if (!this.definition) return { name: 'No cluster', mode: 'none', servers: [], commPaths: [], resources };
    return { name: this.definition.name, mode: 'ssh', servers, commPaths: this.definition.commPaths, resources };
  }

  /** The highest-version copy among the connected agents (each connection keeps its node's copy). */
  private newestResourceDatabase(): ResourceDatabase {
    let best = EMPTY_RESOURCE_DATABASE;
    for (const c of this.connections.values()) {
      const db = c.resourceDatabase();
      if (db && db.version > best.version) best = db;
    }
    return best;
  }

  /** A node that was away when a change was saved gets the newest copy when it is back. */
  private catchUpResourceDatabases(): void {
    const best = this.newestResourceDatabase();
    if (best.version === 0) return;
    for (const c of this.connections.values()) {
      const db = c.resourceDatabase();
      if (!db || db.version >= best.version || this.catchingUp.has(c.name)) continue;
      this.catchingUp.add(c.name);
      void c.call('resource.savedatabase', { database: best })
        .then(() => c.readResourceDatabase())
        .catch(() => undefined) // it is retried on the next change; the newest copy is still shown
        .finally(() => this.catchingUp.delete(c.name));
    }
  }

  private labCommPaths(): CommPath[] {
    const nodes = this.lab?.nodes ?? [];
    const paths: CommPath[] = [];
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {
      paths.push({ servers: [nodes[i]!.name, nodes[j]!.name], addresses: ['127.0.0.1', '127.0.0.1'] });
    }
    return paths;
  }

  private addConnection(def: ServerDefinition): void {
    if (!this.options.sshConnection) throw new Error('SSH connections are not available in this build');
    const c = this.options.sshConnection(def, {
      ask: (server, prompt) => this.prompts.ask(server, prompt),
      secrets: this.secrets,
      dataDir: this.options.dataDir,
      agentBundle: this.options.agentBundle,
      progress: (progress) => this.emit({ type: 'deploy', progress }),
    });
    c.onChange(() => this.clusterChanged());
    this.connections.set(def.name, c);
  }

  private connection(name: string): ServerConnection {
    const c = this.connections.get(name);
    if (!c) throw new Error(`no server "${name}" in the cluster; servers: ${[...this.connections.keys()].join(', ') || 'none'}`);
    return c;
  }

  private requireSshCluster(action: string): ClusterDefinition {
    if (this.lab) throw new Error(`${action}: the local lab is open; close it first (File → Close Local Lab)`);
    this.definition ??= { version: 1, name: 'cluster', servers: [], commPaths: [] };
    return this.definition;
  }

  private record(server: string, action: string, command: string, ok: boolean, message: string): void {
    const entry: OutputEntry = { time: Date.now(), server, action, command, ok, message };
    this.log.push(entry);
    if (this.log.length > MAX_OUTPUT) this.log.splice(0, this.log.length - MAX_OUTPUT);
    this.emit({ type: 'output', entry });
  }

  // ---- ConsoleApi ----

  async cluster(): Promise<ClusterView> {
    return this.view();
  }

  async addServer(input: ServerDefinitionInput): Promise<ClusterView> {
    const server = serverDefinition.parse(input);
    const def = this.requireSshCluster('Add Server');
    if (def.servers.some((s) => s.name === server.name)) throw new Error(`a server named "${server.name}" is already in the cluster`);
    const next = { ...def, servers: [...def.servers, server] };
    this.store.save(next);
    this.definition = next;
    this.addConnection(server);
    this.clusterChanged();
    return this.view();
  }

  async removeServer(name: string): Promise<ClusterView> {
    const def = this.requireSshCluster('Remove Server');
    const c = this.connection(name);
    await c.disconnect();
    this.connections.delete(name);
    const next = { ...def, servers: def.servers.filter((s) => s.name !== name), commPaths: def.commPaths.filter((p) => !p.servers.includes(name)) };
    this.store.save(next);
    this.definition = next;
    this.secrets.forget(`${name}/`);
    this.clusterChanged();
    return this.view();
  }

  async setCommPath(p: CommPath): Promise<ClusterView> {
    const def = this.requireSshCluster('Create Comm Path');
    for (const s of p.servers) this.connection(s);
    if (p.servers[0] === p.servers[1]) throw new Error('a comm path joins two different servers');
    const same = (q: CommPath) => new Set([...q.servers, ...p.servers]).size === 2;
    const next = { ...def, commPaths: [...def.commPaths.filter((q) => !same(q)), p] };
    this.store.save(next);
    this.definition = next;
    this.clusterChanged();
    return this.view();
  }

  async connect(name: string): Promise<ServerView> {
    const c = this.connection(name);
    await c.connect();
    return c.view();
  }

  async disconnect(name: string): Promise<ServerView> {
    const c = this.connection(name);
    await c.disconnect();
    return c.view();
  }

  async answerPrompt(id: string, answer: PromptAnswer): Promise<void> {
    this.prompts.answer(id, answer);
  }

  async deploy(name: string): Promise<ServerView> {
    const c = this.connection(name) as Partial<SshServerConnection> & ServerConnection;
    if (!c.deploy) throw new Error(`${name} is a local-lab node: its agent runs from this console, there is nothing to deploy`);
    try {
      await c.deploy();
      this.record(name, 'Deploy agent', 'systemctl status tandem-agent', true, `agent deployed and running on ${name}`);
    } catch (err) {
      this.record(name, 'Deploy agent', 'systemctl status tandem-agent', false, (err as Error).message);
      throw err;
    }
    return c.view();
  }

  async uninstall(name: string): Promise<ServerView> {
    const c = this.connection(name) as Partial<SshServerConnection> & ServerConnection;
    if (!c.uninstall) throw new Error(`${name} is a local-lab node: close the local lab instead`);
    await c.uninstall();
    this.record(name, 'Uninstall agent', 'systemctl disable --now tandem-agent', true, `agent removed from ${name}; disks and their data untouched`);
    return c.view();
  }

  async agentCall(server: string, method: string, params: Record<string, unknown>): Promise<unknown> {
    const command = cliEquivalent(method, params);
    const quiet = method === 'mirror.status' || method === 'agent.info' || method === 'resource.disks' || method === 'resource.database';
    try {
      const result = await this.connection(server).call(method, params);
      if (!quiet) this.record(server, actionName(method, params), command, true, 'done');
      return result;
    } catch (err) {
      this.record(server, actionName(method, params), command, false, (err as Error).message);
      throw err;
    }
  }

  async openLocalLab(nodes: number): Promise<ClusterView> {
    if (this.lab) return this.view();
    for (const c of this.connections.values()) await c.disconnect();
    this.connections.clear();
    const lab = new LocalLab(path.join(this.options.dataDir, 'local-lab'), this.options.agentBundle);
    const started = await lab.start(nodes);
    this.lab = lab;
    for (const node of started) {
      const c = new LabConnection(node);
      c.onChange(() => this.clusterChanged());
      this.connections.set(node.name, c);
      await c.connect();
    }
    this.record('local', 'Open Local Lab', `tandem-agent run (x${nodes}, TANDEM_HOME=${lab.dir}/nodeN)`, true, `${nodes} agents running on this machine`);
    this.clusterChanged();
    return this.view();
  }

  async closeLocalLab(): Promise<ClusterView> {
    if (!this.lab) return this.view();
    const lab = this.lab;
    this.lab = null;
    this.connections.clear();
    await lab.stop();
    for (const s of this.definition?.servers ?? []) this.addConnection(s);
    this.clusterChanged();
    return this.view();
  }

  async output(): Promise<OutputEntry[]> {
    return this.log.slice();
  }

  async importKnownHosts(file: string | null): Promise<{ imported: number; skipped: number; file: string }> {
    const from = file ?? path.join(os.homedir(), '.ssh', 'known_hosts');
    if (!path.isAbsolute(from)) throw new Error(`${from}: give an absolute path to a known_hosts file`);
    if (!fs.existsSync(from)) throw new Error(`${from} does not exist; nothing imported`);
    const r = new KnownHosts(path.join(this.options.dataDir, 'known_hosts')).importKnownHosts(from);
    this.record('console', 'Import known hosts', `(from ${from})`, true, `${r.imported} host keys imported, ${r.skipped} lines skipped`);
    return { ...r, file: from };
  }

  async resourceDatabase(): Promise<ResourceDatabase> {
    await Promise.all([...this.connections.values()].map((c) => c.readResourceDatabase()));
    return this.newestResourceDatabase();
  }

  saveResourceDatabase(db: ResourceDatabase): Promise<ResourceDatabase> {
    const run = this.saving.then(() => this.writeResourceDatabase(db));
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async writeResourceDatabase(db: ResourceDatabase): Promise<ResourceDatabase> {
    const action = 'Save resource database';
    const connected = [...this.connections.values()].filter((c) => c.view().agent.running);
    const next: ResourceDatabase = { ...db, version: db.version + 1 };
    const command = cliEquivalent('resource.savedatabase', { database: next });
    const fail = (message: string): never => {
      this.record('cluster', action, command, false, message);
      throw new Error(message);
    };
    if (connected.length === 0) fail('no server is connected: the resource database lives on the servers; connect to at least one first');
    const current = await this.resourceDatabase();
    if (current.version !== db.version) {
      fail(`the resource database changed meanwhile (it is at version ${current.version}, you read version ${db.version}); reload and make your change again`);
    }
    const results = await Promise.allSettled(connected.map((c) => c.call('resource.savedatabase', { database: next })));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${connected[i]!.name}: ${(r.reason as Error).message}`] : []));
    await Promise.all(connected.map((c) => c.readResourceDatabase()));
    this.clusterChanged();
    if (failed.length === connected.length) fail(`not saved: ${failed.join('; ')}`);
    const saved = connected.filter((_c, i) => results[i]!.status === 'fulfilled').map((c) => c.name);
    this.record('cluster', action, command, failed.length === 0,
      `version ${next.version} saved on ${saved.join(', ')}${failed.length ? `; not on ${failed.join('; ')} (it gets the newest copy when it is back)` : ''}`);
    return next;
  }

  createHierarchy(request: HierarchyRequest) {
    return this.hierarchy.createHierarchy(request);
  }

  extendHierarchy(request: ExtendForm) {
    return this.hierarchy.extendHierarchy(request);
  }

  unextendHierarchy(tag: string, server: string) {
    return this.hierarchy.unextendHierarchy(tag, server);
  }

  deleteHierarchy(tag: string) {
    return this.hierarchy.deleteHierarchy(tag);
  }

  inService(tag: string, server: string) {
    return this.hierarchy.inService(tag, server);
  }

  outOfService(tag: string, server: string) {
    return this.hierarchy.outOfService(tag, server);
  }

  createDependency(parent: string, child: string) {
    return this.hierarchy.createDependency(parent, child);
  }

  deleteDependency(parent: string, child: string) {
    return this.hierarchy.deleteDependency(parent, child);
  }

  /** The local lab's nodes (disks, homes) — for the GUI's Create Resource wizard and tests. */
  labNodes(): LocalLabNode[] {
    return this.lab?.nodes ?? [];
  }

  async close(): Promise<void> {
    this.prompts.cancelAll();
    if (this.clusterTimer) clearTimeout(this.clusterTimer);
    for (const c of this.connections.values()) await c.disconnect().catch(() => undefined);
    if (this.lab) await this.lab.stop();
    this.lab = null;
  }
}
