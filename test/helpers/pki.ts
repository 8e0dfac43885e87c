// Certificates for tests: a cluster CA and node certificates written as an agent's TLS directory.
import fs from 'node:fs';
import path from 'node:path';
import { createClusterCa, issueNodeCertificate, privateKeyPem, type CertificateAuthority, type Validity } from '../../common/pki.js';
import { loadNodeCredentials, TLS_FILES, type NodeCredentials } from '../../agent/replication/transport.js';

/** Writes ca.crt, node.crt and node.key (0600) into `dir` (0700), as `tandem cert issue --install` does. */
export async function installNodeCertificate(dir: string, ca: CertificateAuthority, node: string, validity: Validity = {}): Promise<string> {
  const issued = await issueNodeCertificate(ca, node, validity);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, TLS_FILES.ca), ca.certPem, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, TLS_FILES.cert), issued.certPem, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, TLS_FILES.key), privateKeyPem(issued.key), { mode: 0o600 });
  return dir;
}

/**
 * Credentials without the loader's checks, for a peer whose certificate is deliberately bad (expired,
 * of another CA): the transport must refuse it on the other side. `trust` is the CA it accepts peers of.
 */
export async function rawCredentials(ca: CertificateAuthority, node: string, validity: Validity = {}, trust: CertificateAuthority = ca): Promise<NodeCredentials> {
  const issued = await issueNodeCertificate(ca, node, validity);
  return { node, caPem: trust.certPem, certPem: issued.certPem, keyPem: privateKeyPem(issued.key), notAfter: validity.notAfter ?? new Date(), fingerprint: '', tlsDir: '' };
}

export { createClusterCa, loadNodeCredentials };
