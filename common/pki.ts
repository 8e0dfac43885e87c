// The cluster's certificates: a per-cluster CA and one certificate per node, for mutually
// authenticated TLS between agents. Pure certificate logic, no files: the agent's CLI and (later) the
// console backend decide where things are kept. Node programs only (node:crypto).
//
// Node can verify certificates (crypto.X509Certificate) but not create them, so creation uses
// @peculiar/x509 over Node's WebCrypto. Keys are ECDSA P-256: every TLS 1.3 stack speaks it and
// WebCrypto signs with it on every Node version we support.
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs the Reflect metadata API, before it loads
import crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';

const subtle = crypto.webcrypto.subtle;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** Certificates start this much in the past, so a node whose clock is behind still accepts them. */
const BACKDATE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

export const CA_YEARS = 10;
export const NODE_YEARS = 3;
/** What `tandem ca init` asks of a new CA passphrase. */
export const MIN_PASSPHRASE_LENGTH = 8;

export interface CertificateAuthority {
  certPem: string;
  key: crypto.KeyObject;
}

export interface IssuedCertificate {
  certPem: string;
  key: crypto.KeyObject;
}

export interface Validity {
  notBefore?: Date;
  notAfter?: Date;
}

/** A node name is a DNS host name (it goes into the certificate's DNS SAN); null if it is one. */
export function nodeNameProblem(name: string): string | null {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => label.test(l))) {
    return `node name "${name}" is not valid: use a host name (letters, digits and dashes, dot-separated labels of up to 63, no leading or trailing dash)`;
  }
  return null;
}

function years(from: Date, n: number): Date {
  const d = new Date(from);
  d.setUTCFullYear(d.getUTCFullYear() + n);
  return d;
}

/** A positive 128-bit serial number, hex (RFC 5280: at most 20 octets, positive). */
function serialNumber(): string {
  const b = crypto.randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

async function webKeys(pair: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }): Promise<{ privateKey: crypto.webcrypto.CryptoKey; publicKey: crypto.webcrypto.CryptoKey }> {
  const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  return {
    privateKey: await subtle.importKey('pkcs8', pkcs8, EC, false, ['sign']),
    publicKey: await subtle.importKey('spki', spki, EC, true, ['verify']),
  };
}

function newKeyPair(): { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject } {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** A new cluster CA: a self-signed certificate (10 years) that may sign node certificates only. */
export async function createClusterCa(options: { now?: Date } & Validity = {}): Promise<CertificateAuthority> {
  const now = options.now ?? new Date();
  const pair = newKeyPair();
  const keys = await webKeys(pair);
  const id = crypto.randomBytes(4).toString('hex');
  const name = `CN=Tandem cluster CA ${id}, O=Tandem`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: name,
    issuer: name,
    notBefore: options.notBefore ?? new Date(now.getTime() - BACKDATE_MS),
    notAfter: options.notAfter ?? years(now, CA_YEARS),
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: [
      // pathLength 0: the CA signs node certificates, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  }, crypto.webcrypto);
  return { certPem: cert.toString('pem') + '\n', key: pair.privateKey };
}

/** A node certificate (CN and DNS SAN = node name, for TLS client and server) signed by the CA. */
export async function issueNodeCertificate(ca: CertificateAuthority, node: string, options: { now?: Date } & Validity = {}): Promise<IssuedCertificate> {
  const problem = nodeNameProblem(node);
  if (problem) throw new Error(problem);
  const caCert = new crypto.X509Certificate(ca.certPem);
  if (!caCert.ca) throw new Error('the CA certificate is not a CA certificate (no basicConstraints CA:TRUE)');
  if (!caCert.checkPrivateKey(ca.key)) throw new Error('the CA key does not belong to the CA certificate');
  const now = options.now ?? new Date();
  const notAfter = options.notAfter ?? years(now, NODE_YEARS);
  const pair = newKeyPair();
  const keys = await webKeys(pair);
  const caKeys = await webKeys({ privateKey: ca.key, publicKey: caCert.publicKey });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${node}, O=Tandem`,
    issuer: new x509.X509Certificate(ca.certPem).subject,
    notBefore: options.notBefore ?? new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    signingAlgorithm: SIGNING,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: node }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  }, crypto.webcrypto);
  return { certPem: cert.toString('pem') + '\n', key: pair.privateKey };
}

/** The CA key as written to disk: PKCS#8, encrypted (AES-256-CBC, key from the passphrase by PBKDF2). */
export function encryptPrivateKey(key: crypto.KeyObject, passphrase: string): string {
  if (passphrase.length === 0) throw new Error('refusing to write a CA key with an empty passphrase');
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** A node key as written to disk: PKCS#8, unencrypted (the agent starts unattended); the file is 0600. */
export function privateKeyPem(key: crypto.KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Reads the encrypted CA key; `where` names the file in error messages. */
export function decryptPrivateKey(pem: string, passphrase: string, where: string): crypto.KeyObject {
  if (!pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new Error(`${where} is not an encrypted private key (expected -----BEGIN ENCRYPTED PRIVATE KEY-----); is this the CA directory made by "tandem ca init"?`);
  }
  try {
    return crypto.createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new Error(`cannot decrypt ${where}: wrong passphrase (give the one used at "tandem ca init", with --passphrase-file FILE or TANDEM_CA_PASSPHRASE)`);
  }
}

/** Parses a PEM certificate; `where` names the file in error messages. */
export function parseCertificate(pem: string, where: string): crypto.X509Certificate {
  try {
    return new crypto.X509Certificate(pem);
  } catch (err) {
    throw new Error(`${where} is not a PEM certificate (${(err as Error).message})`, { cause: err });
  }
}

/** The value of one attribute of a distinguished name as Node prints it ("CN=n1\nO=Tandem"). */
function nameAttribute(dn: string, attr: string): string | null {
  for (const line of dn.split('\n')) {
    if (line.startsWith(`${attr}=`)) return line.slice(attr.length + 1);
  }
  return null;
}

/** The node a certificate names: its CN, which must also be one of its DNS SANs. Null if it names none. */
export function certificateNode(cert: crypto.X509Certificate): string | null {
  const cn = nameAttribute(cert.subject, 'CN');
  if (!cn) return null;
  const dns = (cert.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  return dns.includes(cn) ? cn : null;
}

/**
 * Why `cert` cannot serve as node certificate under `ca` at `now`, or null if it can: signed by the
 * CA, inside its validity window, and naming a node.
 */
export function nodeCertificateProblem(cert: crypto.X509Certificate, ca: crypto.X509Certificate, now = new Date()): string | null {
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return `it is not signed by this cluster's CA (${oneLine(ca.subject)}); its issuer is ${oneLine(cert.issuer)}`;
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) return `it is not valid before ${from.toISOString()} (check this node's clock)`;
  if (now > to) return `it expired on ${to.toISOString()}`;
  if (!certificateNode(cert)) return 'it names no node (its CN is not among its DNS names)';
  return null;
}

export function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}

export interface CertificateSummary {
  node: string | null;
  subject: string;
  issuer: string;
  validFrom: Date;
  validTo: Date;
  /** SHA-256 of the DER certificate, colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  daysLeft: number;
}

export function summarizeCertificate(cert: crypto.X509Certificate, now = new Date()): CertificateSummary {
  const validTo = new Date(cert.validTo);
  return {
    node: certificateNode(cert),
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    validFrom: new Date(cert.validFrom),
    validTo,
    fingerprint: cert.fingerprint256,
    daysLeft: Math.floor((validTo.getTime() - now.getTime()) / DAY_MS),
  };
}
