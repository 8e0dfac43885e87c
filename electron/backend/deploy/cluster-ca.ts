// The cluster CA lives with the console (its data folder's ca/, the same layout as `tandem ca init`, so
// `tandem cert issue --ca-dir` works on it too). Its key is encrypted with a passphrase the administrator
// chooses; the passphrase is remembered only through safeStorage, otherwise asked each time it is needed.
import fs from 'node:fs';
import path from 'node:path';
import { createClusterCa, decryptPrivateKey, encryptPrivateKey, MIN_PASSPHRASE_LENGTH, type CertificateAuthority } from '../../../common/pki.js';
import type { SecretStore } from '../cluster-store.js';
import { writeFileAtomic } from '../../../common/atomic-file.js';

const SECRET_KEY = 'cluster-ca/passphrase';

export class ClusterCaStore {
  readonly dir: string;
  private cached: CertificateAuthority | null = null;

  constructor(dataDir: string, private readonly secrets: SecretStore) {
    this.dir = path.join(dataDir, 'ca');
  }

  get exists(): boolean {
    return fs.existsSync(path.join(this.dir, 'ca.crt'));
  }

  certPem(): string | null {
    return this.exists ? fs.readFileSync(path.join(this.dir, 'ca.crt'), 'utf8') : null;
  }

  /** The CA, creating it on first use. `askPassphrase(creating)` returns null if the user cancels. */
  async get(askPassphrase: (creating: boolean, why: string) => Promise<string | null>): Promise<CertificateAuthority> {
    if (this.cached) return this.cached;
    const certFile = path.join(this.dir, 'ca.crt');
    const keyFile = path.join(this.dir, 'ca.key');
    if (!this.exists) {
      const pass = await askPassphrase(true, `Choose a passphrase (at least ${MIN_PASSPHRASE_LENGTH} characters) for the new cluster CA key ${keyFile}; it is needed whenever a node gets a certificate`);
      if (pass === null) throw new Error('cancelled: the cluster CA was not created, so no certificate could be issued');
      if (pass.length < MIN_PASSPHRASE_LENGTH) throw new Error(`the CA passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters`);
      const ca = await createClusterCa();
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(keyFile, encryptPrivateKey(ca.key, pass), 0o600);
      writeFileAtomic(certFile, ca.certPem, 0o644);
      this.secrets.set(SECRET_KEY, pass);
      this.cached = ca;
      return ca;
    }
    const pem = fs.readFileSync(keyFile, 'utf8');
    const remembered = this.secrets.get(SECRET_KEY);
    if (remembered) {
      try {
        this.cached = { certPem: fs.readFileSync(certFile, 'utf8'), key: decryptPrivateKey(pem, remembered, keyFile) };
        return this.cached;
      } catch {
        // changed outside the console: ask
      }
    }
    const pass = await askPassphrase(false, `Passphrase of the cluster CA key ${keyFile}`);
    if (pass === null) throw new Error('cancelled: without the CA passphrase no certificate can be issued');
    const key = decryptPrivateKey(pem, pass, keyFile);
    this.secrets.set(SECRET_KEY, pass);
    this.cached = { certPem: fs.readFileSync(certFile, 'utf8'), key };
    return this.cached;
  }
}
