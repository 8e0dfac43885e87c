// Cluster definitions on the console's machine: servers, comm paths and connection settings as JSON in
// the app's data folder. Secrets (passwords, passphrases) never go there: only through a SecretCipher
// (Electron's safeStorage, backed by the OS keychain/DPAPI/libsecret), and browser mode has none.
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { clusterDefinition, type ClusterDefinition } from '../../common/console-api.js';

export interface SecretCipher {
  /** False where the OS offers no protected storage: then nothing is remembered. */
  available(): boolean;
  encrypt(plain: string): Buffer;
  decrypt(cipher: Buffer): string;
}

function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, text, 0o600);
}

export class ClusterStore {
  readonly file: string;
  constructor(readonly dataDir: string) {
    this.file = path.join(dataDir, 'cluster.json');
  }

  /** The saved definition, or null if none was saved yet. A damaged file is kept aside, not lost. */
  load(): ClusterDefinition | null {
    if (!fs.existsSync(this.file)) return null;
    const text = fs.readFileSync(this.file, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`${this.file} is not valid JSON; fix it or move it away (the console then starts with no cluster)`);
    }
    const r = clusterDefinition.safeParse(parsed);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new Error(`${this.file}: ${issue.path.join('.') || 'the file'}: ${issue.message}; fix it or move it away`);
    }
    return r.data;
  }

  save(def: ClusterDefinition): void {
    writeAtomic(this.file, JSON.stringify(clusterDefinition.parse(def), null, 2) + '\n');
  }
}

/** Remembered secrets, each encrypted by the cipher; the file holds only ciphertext. */
export class SecretStore {
  private readonly file: string;
  constructor(dataDir: string, private readonly cipher: SecretCipher | null) {
    this.file = path.join(dataDir, 'secrets.json');
  }

  get canRemember(): boolean {
    return this.cipher !== null && this.cipher.available();
  }

  private read(): Record<string, string> {
    if (!fs.existsSync(this.file)) return {};
    try {
      return JSON.parse(fs.readFileSync(this.file, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }

  get(key: string): string | null {
    if (!this.canRemember) return null;
    const blob = this.read()[key];
    if (!blob) return null;
    try {
      return this.cipher!.decrypt(Buffer.from(blob, 'base64'));
    } catch {
      return null; // encrypted by another user or machine: ask again
    }
  }

  set(key: string, secret: string): boolean {
    if (!this.canRemember) return false;
    const all = this.read();
    all[key] = this.cipher!.encrypt(secret).toString('base64');
    writeAtomic(this.file, JSON.stringify(all, null, 2) + '\n');
    return true;
  }

  forget(prefix: string): void {
    const all = this.read();
    let changed = false;
    for (const k of Object.keys(all)) if (k.startsWith(prefix)) {
      delete all[k];
      changed = true;
    }
    if (changed) writeAtomic(this.file, JSON.stringify(all, null, 2) + '\n');
  }
}
