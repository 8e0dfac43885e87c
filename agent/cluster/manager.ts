// The cluster manager inside each agent: every LCMHBEATTIME it sends a heartbeat on every comm path,
// updates membership from the beats received, computes quorum, runs one decide() round and carries
// the actions out through the daemon's own in-service / out-of-service paths (ClusterActions). Every
// decision is logged with its reasons when it changes; `tandem cluster status` shows the last ones.
// The console is never needed for the cluster to act.
import { spawn } from 'node:child_process';
import type { ResourceDatabase } from '../../common/resource-database.js';
import type { Logger } from '../log.js';
import type { NodeCredentials } from '../replication/transport.js';
import { CommPaths, pathName, splitHostPort, type ClusterPeer } from './commpaths.js';
import { decide, type Action } from './decide.js';
import { hierarchyFacts } from './facts.js';
import { HeartbeatIo } from './heartbeat-io.js';
import type { Heartbeat, MirrorBeat } from './heartbeat-wire.js';
import { Membership, type PeerView, type ServerState } from './membership.js';
import { quorum, type Quorum } from './quorum.js';
import { detectionMs, type ClusterSettings } from './settings.js';
import { ConfirmGate, type ConfirmAnswer, type Timers } from './successor.js';

/** The one interface the manager uses to act on the daemon. */
export interface ClusterActions {
  /** This server's copies, as its heartbeats announce them. */
  hierarchies(): MirrorBeat[];
  resourceDatabase(): ResourceDatabase | null;
  /** Failover: bring `tag` in service here, its source `failed` being gone. */
  goInService(tag: string, failed: string, reason: string): Promise<string>;
  /** QUORUM_LOSS_ACTION=osu. */
  goOutOfService(tag: string, reason: string): Promise<string>;
}

export interface ClusterStatus {
  node: string;
  heartbeat: string;
  settings: { heartbeatSeconds: number; missedBeats: number; detectionSeconds: number; quorumMode: string; confirmTimeoutSeconds: number; confirmDefault: string };
  servers: Array<{ name: string; state: ServerState | 'this server'; warning: string; paths: Array<{ path: string; state: string; lastHeartbeat: number | null; secondsAgo: number | null }> }>;
  quorum: Quorum;
  pending: Array<{ tag: string; failed: string; deadline: number; secondsLeft: number }>;
  decisions: Array<{ tag: string; kind: Action['kind']; reason: string; at: number }>;
}

export interface ManagerOptions {
  node: string;
  settings: ClusterSettings;
  creds: NodeCredentials | null;
  commPaths: CommPaths;
  actions: ClusterActions;
  log: Logger;
  timers?: Timers;
}

const realTimers: Timers = { now: () => Date.now(), setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

export class ClusterManager {
  private readonly io: HeartbeatIo;
  private readonly membership: Membership;
  private readonly beats = new Map<string, Heartbeat>();
  private readonly gate: ConfirmGate;
  private readonly timers: Timers;
  private readonly pendingTags = new Map<string, string>();
  /** tag|failed → the outcome of a failover tried (or blocked): not tried again until `failed` is seen alive. */
  private readonly handled = new Map<string, string>();
  private readonly busy = new Set<string>();
  /** When each server was first seen failed (for the split-brain margin). */
  private readonly failedSince = new Map<string, number>();
  private readonly decisions = new Map<string, { kind: Action['kind']; reason: string; at: number }>();
  private interval: NodeJS.Timeout | null = null;
  private heartbeatAddress = '';

  constructor(private o: ManagerOptions) {
    this.timers = o.timers ?? realTimers;
    this.membership = new Membership(detectionMs(o.settings), this.timers.now());
    this.gate = new ConfirmGate(this.timers, o.settings.confirmTimeoutSeconds, o.settings.confirmDefault);
    this.io = new HeartbeatIo({
      node: o.node, creds: o.creds, heartbeatMs: o.settings.heartbeatSeconds * 1000, log: o.log,
      onHeartbeat: (h, path) => this.received(h, path),
    });
  }

  async start(host: string, port: number): Promise<number> {
    const p = await this.io.listen(host, port);
    this.heartbeatAddress = `${host.includes(':') ? `[${host}]` : host}:${p}`;
    this.applyPeers();
    this.interval = setInterval(() => this.round(), this.o.settings.heartbeatSeconds * 1000);
    this.interval.unref();
    setImmediate(() => this.round());
    return p;
  }

  /** The graceful stop: peers are told, so this never counts as a failure. */
  async stop(): Promise<void> {
    if (this.interval) clearInterval(this.interval);
    this.interval = null;
    await this.io.close({ stopping: true, mirrors: this.safeHierarchies() });
  }

  private safeHierarchies(): MirrorBeat[] {
    try {
      return this.o.actions.hierarchies();
    } catch (err) {
      this.o.log.error(`cluster: reading this server's copies: ${(err as Error).message}`);
      return [];
    }
  }

  /** Takes the comm paths as they are now (after `tandem commpath add|remove`). */
  applyPeers(paths: CommPaths = this.o.commPaths): void {
    this.o.commPaths = paths;
    const peers = paths.peers();
    for (const p of peers) this.membership.setPeer(p.node, p.paths.map((c) => pathName(c.local, splitHostPort(c.remote, 'remote').host)), this.timers.now());
    const names = new Set(peers.map((p) => p.node));
    for (const v of this.membership.view(this.timers.now())) if (!names.has(v.server)) this.membership.removePeer(v.server);
    this.io.setPeers(peers);
  }

  peers(): ClusterPeer[] {
    return this.o.commPaths.peers();
  }

  /** A valid heartbeat arrived (from HeartbeatIo; tests feed it directly). */
  received(h: Heartbeat, path: string): void {
    const now = this.timers.now();
    if (h.stopping) {
      this.membership.announcedStop(h.node, now);
      this.o.log.info(`cluster: ${h.node} announced a graceful stop; it is stopped, not failed`);
    } else this.membership.heartbeat(h.node, path, now);
    this.beats.set(h.node, h);
  }

  private view(now: number, pretendFailed?: string): { peers: PeerView[]; states: Map<string, ServerState>; q: Quorum } {
    const peers = this.membership.view(now);
    const states = new Map<string, ServerState>(peers.map((p) => [p.server, p.server === pretendFailed ? 'failed' : p.state]));
    const servers = [this.o.node, ...peers.map((p) => p.server)];
    const alive = [this.o.node, ...peers.filter((p) => states.get(p.server) === 'alive').map((p) => p.server)];
    const witnessVote = false; // the witness's network voter is not built yet: QUORUM_MODE=witness counts it as not voting
    return { peers, states, q: quorum({ mode: this.o.settings.quorumMode, servers, alive, witnessVote }) };
  }

  /** What this server would do now (pretendFailed: as if that server had failed). */
  actionsNow(pretendFailed?: string): { q: Quorum; actions: Action[] } {
    const now = this.timers.now();
    const { states, q } = this.view(now, pretendFailed);
    const facts = hierarchyFacts({ self: this.o.node, copies: this.safeHierarchies(), beats: this.beats, states, db: this.o.actions.resourceDatabase() });
    return { q, actions: decide(this.o.node, q, facts) };
  }

  /** One round: beat, decide, act. */
  round(): void {
    const mirrors = this.safeHierarchies();
    this.io.beat({ stopping: false, mirrors });
    const now = this.timers.now();
    const { states } = this.view(now);
    for (const [server, state] of states) {
      if (state !== 'failed') this.failedSince.delete(server);
      else if (!this.failedSince.has(server)) this.failedSince.set(server, now);
    }
    // A failed server seen alive again: its failovers may be decided anew next time.
    for (const key of [...this.handled.keys()]) {
      const failed = key.slice(key.indexOf('|') + 1);
      if (states.get(failed) === 'alive' || states.get(failed) === 'stopped') this.handled.delete(key);
    }
    const { actions } = this.actionsNow();
    for (const a of actions) this.carryOut(a, now);
  }

  private note(a: { tag: string; kind: Action['kind']; reason: string }, now: number): void {
    const last = this.decisions.get(a.tag);
    if (last && last.reason === a.reason && last.kind === a.kind) return;
    this.decisions.set(a.tag, { kind: a.kind, reason: a.reason, at: now });
    const line = `cluster decision for ${a.tag}: ${a.kind === 'none' ? 'nothing to do' : a.kind}: ${a.reason}`;
    if (a.kind === 'none') this.o.log.info(line);
    else this.o.log.warn(line);
  }

  private carryOut(a: Action, now: number): void {
    if (this.busy.has(a.tag)) return;
    if (a.kind === 'none') return this.note(a, now);
    if (a.kind === 'out of service') {
      this.note(a, now);
      this.busy.add(a.tag);
      void this.o.actions.goOutOfService(a.tag, a.reason)
        .then((m) => this.o.log.warn(`cluster: ${m}`), (e: Error) => this.o.log.error(`cluster: taking ${a.tag} out of service failed: ${e.message}`))
        .finally(() => this.busy.delete(a.tag));
      return;
    }
    const key = `${a.tag}|${a.failed}`;
    const done = this.handled.get(key);
    if (done !== undefined) return this.note({ tag: a.tag, kind: 'none', reason: done }, now);
    // The split-brain guard's margin: a source only cut off from this side counts the same silence and
    // takes itself out of service on its round at that moment; the successor waits one LCMHBEATTIME more.
    const since = this.failedSince.get(a.failed) ?? now;
    if (now - since < this.o.settings.heartbeatSeconds * 1000) {
      return this.note({ tag: a.tag, kind: 'none', reason: `${a.failed} failed; ${this.o.node} goes in service after one more LCMHBEATTIME, so that ${a.failed}, if only cut off, has taken ${a.tag} out of service first` }, now);
    }
    this.note(a, now);
    this.busy.add(a.tag);
    void this.failover(a, key).finally(() => this.busy.delete(a.tag));
  }

  private async failover(a: Extract<Action, { kind: 'in service' }>, key: string): Promise<void> {
    const at = () => this.timers.now();
    if (a.confirm) {
      this.pendingTags.set(a.failed, a.tag);
      this.o.log.warn(`cluster: ${a.tag}: Confirm Failover is On for ${a.failed}: waiting for lk_confirmso -y -s ${a.failed} (proceed) or -n -s ${a.failed} (block), at most ${this.o.settings.confirmTimeoutSeconds} s`);
      const r = await this.gate.wait(a.failed);
      this.pendingTags.delete(a.failed);
      if (r.answer === 'block') {
        const reason = `${a.failed} failed; failover of ${a.tag} to ${this.o.node} blocked (${r.by})`;
        this.handled.set(key, reason);
        return this.note({ tag: a.tag, kind: 'none', reason }, at());
      }
      this.o.log.warn(`cluster: ${a.tag}: failover confirmed (${r.by})`);
    }
    const fence = this.o.settings.fenceCommand;
    if (fence) {
      const r = await runFence(fence, a.failed);
      if (r !== null) {
        const reason = `${a.failed} failed; the fence command failed (${r}): no failover of ${a.tag} until ${a.failed} is fenced`;
        this.handled.set(key, reason);
        return this.note({ tag: a.tag, kind: 'none', reason }, at());
      }
      this.o.log.warn(`cluster: ${a.failed} fenced (${fence} ${a.failed})`);
    }
    try {
      const m = await this.o.actions.goInService(a.tag, a.failed, a.reason);
      this.handled.set(key, `${a.tag} went in service on ${this.o.node} after ${a.failed} failed`);
      this.o.log.warn(`cluster: failover: ${m}`);
    } catch (err) {
      const reason = `${a.failed} failed; bringing ${a.tag} in service on ${this.o.node} failed: ${(err as Error).message}`;
      this.handled.set(key, reason);
      this.note({ tag: a.tag, kind: 'none', reason }, at());
    }
  }

  /** lk_confirmso -y|-n -s FAILED. */
  confirm(failed: string, answer: ConfirmAnswer): string {
    const tag = this.pendingTags.get(failed);
    if (!this.gate.answer(failed, answer)) {
      const waiting = this.gate.list().map((p) => p.failed);
      throw new Error(`no failover from ${failed} is waiting for confirmation on ${this.o.node}${waiting.length ? `; waiting: ${waiting.join(', ')}` : ''}`);
    }
    return `failover of ${tag ?? 'the hierarchies'} from ${failed} ${answer === 'proceed' ? 'confirmed: it proceeds' : 'blocked'} on ${this.o.node}`;
  }

  status(): ClusterStatus {
    const now = this.timers.now();
    const { peers, q } = this.view(now);
    const s = this.o.settings;
    return {
      node: this.o.node, heartbeat: this.heartbeatAddress,
      settings: { heartbeatSeconds: s.heartbeatSeconds, missedBeats: s.missedBeats, detectionSeconds: detectionMs(s) / 1000, quorumMode: s.quorumMode, confirmTimeoutSeconds: s.confirmTimeoutSeconds, confirmDefault: s.confirmDefault },
      servers: [
        { name: this.o.node, state: 'this server', warning: '', paths: [] },
        ...peers.map((p) => ({
          name: p.server, state: p.state, warning: p.warning,
          paths: p.paths.map((x) => ({ path: x.path, state: x.state, lastHeartbeat: x.lastHeartbeat, secondsAgo: x.lastHeartbeat === null ? null : Math.round((now - x.lastHeartbeat) / 100) / 10 })),
        })),
      ],
      quorum: q,
      pending: this.gate.list().map((p) => ({ tag: this.pendingTags.get(p.failed) ?? '', failed: p.failed, deadline: p.deadline, secondsLeft: Math.max(0, Math.ceil((p.deadline - now) / 1000)) })),
      decisions: [...this.decisions].map(([tag, d]) => ({ tag, ...d })),
    };
  }
}

/** Runs FENCE_CMD with the failed server's name (via sh, bounded to 120 s): null when it succeeded. */
function runFence(command: string, server: string): Promise<string | null> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `${command} "$1"`, 'fence', server], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-500)));
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', (e) => resolve(e.message));
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve(code === 0 ? null : `${command} ${server} exited ${code ?? signal}${err.trim() ? `: ${err.trim()}` : ''}`);
    });
  });
}
