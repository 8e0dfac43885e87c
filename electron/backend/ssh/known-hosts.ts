// The console's own known_hosts file, in OpenSSH's format so users can read, diff and edit it with the
// tools they know. It is separate from ~/.ssh/known_hosts: the console only writes its own file, and
// takes the user's keys in explicitly (importKnownHosts), hashed entries and markers included.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type HostKeyStatus = 'known' | 'unknown' | 'changed' | 'revoked';

export interface KnownHostEntry {
  /** 1-based line number in the file, for "remove line N" advice. */
  line: number;
  marker: 'revoked' | 'cert-authority' | null;
  /** The host field as written: comma-separated patterns, or one hashed "|1|salt|hmac". */
  hosts: string;
  keyType: string;
  keyBlob: Buffer;
  /** The line as read, written back unchanged on import. */
  text: string;
}

export interface HostKeyCheck {
  status: HostKeyStatus;
  /** changed: the entries with the other key of the same type; revoked: the @revoked entry. */
  entries: KnownHostEntry[];
  /** Key types this file knows for the host (to prefer them in the key exchange). */
  knownTypes: string[];
}

/** "SHA256:…" exactly as `ssh-keygen -l` prints it: unpadded base64 of the SHA-256 of the key blob. */
export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + crypto.createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The name OpenSSH matches and hashes: "host" on port 22, "[host]:port" otherwise. */
export function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type written inside the blob (the first SSH string), or null if the blob is malformed. */
export function blobKeyType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const n = blob.readUInt32BE(0);
  if (n < 1 || n > 64 || 4 + n > blob.length) return null;
  const type = blob.subarray(4, 4 + n).toString('latin1');
  return /^[a-z0-9@.-]+$/i.test(type) ? type : null;
}

/** Parses one line; null for blank lines, comments and anything malformed (which is skipped, not fatal). */
export function parseKnownHostsLine(text: string, line: number): KnownHostEntry | null {
  const trimmed = text.trim();
  if (!trimmed || trimmed.startsWith('#')) return null;
  const fields = trimmed.split(/\s+/);
  let marker: KnownHostEntry['marker'] = null;
  if (fields[0]!.startsWith('@')) {
    const m = fields.shift()!;
    if (m === '@revoked') marker = 'revoked';
    else if (m === '@cert-authority') marker = 'cert-authority';
    else return null; // an unknown marker: OpenSSH ignores the line too
  }
  const [hosts, keyType, b64] = fields;
  if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const keyBlob = Buffer.from(b64, 'base64');
  // A key whose blob names another type is garbage (or a copy-paste accident): never match on it.
  if (blobKeyType(keyBlob) !== keyType) return null;
  return { line, marker, hosts, keyType, keyBlob, text: trimmed };
}

/** OpenSSH's wildcard patterns: "*" any run, "?" one character; host names compare case-insensitively. */
function wildcardMatch(pattern: string, name: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
  return re.test(name);
}

function hashedMatch(field: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name)) — what `ssh-keygen -H` and HashKnownHosts write.
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2]!, 'base64');
  const want = Buffer.from(parts[3]!, 'base64');
  const got = crypto.createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && crypto.timingSafeEqual(want, got);
}

/** Does the entry's host field name this host? A matching negated pattern ("!pat") excludes it. */
export function entryMatches(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = hostName(host, port);
  if (entry.hosts.startsWith('|')) return hashedMatch(entry.hosts, name);
  let matched = false;
  for (const pattern of entry.hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export class KnownHosts {
  constructor(readonly file: string) {}

  /** Every valid entry; read each time so edits made by the user (e.g. removing a changed key) count at once. */
  entries(): KnownHostEntry[] {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: KnownHostEntry[] = [];
    text.split(/\r?\n/).forEach((l, i) => {
      const e = parseKnownHostsLine(l, i + 1);
      if (e) out.push(e);
    });
    return out;
  }

  /** The full verdict, with the lines behind it. */
  lookup(host: string, port: number, keyBlob: Buffer): HostKeyCheck {
    // The blob carries its own type; trusting it rather than a caller's label keeps "same type" honest.
    const keyType = blobKeyType(keyBlob) ?? '';
    const matching = this.entries().filter((e) => e.marker !== 'cert-authority' && entryMatches(e, host, port));
    const knownTypes = [...new Set(matching.filter((e) => e.marker === null).map((e) => e.keyType))];
    const revoked = matching.filter((e) => e.marker === 'revoked' && e.keyBlob.equals(keyBlob));
    if (revoked.length) return { status: 'revoked', entries: revoked, knownTypes };
    const plain = matching.filter((e) => e.marker === null);
    if (plain.some((e) => e.keyBlob.equals(keyBlob))) return { status: 'known', entries: [], knownTypes };
    // Another key of the same type for this host: the key changed. A host that only has keys of other
    // types known is "unknown" for this type (OpenSSH asks too), not a hard refusal.
    const sameType = plain.filter((e) => e.keyType === keyType);
    if (sameType.length) return { status: 'changed', entries: sameType, knownTypes };
    return { status: 'unknown', entries: [], knownTypes };
  }

  check(host: string, port: number, _keyType: string, keyBlob: Buffer): HostKeyStatus {
    return this.lookup(host, port, keyBlob).status;
  }

  /** Trusts a key for host:port (after the user accepted it). */
  add(host: string, port: number, keyType: string, keyBlob: Buffer): void {
    if (blobKeyType(keyBlob) !== keyType) throw new Error(`host key blob is not of type ${keyType}`);
    this.append([`${hostName(host, port)} ${keyType} ${keyBlob.toString('base64')}`]);
  }

  /**
   * Copies the valid entries of an OpenSSH known_hosts file (e.g. ~/.ssh/known_hosts) into this one, as
   * written: hashed host fields stay hashed and markers (@revoked, @cert-authority) stay. Comments, blank
   * and malformed lines are skipped without losing the rest; entries already present are not repeated.
   */
  importKnownHosts(fromFile: string): { imported: number; skipped: number } {
    const lines = fs.readFileSync(fromFile, 'utf8').split(/\r?\n/);
    const have = new Set(this.entries().map((e) => e.text));
    const add: string[] = [];
    let skipped = 0;
    lines.forEach((l, i) => {
      const trimmed = l.trim();
      if (!trimmed || trimmed.startsWith('#')) return;
      const e = parseKnownHostsLine(l, i + 1);
      if (!e) {
        skipped++;
        return;
      }
      if (have.has(e.text)) return;
      have.add(e.text);
      add.push(e.text);
    });
    if (add.length) this.append(add);
    return { imported: add.length, skipped };
  }

  /** Rewrites the file with lines appended: temp file + fsync + rename, so a crash never leaves half a file. */
  private append(lines: string[]): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    let current = '';
    try {
      current = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (current && !current.endsWith('\n')) current += '\n';
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, current + lines.join('\n') + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.chmodSync(tmp, 0o600); // the umask may have narrowed it further; never wider
      fs.renameSync(tmp, this.file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  }
}
