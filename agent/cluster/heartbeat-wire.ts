// The heartbeat: one JSON object per line on a mutually authenticated TLS connection (see
// heartbeat-io.ts). It says the sender is alive and carries what the other servers' manager rounds
// need about its copies. Parsing is strict and bounded: a line longer than MAX_HEARTBEAT_BYTES or
// anything not shaped like a heartbeat is refused (the connection is dropped), never trusted.

export const MAX_HEARTBEAT_BYTES = 64 * 1024;
const MAX_MIRRORS = 256;
const MAX_LIST = 64;

export interface TargetBeat {
  node: string;
  status: string;
  percentSynced: number;
}

/** One copy of a mirror on the sender. */
export interface MirrorBeat {
  tag: string;
  role: 'source' | 'target';
  /** Source: serving (in service). Target: false. */
  inService: boolean;
  generation: string;
  history: string[];
  /** Target: holds everything its source sent (not resyncing, not out of sync). */
  consistent: boolean;
  /** Target: the source replicating into it now. */
  connected: string | null;
  /** Target: it lost its source while in sync (a failover to it is safe). */
  lostSourceInSync: boolean;
  /** Target: its (last) source. */
  source: string | null;
  /** Every server holding a copy, in the mirror's order (source first). */
  members: string[];
  /** Source: its targets' states (a resync's % done for the reasons). */
  targets: TargetBeat[];
}

export interface Heartbeat {
  v: 1;
  node: string;
  seq: number;
  /** A graceful stop: the agent is stopping; never a failure. */
  stopping: boolean;
  mirrors: MirrorBeat[];
}

export class HeartbeatFormatError extends Error {}

export function encodeHeartbeat(h: Heartbeat): string {
  return JSON.stringify(h) + '\n';
}

const str = (v: unknown, name: string, max = 256): string => {
  if (typeof v !== 'string' || v.length > max) throw new HeartbeatFormatError(`${name} is not a string of up to ${max} characters`);
  return v;
};
const strOrNull = (v: unknown, name: string): string | null => (v === null ? null : str(v, name));
const bool = (v: unknown, name: string): boolean => {
  if (typeof v !== 'boolean') throw new HeartbeatFormatError(`${name} is not true or false`);
  return v;
};
const list = (v: unknown, name: string, max = MAX_LIST): unknown[] => {
  if (!Array.isArray(v) || v.length > max) throw new HeartbeatFormatError(`${name} is not a list of up to ${max}`);
  return v;
};
const obj = (v: unknown, name: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HeartbeatFormatError(`${name} is not an object`);
  return v as Record<string, unknown>;
};

/** One received line (without its newline) as a heartbeat; throws HeartbeatFormatError otherwise. */
export function decodeHeartbeat(line: string): Heartbeat {
  if (line.length > MAX_HEARTBEAT_BYTES) throw new HeartbeatFormatError(`heartbeat longer than ${MAX_HEARTBEAT_BYTES} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw new HeartbeatFormatError('heartbeat is not JSON');
  }
  const o = obj(raw, 'heartbeat');
  if (o.v !== 1) throw new HeartbeatFormatError('unknown heartbeat version');
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) throw new HeartbeatFormatError('seq is not a count');
  const mirrors = list(o.mirrors, 'mirrors', MAX_MIRRORS).map((m, i): MirrorBeat => {
    const x = obj(m, `mirrors[${i}]`);
    const role = x.role;
    if (role !== 'source' && role !== 'target') throw new HeartbeatFormatError(`mirrors[${i}].role is neither source nor target`);
    return {
      tag: str(x.tag, 'tag', 64), role, inService: bool(x.inService, 'inService'), generation: str(x.generation, 'generation', 64),
      history: list(x.history, 'history').map((h) => str(h, 'history', 64)), consistent: bool(x.consistent, 'consistent'),
      connected: strOrNull(x.connected, 'connected'), lostSourceInSync: bool(x.lostSourceInSync, 'lostSourceInSync'), source: strOrNull(x.source, 'source'),
      members: list(x.members, 'members').map((n) => str(n, 'members')),
      targets: list(x.targets, 'targets').map((t, j) => {
        const y = obj(t, `targets[${j}]`);
        const pct = y.percentSynced;
        if (typeof pct !== 'number' || !Number.isFinite(pct)) throw new HeartbeatFormatError('percentSynced is not a number');
        return { node: str(y.node, 'node'), status: str(y.status, 'status', 64), percentSynced: pct };
      }),
    };
  });
  return { v: 1, node: str(o.node, 'node'), seq: o.seq, stopping: bool(o.stopping, 'stopping'), mirrors };
}
