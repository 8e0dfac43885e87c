// The replication transport: TCP wrapped in TLS 1.3, both ends authenticated by certificates of the
// cluster's CA (common/pki.ts, `tandem ca init` / `tandem cert issue`). A peer without a valid
// certificate of this CA is dropped during the handshake, before the replication protocol sees a
// byte. `--insecure-plaintext` (creds null here) keeps the old plain TCP for benchmarks and trusted
// lab networks.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto from 'node:crypto';
import tls from 'node:tls';
import { certificateNode, nodeCertificateProblem, oneLine, parseCertificate } from '../../common/pki.js';

/** The files of a node's TLS directory ($TANDEM_HOME/state/tls or /var/lib/tandem/tls). */
export const TLS_FILES = { ca: 'ca.crt', cert: 'node.crt', key: 'node.key' } as const;

/** Past this, a connection that has not finished its TLS handshake is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface NodeCredentials {
  /** This node's name, from its certificate (CN = DNS SAN). */
  node: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  notAfter: Date;
  /** SHA-256 fingerprint of node.crt, for logs. */
  fingerprint: string;
  tlsDir: string;
}

const ISSUE_HINT = 'issue one on the machine that holds the cluster CA with: tandem cert issue NODE --ca-dir CA_DIR --install';
const PLAINTEXT_HINT = 'or run the agent with --insecure-plaintext (benchmarks and trusted lab networks only)';

function readIn(tlsDir: string, name: string): string {
  const file = path.join(tlsDir, name);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${file} is missing; ${ISSUE_HINT} (it writes ca.crt, node.crt and node.key), ${PLAINTEXT_HINT}`, { cause: err });
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads ca.crt, node.crt and node.key from `tlsDir` and checks that they can be used now: the node
 * certificate is signed by the CA, inside its validity window, names a node, and the key is its
 * key and readable by its owner only. Throws an error that says what to do otherwise.
 */
export function loadNodeCredentials(tlsDir: string, now = new Date()): NodeCredentials {
  const present = Object.values(TLS_FILES).filter((f) => fs.existsSync(path.join(tlsDir, f)));
  if (present.length === 0) throw new Error(`no certificate installed in ${tlsDir}; ${ISSUE_HINT}, ${PLAINTEXT_HINT}`);
  const caPem = readIn(tlsDir, TLS_FILES.ca);
  const certPem = readIn(tlsDir, TLS_FILES.cert);
  const keyPem = readIn(tlsDir, TLS_FILES.key);
  const keyFile = path.join(tlsDir, TLS_FILES.key);
  const mode = fs.statSync(keyFile).mode & 0o777;
  if (mode & 0o077) {
    throw new Error(`${keyFile} is accessible by others (mode ${mode.toString(8).padStart(4, '0')}); make it private with: chmod 600 ${keyFile}`);
  }
  const ca = parseCertificate(caPem, path.join(tlsDir, TLS_FILES.ca));
  if (!ca.ca) throw new Error(`${path.join(tlsDir, TLS_FILES.ca)} is not a CA certificate; it must be the cluster's ca.crt`);
  const cert = parseCertificate(certPem, path.join(tlsDir, TLS_FILES.cert));
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(`${keyFile} is not an unencrypted PEM private key (${(err as Error).message}); ${ISSUE_HINT}`, { cause: err });
  }
  if (!cert.checkPrivateKey(key)) throw new Error(`${keyFile} is not the key of ${path.join(tlsDir, TLS_FILES.cert)}; ${ISSUE_HINT}`);
  const problem = nodeCertificateProblem(cert, ca, now);
  if (problem) throw new Error(`${path.join(tlsDir, TLS_FILES.cert)} cannot be used: ${problem}; ${ISSUE_HINT}`);
  return {
    node: certificateNode(cert) as string,
    caPem,
    certPem,
    keyPem,
    notAfter: new Date(cert.validTo),
    fingerprint: cert.fingerprint256,
    tlsDir,
  };
}

/** TLS settings shared by both ends: TLS 1.3 only; trust the cluster CA and nothing else. */
function tlsOptions(creds: NodeCredentials): tls.SecureContextOptions & tls.CommonConnectionOptions {
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ca: [creds.caPem], // replaces Node's default roots: a certificate of any other CA is refused
    cert: creds.certPem,
    key: creds.keyPem,
    rejectUnauthorized: true,
  };
}

/** A peer's node name from its certificate (already verified against the cluster CA). */
function peerNodeOf(cert: tls.PeerCertificate | undefined): string | null {
  if (!cert || !cert.raw) return null;
  try {
    return certificateNode(new crypto.X509Certificate(cert.raw));
  } catch {
    return null;
  }
}

export interface ReplicationServerOptions {
  /** This node's credentials; null = plain TCP (`--insecure-plaintext`). */
  creds: NodeCredentials | null;
  /**
   * A peer that passed authentication. With TLS: a TLSSocket after the handshake, peerNode the node
   * its certificate names; read it with 'data' events (do not adopt its handle: the handle is the
   * TLS layer's). Plain TCP: the accepted socket, paused (`pauseOnConnect`), peerNode null.
   */
  onSocket(socket: net.Socket, peerNode: string | null): void;
  /** A connection dropped during the handshake (for the log); nothing of it reached onSocket. */
  onRefused?(reason: string, remoteAddress: string | undefined): void;
}

/**
 * The listening side (a target agent). Returns an unlistening server: call `listen(port, host)`.
 * With credentials, clients must present a certificate of the cluster CA (checked in the handshake,
 * TLS 1.3 only); anything else — plain TCP, another CA, no certificate, expired — is dropped
 * before onSocket is called.
 */
export function createReplicationServer(options: ReplicationServerOptions): net.Server {
  const { creds, onSocket, onRefused } = options;
  if (!creds) return net.createServer({ pauseOnConnect: true }, (socket) => onSocket(socket, null));
  const server = tls.createServer({
    ...tlsOptions(creds),
    requestCert: true,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  }, (socket) => {
    // rejectUnauthorized has already dropped unverified peers; a verified certificate that names
    // no node is not one of ours either.
    const peer = peerNodeOf(socket.getPeerCertificate(false));
    if (!socket.authorized || !peer) {
      onRefused?.(socket.authorized ? 'its certificate names no node' : String(socket.authorizationError), socket.remoteAddress);
      socket.destroy();
      return;
    }
    onSocket(socket, peer);
  });
  // Node checks the client's certificate after OpenSSL's handshake and drops the socket with a bare
  // "socket hang up"; the reason it found is left in authorizationError.
  server.on('tlsClientError', (err, socket) => {
    const code = socket.authorizationError ? String(socket.authorizationError) : undefined;
    onRefused?.(code ? describeTlsError(Object.assign(new Error(code), { code })) : describeTlsError(err), socket.remoteAddress);
  });
  return server;
}

export interface ReplicationConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  /** The target's node name: its certificate must name exactly this node. */
  expectedPeer: string;
  /** This node's credentials; null = plain TCP (`--insecure-plaintext`). */
  creds: NodeCredentials | null;
}

export interface ReplicationConnection {
  /** Attach 'error' and 'close' at once; write only after `ready`. */
  socket: net.Socket;
  /**
   * Resolves when the connection may carry replication traffic — TCP: connected; TLS: the handshake
   * finished, the target's certificate is of the cluster CA and names `expectedPeer`, and the target
   * accepted ours — with the peer's node name (null for plain TCP). Rejects with a sentence saying
   * what went wrong; the socket is then destroyed ('close' follows). Never an unhandled rejection.
   */
  ready: Promise<string | null>;
}

/** The connecting side (a source agent's link to one target). */
export function connectReplication(options: ReplicationConnectOptions): ReplicationConnection {
  const { host, port, localAddress, expectedPeer, creds } = options;
  const where = `${expectedPeer} at ${host}:${port}`;
  if (!creds) {
    const socket = net.connect({ host, port, localAddress });
    const ready = new Promise<string | null>((resolve, reject) => {
      socket.once('connect', () => resolve(null));
      socket.once('error', (e) => reject(new Error(`cannot connect to ${where}: ${e.message}`)));
      socket.once('close', () => reject(new Error(`connection to ${where} closed`)));
    });
    ready.catch(() => undefined);
    return { socket, ready };
  }
  // tls.connect passes localAddress on to net.connect; @types/node leaves it out of ConnectionOptions.
  const connectOptions: tls.ConnectionOptions & { localAddress?: string } = {
    ...tlsOptions(creds),
    host,
    port,
    localAddress,
    // Targets are reached by IP address: the identity checked is the node name, not the address.
    checkServerIdentity: (_host, cert) => {
      const peer = peerNodeOf(cert);
      if (peer === expectedPeer) return undefined;
      return new Error(`the peer at ${host}:${port} is ${peer ? `node ${peer}` : 'not a Tandem node'} (certificate ${oneLine(String(cert.subject?.CN ?? '?'))}), not ${expectedPeer}: check the target's --address`);
    },
  };
  const socket = tls.connect(connectOptions);
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<string | null>((resolve, reject) => {
    let secure = false;
    const fail = (e: Error) => {
      clearTimeout(timer);
      reject(new Error(`cannot connect to ${where}: ${secure ? describeRefusal(e) : describeTlsError(e)}`));
    };
    timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)), HANDSHAKE_TIMEOUT_MS);
    socket.once('secureConnect', () => {
      secure = true;
    });
    // In TLS 1.3 the client finishes its handshake before the server has checked the client's
    // certificate. The server sends its session tickets only after accepting it, and an alert
    // otherwise: the first ticket is the proof that we were accepted too.
    socket.once('session', () => {
      clearTimeout(timer);
      if (!secure) return fail(new Error('session ticket before the handshake finished'));
      // Not from inside the 'session' event: bytes written there do not reach the peer (seen with
      // Node 20), so the caller's first write waits for the next turn of the event loop.
      setImmediate(() => resolve(expectedPeer));
    });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the connection closed during the TLS handshake')));
  });
  ready.catch(() => undefined);
  return { socket, ready };
}

/** A handshake failure, in words (Node gives OpenSSL's codes and reasons). */
export function describeTlsError(err: Error): string {
  const e = err as Error & { code?: string; reason?: string };
  const code = e.code ?? '';
  const msg = e.message;
  if (code === 'CERT_HAS_EXPIRED') return 'the peer\'s certificate has expired; issue it a new one (tandem cert issue)';
  if (code === 'CERT_NOT_YET_VALID') return 'the peer\'s certificate is not valid yet; check both nodes\' clocks';
  if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|CERT_SIGNATURE_FAILURE/.test(code)) {
    return 'the peer\'s certificate is not from this cluster\'s CA; install a certificate of this cluster on it (tandem cert issue … --install)';
  }
  if (/wrong version number|http request|packet length too long|unknown protocol/i.test(msg)) return 'the peer does not speak TLS (is it running with --insecure-plaintext?)';
  if (/unsupported protocol|tlsv1 alert protocol version/i.test(msg)) return 'the peer does not offer TLS 1.3';
  if (/peer did not return a certificate|certificate required/i.test(msg)) return 'the peer presented no certificate';
  return msg;
}

/** After our handshake finished: the target dropped us, which means it refused our certificate. */
function describeRefusal(err: Error): string {
  if (/alert (certificate expired|unknown ca|bad certificate|certificate unknown|certificate required|decrypt error)/i.test(err.message)) {
    return `the target refused this node's certificate (${err.message.replace(/^.*alert /, '')}); check that both nodes have certificates of the same cluster CA (tandem cert show)`;
  }
  if (/ECONNRESET|closed/.test(err.message)) return `the target closed the connection after the handshake: it refused this node's certificate, or it is stopping (${err.message})`;
  return err.message;
}
