// The comm paths this agent heartbeats over: per peer server, pairs of (this server's address, the
// peer's heartbeat HOST:PORT). Set by `tandem commpath add|remove` (the console's comm paths map onto
// the same calls). Kept in $TANDEM_HOME/state/cluster.json; the peers listed are the cluster's servers
// for quorum.
import fs from 'node:fs';
import path from 'node:path';
import { writeJsonAtomic } from '../daemon/home.js';

export interface CommPathEntry {
  /** This server's address on the path (the heartbeat connection's local address). */
  local: string;
  /** The peer's heartbeat listener on the path, HOST:PORT. */
  remote: string;
}

export interface ClusterPeer {
  node: string;
  paths: CommPathEntry[];
}

interface ClusterFile {
  version: 1;
  peers: ClusterPeer[];
}

export class CommPathError extends Error {}

const NODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/;

/** The path's name as this end shows it: "LOCAL/REMOTE_HOST" (a received beat is named by its socket's two addresses). */
export function pathName(local: string, remoteHost: string): string {
  return `${local}/${remoteHost}`;
}

export function splitHostPort(hp: string, what: string): { host: string; port: number } {
  const m = HOST_PORT.exec(hp);
  if (!m || Number(m[2]) > 65535 || Number(m[2]) === 0) throw new CommPathError(`${what} "${hp}" is not HOST:PORT (for example 10.0.1.2:7501, the peer's --heartbeat address)`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export class CommPaths {
  private peersByNode = new Map<string, ClusterPeer>();

  constructor(private readonly file: string) {
    let data: ClusterFile = { version: 1, peers: [] };
    try {
      data = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CommPathError(`${file} cannot be read (${(err as Error).message}); fix or remove it and add the comm paths again (tandem commpath add)`);
    }
    if (data.version !== 1 || !Array.isArray(data.peers)) throw new CommPathError(`${file} is not a Tandem cluster file; remove it and add the comm paths again (tandem commpath add)`);
    for (const p of data.peers) this.peersByNode.set(p.node, p);
  }

  static in(stateDir: string): CommPaths {
    return new CommPaths(path.join(stateDir, 'cluster.json'));
  }

  peers(): ClusterPeer[] {
    return [...this.peersByNode.values()].map((p) => ({ node: p.node, paths: p.paths.map((x) => ({ ...x })) }));
  }

  add(self: string, node: string, local: string, remote: string): ClusterPeer {
    if (!NODE.test(node)) throw new CommPathError(`"${node}" is not a valid server name`);
    if (node === self) throw new CommPathError(`${node} is this server; a comm path goes to another server`);
    if (!/^[0-9a-fA-F:.]+$/.test(local) && !/^[A-Za-z0-9.-]+$/.test(local)) throw new CommPathError(`local address "${local}" is not an address of this server`);
    splitHostPort(remote, 'remote address');
    const peer = this.peersByNode.get(node) ?? { node, paths: [] };
    if (peer.paths.some((p) => p.local === local && p.remote === remote)) throw new CommPathError(`the comm path ${local} -> ${remote} to ${node} already exists`);
    if (peer.paths.length >= 8) throw new CommPathError(`${node} already has 8 comm paths, the maximum`);
    peer.paths.push({ local, remote });
    this.peersByNode.set(node, peer);
    this.save();
    return peer;
  }

  /** Removes one path (or, without addresses, the peer and all its paths). */
  remove(node: string, local?: string, remote?: string): void {
    const peer = this.peersByNode.get(node);
    if (!peer) throw new CommPathError(`no comm path to ${node}; see: tandem commpath list`);
    if (local === undefined) this.peersByNode.delete(node);
    else {
      const kept = peer.paths.filter((p) => !(p.local === local && (remote === undefined || p.remote === remote)));
      if (kept.length === peer.paths.length) throw new CommPathError(`no comm path ${local}${remote ? ` -> ${remote}` : ''} to ${node}; see: tandem commpath list`);
      if (kept.length === 0) this.peersByNode.delete(node);
      else peer.paths = kept;
    }
    this.save();
  }

  private save(): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    writeJsonAtomic(this.file, { version: 1, peers: [...this.peersByNode.values()] } satisfies ClusterFile);
  }
}
