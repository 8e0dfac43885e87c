// One server as the console sees it: how it is reached (SSH or the local lab), its connection state,
// its agent and the last status the agent pushed.
import type { ConnectionState, ServerView } from '../../common/console-api.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { checkResourceDatabase, type ResourceDatabase } from '../../common/resource-database.js';
import type { AgentInfo, AgentLink } from './agent-link.js';

export interface ServerConnection {
  readonly name: string;
  view(): ServerView;
  /** One call to the node's agent; rejects with a message naming the server if it is not reachable. */
  call(method: string, params: Record<string, unknown>): Promise<unknown>;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /** Called whenever view() would return something new. */
  onChange(listener: () => void): void;
  /** This node's copy of the resource database as last read, or null (not connected, or not read yet). */
  resourceDatabase(): ResourceDatabase | null;
  readResourceDatabase(): Promise<ResourceDatabase | null>;
}

/** Calls that change nothing on the node: no status refresh after them. */
const READ_ONLY_METHODS = new Set(['agent.info', 'agent.watch', 'mirror.status', 'mirror.bookmarks', 'resource.disks', 'resource.database']);

/** The part every kind of connection shares: state, agent info, mirrors, change notification. */
export abstract class BaseConnection implements ServerConnection {
  protected state: ConnectionState = 'disconnected';
  protected message = '';
  protected since = Date.now();
  protected agentInfo: AgentInfo | null = null;
  protected mirrors: MirrorStatus[] = [];
  protected link: AgentLink | null = null;
  private resourceDb: ResourceDatabase | null = null;
  private resourceDbReading: Promise<void> | null = null;
  private readonly listeners: Array<() => void> = [];

  constructor(readonly name: string, protected readonly kind: 'ssh' | 'local', protected readonly address: string) {}

  view(): ServerView {
    return {
      name: this.name,
      address: this.address,
      kind: this.kind,
      connection: { state: this.state, message: this.message, since: this.since },
      agent: { version: this.agentInfo?.version ?? null, running: this.link !== null && !this.link.closed },
      mirrors: this.mirrors,
    };
  }

  resourceDatabase(): ResourceDatabase | null {
    return this.link && !this.link.closed ? this.resourceDb : null;
  }

  /** Reads this node's resource database again (after a save, or when its version moved). */
  async readResourceDatabase(): Promise<ResourceDatabase | null> {
    const link = this.link;
    if (!link || link.closed) return null;
    try {
      this.resourceDb = checkResourceDatabase(await link.call('resource.database', {}));
    } catch {
      this.resourceDb = null; // an agent from before the resource database, or a damaged answer: not counted
    }
    this.changed();
    return this.resourceDb;
  }

  async call(method: string, params: Record<string, unknown>): Promise<unknown> {
    if (!this.link || this.link.closed) {
      throw new Error(`${this.name} is ${this.state === 'connected' ? 'connected but its agent is not running' : this.state}${this.message ? `: ${this.message}` : ''}; connect to it first`);
    }
    const result = await this.link.call(method, params);
    if (!READ_ONLY_METHODS.has(method)) await this.refreshMirrors();
    return result;
  }

  /** The status right after an action, so the window never shows the state from before it until the next push. */
  private async refreshMirrors(): Promise<void> {
    const link = this.link;
    if (!link || link.closed) return;
    try {
      this.mirrors = (await link.call('mirror.status', {})) as MirrorStatus[];
      this.changed();
    } catch {
      // the next pushed status brings it
    }
  }

  abstract connect(): Promise<void>;
  abstract disconnect(): Promise<void>;

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  protected setState(state: ConnectionState, message = ''): void {
    if (state === this.state && message === this.message) return;
    this.state = state;
    this.message = message;
    this.since = Date.now();
    this.changed();
  }

  protected changed(): void {
    for (const l of this.listeners) l();
  }

  /** Takes over an agent link: watches its status, notices when it drops. */
  protected async adopt(link: AgentLink, onDrop: (err: Error) => void): Promise<void> {
    this.link = link;
    link.onClose((err) => {
      if (this.link !== link) return;
      this.link = null;
      onDrop(err);
      this.changed();
    });
    this.agentInfo = (await link.call('agent.info', {})) as AgentInfo;
    await this.readResourceDatabase();
    await link.watch((info, mirrors) => {
      this.agentInfo = info;
      this.mirrors = mirrors;
      // Another console (or a CLI) saved a new version: read it, once at a time.
      if (info.resourceDatabaseVersion !== undefined && info.resourceDatabaseVersion !== this.resourceDb?.version && !this.resourceDbReading) {
        this.resourceDbReading = this.readResourceDatabase().then(() => undefined).finally(() => (this.resourceDbReading = null));
      }
      this.changed();
    });
  }
}
