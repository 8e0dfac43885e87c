// The replication transport over loopback: mutual TLS 1.3 with the cluster CA moves bytes both ways,
// and every peer that is not a node of this cluster is dropped before a byte reaches the protocol.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectReplication, createReplicationServer, loadNodeCredentials, TLS_FILES, type NodeCredentials } from '../../agent/replication/transport.js';
import { createClusterCa, type CertificateAuthority } from '../../common/pki.js';
import { installNodeCertificate, rawCredentials } from '../helpers/pki.js';
import { sha256, tempDir } from '../helpers/tools.js';

const dir = tempDir('transport');
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let n1: NodeCredentials; // the source (client)
let n2: NodeCredentials; // the target (server)

beforeAll(async () => {
  ca = await createClusterCa();
  otherCa = await createClusterCa();
  n1 = loadNodeCredentials(await installNodeCertificate(path.join(dir, 'n1'), ca, 'n1'));
  n2 = loadNodeCredentials(await installNodeCertificate(path.join(dir, 'n2'), ca, 'n2'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Harness {
  server: net.Server;
  port: number;
  accepted: Array<{ socket: net.Socket; peer: string | null }>;
  refused: string[];
  /** Application bytes the server's onSocket sockets received. */
  received: () => number;
  close(): Promise<void>;
}

async function startServer(creds: NodeCredentials | null, onSocket?: (s: net.Socket, peer: string | null) => void): Promise<Harness> {
  const accepted: Harness['accepted'] = [];
  const refused: string[] = [];
  let bytes = 0;
  const server = createReplicationServer({
    creds,
    onSocket: (socket, peer) => {
      accepted.push({ socket, peer });
      socket.on('data', (c: Buffer) => (bytes += c.length));
      socket.on('error', () => undefined);
      onSocket?.(socket, peer);
    },
    onRefused: (reason) => refused.push(reason),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server, port, accepted, refused, received: () => bytes,
    close: async () => {
      for (const a of accepted) a.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Resolves once `cond` holds (polling), or fails after 5 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function collect(socket: net.Socket, size: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    socket.on('data', (c: Buffer) => {
      parts.push(c);
      n += c.length;
      if (n >= size) resolve(Buffer.concat(parts));
    });
    socket.once('error', reject);
    socket.once('close', () => (n < size ? reject(new Error(`closed after ${n} of ${size} bytes`)) : undefined));
  });
}

describe('replication transport (TLS 1.3, cluster CA)', () => {
  it('the client may speak first, at once when ready (the replication protocol opens with HELLO)', async () => {
    const h = await startServer(n2, (socket) => {
      socket.once('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('got '), d])));
    });
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n2', creds: n1 });
      socket.on('error', () => undefined);
      const reply = collect(socket, 9);
      await ready;
      socket.write('HELLO');
      expect((await reply).toString()).toBe('got HELLO');
      socket.destroy();
    } finally {
      await h.close();
    }
  });

  it('moves bytes both ways between two nodes of the cluster, each knowing the other by name', async () => {
    const size = 8 * 1024 * 1024;
    const fromClient = crypto.randomBytes(size);
    const fromServer = crypto.randomBytes(size);
    let serverGot: Promise<Buffer> | null = null;
    const h = await startServer(n2, (socket) => {
      serverGot = collect(socket, size);
      socket.write(fromServer);
    });
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n2', creds: n1 });
      socket.on('error', () => undefined);
      const clientGot = collect(socket, size);
      expect(await ready).toBe('n2');
      const tlsSocket = socket as import('node:tls').TLSSocket;
      expect(tlsSocket.getProtocol()).toBe('TLSv1.3');
      socket.write(fromClient);
      await until(() => serverGot !== null, 'the server to accept');
      expect(sha256(await clientGot)).toBe(sha256(fromServer));
      expect(sha256((await serverGot!).subarray(0, size))).toBe(sha256(fromClient));
      expect(h.accepted.map((a) => a.peer)).toEqual(['n1']);
      socket.destroy();
    } finally {
      await h.close();
    }
  });

  it('plain mode (--insecure-plaintext) is a paused plain TCP server and a plain client', async () => {
    const h = await startServer(null, (socket) => {
      expect(socket.isPaused()).toBe(true);
      socket.resume();
      socket.end('hi');
    });
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n2', creds: null });
      const got = collect(socket, 2);
      expect(await ready).toBeNull();
      expect((await got).toString()).toBe('hi');
      expect(h.accepted[0]!.peer).toBeNull();
    } finally {
      await h.close();
    }
  });

  it('drops a plain TCP client during the handshake: nothing reaches the protocol', async () => {
    const h = await startServer(n2);
    try {
      const socket = net.connect({ host: '127.0.0.1', port: h.port });
      socket.on('error', () => undefined);
      await new Promise<void>((r) => socket.once('connect', () => r()));
      socket.write(Buffer.from('TANDEM HELLO, plain text, followed by a write\n'.repeat(20)));
      await new Promise<void>((r) => socket.once('close', () => r()));
      await until(() => h.refused.length > 0, 'the refusal');
      expect(h.accepted).toHaveLength(0);
      expect(h.received()).toBe(0);
      expect(h.refused[0]).toMatch(/does not speak TLS|wrong version/);
    } finally {
      await h.close();
    }
  });

  /** A TLS client with `creds` against n2's server: the server must never hand it to the protocol. */
  async function refusedByServer(creds: NodeCredentials): Promise<{ error: string; refused: string[] }> {
    const h = await startServer(n2);
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n2', creds });
      socket.on('error', () => undefined);
      // Whatever the client manages to send is application data the server must never deliver.
      socket.once('secureConnect', () => socket.write(Buffer.alloc(64 * 1024, 1)));
      const error = await ready.then(() => 'accepted', (e: Error) => e.message);
      await until(() => h.refused.length > 0, 'the refusal');
      await new Promise((r) => setTimeout(r, 100));
      expect(h.accepted).toHaveLength(0);
      expect(h.received()).toBe(0);
      return { error, refused: h.refused };
    } finally {
      await h.close();
    }
  }

  it('drops a client whose certificate is of another CA', async () => {
    const stranger = await rawCredentials(otherCa, 'n1', {}, ca); // trusts our CA, presents another's certificate
    const r = await refusedByServer(stranger);
    expect(r.error).toMatch(/cannot connect to n2 at 127\.0\.0\.1:\d+: the target closed the connection after the handshake: it refused this node.s certificate/);
    expect(r.refused[0]).toMatch(/not from this cluster's CA/);
  });

  it('drops a client with no certificate', async () => {
    const h = await startServer(n2);
    try {
      const tlsMod = await import('node:tls');
      const socket = tlsMod.connect({ host: '127.0.0.1', port: h.port, ca: [ca.certPem], minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
      socket.on('error', () => undefined);
      socket.once('secureConnect', () => socket.write(Buffer.alloc(1024, 1)));
      await new Promise<void>((r) => socket.once('close', () => r()));
      await until(() => h.refused.length > 0, 'the refusal');
      expect(h.accepted).toHaveLength(0);
      expect(h.received()).toBe(0);
      expect(h.refused[0]).toMatch(/no certificate/);
    } finally {
      await h.close();
    }
  });

  it('drops a client whose certificate expired, and one not valid yet', async () => {
    const year = 365 * 24 * 3600 * 1000;
    const expired = await rawCredentials(ca, 'n1', { notBefore: new Date(Date.now() - 3 * year), notAfter: new Date(Date.now() - year) });
    const r = await refusedByServer(expired);
    expect(r.error).toMatch(/it refused this node.s certificate/);
    expect(r.refused[0]).toMatch(/expired/);
    const future = await rawCredentials(ca, 'n1', { notBefore: new Date(Date.now() + year), notAfter: new Date(Date.now() + 2 * year) });
    const f = await refusedByServer(future);
    expect(f.refused[0]).toMatch(/not valid yet/);
  });

  it('the client refuses a server whose certificate names another node', async () => {
    const h = await startServer(n2);
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n3', creds: n1 });
      socket.on('error', () => undefined);
      await expect(ready).rejects.toThrow(/the peer at 127\.0\.0\.1:\d+ is node n2 .*not n3: check the target's --address/);
      expect(h.accepted).toHaveLength(0);
    } finally {
      await h.close();
    }
  });

  it('the client refuses a server of another CA, and a plain TCP server', async () => {
    const strangerServer = await rawCredentials(otherCa, 'n2', {}, otherCa);
    const h = await startServer(strangerServer);
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: h.port, expectedPeer: 'n2', creds: n1 });
      socket.on('error', () => undefined);
      await expect(ready).rejects.toThrow(/not from this cluster's CA/);
      expect(h.accepted).toHaveLength(0);
    } finally {
      await h.close();
    }
    const plain = net.createServer((s) => s.on('error', () => undefined).resume());
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    try {
      const { socket, ready } = connectReplication({ host: '127.0.0.1', port: (plain.address() as net.AddressInfo).port, expectedPeer: 'n2', creds: n1 });
      socket.on('error', () => undefined);
      setTimeout(() => socket.destroy(), 500).unref(); // a silent plain server never answers the ClientHello
      await expect(ready).rejects.toThrow(/cannot connect to n2/);
    } finally {
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });
});

describe('loadNodeCredentials', () => {
  it('returns the node name from the certificate', () => {
    expect(n1.node).toBe('n1');
    expect(n1.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('says how to get a certificate when none is installed', () => {
    expect(() => loadNodeCredentials(path.join(dir, 'none'))).toThrow(
      /no certificate installed in .*none; issue one .* tandem cert issue NODE --ca-dir CA_DIR --install, or run the agent with --insecure-plaintext/);
  });

  it('names a missing file', async () => {
    const d = await installNodeCertificate(path.join(dir, 'partial'), ca, 'n1');
    fs.rmSync(path.join(d, TLS_FILES.key));
    expect(() => loadNodeCredentials(d)).toThrow(/partial\/node\.key is missing/);
  });

  it('refuses a key readable by others, a key of another certificate, an expired certificate and one of another CA', async () => {
    const d = await installNodeCertificate(path.join(dir, 'modes'), ca, 'n1');
    fs.chmodSync(path.join(d, TLS_FILES.key), 0o644);
    expect(() => loadNodeCredentials(d)).toThrow(/node\.key is accessible by others \(mode 0644\); make it private with: chmod 600/);
    fs.chmodSync(path.join(d, TLS_FILES.key), 0o600);
    fs.copyFileSync(path.join(dir, 'n2', TLS_FILES.key), path.join(d, TLS_FILES.key));
    expect(() => loadNodeCredentials(d)).toThrow(/node\.key is not the key of .*node\.crt/);

    const e = await installNodeCertificate(path.join(dir, 'expired'), ca, 'n1', { notBefore: new Date(Date.now() - 2e10), notAfter: new Date(Date.now() - 1e10) });
    expect(() => loadNodeCredentials(e)).toThrow(/node\.crt cannot be used: it expired on/);

    const o = await installNodeCertificate(path.join(dir, 'other'), otherCa, 'n1');
    fs.copyFileSync(path.join(dir, 'n1', TLS_FILES.ca), path.join(o, TLS_FILES.ca));
    expect(() => loadNodeCredentials(o)).toThrow(/cannot be used: it is not signed by this cluster's CA/);
  });
});
