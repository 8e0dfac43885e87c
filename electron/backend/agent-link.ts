// A JSON-RPC 2.0 client for one agent, over any pair of streams: the control socket itself (local lab)
// or the stdin/stdout of `tandem ctl` on an SSH exec channel. One object per line, as the agent speaks.
import type { Readable, Writable } from 'node:stream';
import type { MirrorStatus } from '../../common/mirror-status.js';

export interface AgentInfo {
  node: string;
  version: string;
  replication: string;
  /** Agents from before the resource database leave it out. */
  resourceDatabaseVersion?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  method: string;
}

export class AgentCallError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}

const MAX_LINE = 16 * 1024 * 1024;

export class AgentLink {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buffered = '';
  private ended: Error | null = null;
  private readonly statusListeners: Array<(info: AgentInfo, mirrors: MirrorStatus[]) => void> = [];
  private readonly closeListeners: Array<(err: Error) => void> = [];

  constructor(
    private readonly fromAgent: Readable,
    private readonly toAgent: Writable,
    /** Names the agent in errors, e.g. "node2". */
    private readonly name: string,
  ) {
    fromAgent.setEncoding('utf8');
    fromAgent.on('data', (text: string) => this.receive(text));
    fromAgent.once('end', () => this.end(new Error(`the connection to the agent on ${name} closed`)));
    fromAgent.once('close', () => this.end(new Error(`the connection to the agent on ${name} closed`)));
    fromAgent.on('error', (err: Error) => this.end(err));
    toAgent.on('error', (err: Error) => this.end(err));
  }

  get closed(): boolean {
    return this.ended !== null;
  }

  call(method: string, params: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<unknown> {
    if (this.ended) return Promise.reject(new Error(`${this.name}: ${this.ended.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the agent on ${this.name} did not answer ${method} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.toAgent.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
    });
  }

  /** Asks the agent to push its status whenever it changes (agent.watch) and calls `listener` each time. */
  async watch(listener: (info: AgentInfo, mirrors: MirrorStatus[]) => void, intervalMs = 1000): Promise<void> {
    this.statusListeners.push(listener);
    await this.call('agent.watch', { intervalMs });
  }

  onClose(listener: (err: Error) => void): void {
    if (this.ended) listener(this.ended);
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.toAgent.end();
    this.end(new Error(`the connection to the agent on ${this.name} was closed`));
  }

  private receive(text: string): void {
    this.buffered += text;
    if (this.buffered.length > MAX_LINE && !this.buffered.includes('\n')) {
      this.end(new Error(`the agent on ${this.name} sent a line longer than ${MAX_LINE} bytes`));
      return;
    }
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line) this.dispatch(line);
    }
  }

  private dispatch(line: string): void {
    let msg: { id?: unknown; result?: unknown; error?: { message?: unknown; code?: unknown }; method?: unknown; params?: unknown };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours (e.g. a login banner); the agent only ever writes JSON lines
    }
    if (typeof msg.method === 'string' && msg.id === undefined) {
      if (msg.method === 'agent.status') {
        const p = msg.params as { info: AgentInfo; mirrors: MirrorStatus[] };
        for (const l of this.statusListeners) l(p.info, p.mirrors);
      }
      return;
    }
    const pending = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!pending) return;
    this.pending.delete(msg.id as number);
    clearTimeout(pending.timer);
    if (msg.error) pending.reject(new AgentCallError(String(msg.error.message ?? 'error'), typeof msg.error.code === 'number' ? msg.error.code : -32000));
    else pending.resolve(msg.result);
  }

  private end(err: Error): void {
    if (this.ended) return;
    this.ended = err;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error(`${p.method} on ${this.name}: ${err.message}`));
    }
    this.pending.clear();
    for (const l of this.closeListeners.splice(0)) l(err);
  }
}
