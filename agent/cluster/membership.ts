// Membership: which servers are alive, from the heartbeats seen on each comm path. Pure: the caller
// feeds heartbeats and the time (an injected clock), and asks for the view at a time.
// A server is failed only when every path to it has been silent for LCMNUMHBEATS beats (one path down
// is a warning); a server that announced a graceful stop is 'stopped', never 'failed', so it never
// triggers a failover.

export type ServerState = 'alive' | 'failed' | 'stopped' | 'unknown';
export type PathState = 'up' | 'down' | 'unknown';

export interface PathView {
  path: string;
  state: PathState;
  /** Time (ms) of the last heartbeat on this path, or null if none yet. */
  lastHeartbeat: number | null;
}

export interface PeerView {
  server: string;
  state: ServerState;
  paths: PathView[];
  /** Set when some but not all paths are down: "comm path 10.0.1.2 down (last heartbeat 12 s ago)". */
  warning: string;
}

interface PeerRecord {
  paths: Map<string, number | null>;
  /** Time of a graceful-stop announcement not followed by a heartbeat. */
  stoppedAt: number | null;
}

export class Membership {
  private readonly peers = new Map<string, PeerRecord>();
  private readonly startedAt: number;

  /** @param silenceMs LCMHBEATTIME × LCMNUMHBEATS in ms */
  constructor(private readonly silenceMs: number, now: number) {
    this.startedAt = now;
  }

  /** Declares a peer and its comm paths (names as the cluster definition has them). */
  setPeer(server: string, paths: readonly string[]): void {
    const old = this.peers.get(server);
    const m = new Map<string, number | null>();
    for (const p of paths) m.set(p, old?.paths.get(p) ?? null);
    this.peers.set(server, { paths: m, stoppedAt: old?.stoppedAt ?? null });
  }

  removePeer(server: string): void {
    this.peers.delete(server);
  }

  /** A heartbeat arrived from `server` on `path` (unknown servers or paths are ignored). */
  heartbeat(server: string, path: string, now: number): void {
    const p = this.peers.get(server);
    if (!p || !p.paths.has(path)) return;
    p.paths.set(path, now);
    p.stoppedAt = null;
  }

  /** `server` announced a graceful stop (agent stopped): it is stopped, not failed. */
  announcedStop(server: string, now: number): void {
    const p = this.peers.get(server);
    if (p) p.stoppedAt = now;
  }

  view(now: number): PeerView[] {
    const out: PeerView[] = [];
    for (const [server, p] of this.peers) {
      const paths: PathView[] = [];
      for (const [path, last] of p.paths) {
        const silentSince = last ?? this.startedAt;
        const state: PathState = now - silentSince >= this.silenceMs ? 'down' : last === null ? 'unknown' : 'up';
        paths.push({ path, state, lastHeartbeat: last });
      }
      const up = paths.filter((x) => x.state === 'up').length;
      const down = paths.filter((x) => x.state === 'down');
      let state: ServerState;
      if (p.stoppedAt !== null) state = 'stopped';
      else if (up > 0) state = 'alive';
      else if (paths.length > 0 && down.length === paths.length) state = 'failed';
      else state = 'unknown';
      const warning = state === 'alive' && down.length > 0
        ? down.map((d) => `comm path ${d.path} to ${server} down (${d.lastHeartbeat === null ? 'no heartbeat yet' : `last heartbeat ${Math.round((now - d.lastHeartbeat) / 1000)} s ago`})`).join('; ')
        : '';
      out.push({ server, state, paths, warning });
    }
    return out;
  }

  stateOf(server: string, now: number): ServerState {
    return this.view(now).find((v) => v.server === server)?.state ?? 'unknown';
  }
}
