// The console's known_hosts file on its own: OpenSSH's format, hashing, markers and fingerprints.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, hostName, KnownHosts } from '../../electron/backend/ssh/known-hosts.js';
import { makeKey, tempDir, type ClientKey } from './helpers.js';

let dir: string;
let ed: ClientKey;
let ed2: ClientKey;
let rsa: ClientKey;
let ecdsa: ClientKey;
const blob = (k: ClientKey) => Buffer.from(k.pub.split(' ')[1]!, 'base64');
const typeOf = (k: ClientKey) => k.pub.split(' ')[0]!;

beforeAll(() => {
  dir = tempDir('known-hosts');
  ed = makeKey(dir, 'ed', 'ed25519');
  ed2 = makeKey(dir, 'ed2', 'ed25519');
  rsa = makeKey(dir, 'rsa', 'rsa');
  ecdsa = makeKey(dir, 'ecdsa', 'ecdsa');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('fingerprint() prints what ssh-keygen -l prints', () => {
  for (const k of [ed, rsa, ecdsa]) expect(fingerprint(blob(k))).toBe(k.fingerprint);
});

it('names a host as OpenSSH does: bare on port 22, [host]:port otherwise', () => {
  expect(hostName('node1', 22)).toBe('node1');
  expect(hostName('10.0.0.5', 2222)).toBe('[10.0.0.5]:2222');
});

describe('check', () => {
  it('known, unknown, changed (same type, other key), and unknown for a type not yet known', () => {
    const kh = new KnownHosts(path.join(dir, 'kh1'));
    expect(kh.check('node1', 22, typeOf(ed), blob(ed))).toBe('unknown');
    kh.add('node1', 22, typeOf(ed), blob(ed));
    kh.add('node2', 2222, typeOf(rsa), blob(rsa));
    expect(kh.check('node1', 22, typeOf(ed), blob(ed))).toBe('known');
    expect(kh.check('node1', 2222, typeOf(ed), blob(ed))).toBe('unknown'); // another port is another host
    expect(kh.check('node1', 22, typeOf(ed2), blob(ed2))).toBe('changed');
    expect(kh.lookup('node1', 22, blob(ed2)).entries.map((e) => e.line)).toEqual([1]);
    expect(kh.check('node1', 22, typeOf(ecdsa), blob(ecdsa))).toBe('unknown');
    expect(kh.check('node2', 2222, typeOf(rsa), blob(rsa))).toBe('known');
    expect(fs.readFileSync(kh.file, 'utf8').split('\n')[1]).toBe(`[node2]:2222 ${rsa.pub.split(' ').slice(0, 2).join(' ')}`);
  });

  it('patterns: lists, wildcards and negation', () => {
    const kh = new KnownHosts(path.join(dir, 'kh2'));
    fs.writeFileSync(kh.file, `web*.example.org,!web9.example.org,10.0.0.? ${ed.pub}\n`);
    expect(kh.check('web1.example.org', 22, typeOf(ed), blob(ed))).toBe('known');
    expect(kh.check('WEB2.example.org', 22, typeOf(ed), blob(ed))).toBe('known');
    expect(kh.check('web9.example.org', 22, typeOf(ed), blob(ed))).toBe('unknown');
    expect(kh.check('10.0.0.7', 22, typeOf(ed), blob(ed))).toBe('known');
    expect(kh.check('10.0.0.17', 22, typeOf(ed), blob(ed))).toBe('unknown');
  });

  it('@revoked refuses that key; @cert-authority lines are not host keys', () => {
    const kh = new KnownHosts(path.join(dir, 'kh3'));
    fs.writeFileSync(kh.file, `node1 ${ed.pub}\n@revoked * ${ed.pub}\n@cert-authority *.example.org ${rsa.pub}\n`);
    expect(kh.check('node1', 22, typeOf(ed), blob(ed))).toBe('revoked');
    expect(kh.lookup('node1', 22, blob(ed)).entries[0]!.line).toBe(2);
    expect(kh.check('a.example.org', 22, typeOf(rsa), blob(rsa))).toBe('unknown');
  });
});

describe('importKnownHosts', () => {
  it('takes hashed entries and markers, skips comments and garbage without losing the rest, and does not repeat', () => {
    const user = path.join(dir, 'user_known_hosts');
    fs.writeFileSync(user, [`node1 ${ed.pub}`, `[node2]:2222 ${rsa.pub}`, ''].join('\n'));
    execFileSync('ssh-keygen', ['-q', '-H', '-f', user], { stdio: 'ignore' });
    const hashed = fs.readFileSync(user, 'utf8').trim().split('\n');
    expect(hashed.every((l) => l.startsWith('|1|'))).toBe(true);
    fs.writeFileSync(user, [
      '# comment', hashed[0], '', 'this is not a known_hosts line', `node3 ssh-ed25519 ${blob(rsa).toString('base64')}`,
      '@unknown-marker node4 ' + ed.pub, `@revoked * ${ed2.pub}`, hashed[1], '',
    ].join('\n'));
    const kh = new KnownHosts(path.join(dir, 'kh4'));
    expect(kh.importKnownHosts(user)).toEqual({ imported: 3, skipped: 3 });
    expect(kh.check('node1', 22, typeOf(ed), blob(ed))).toBe('known');
    expect(kh.check('node2', 2222, typeOf(rsa), blob(rsa))).toBe('known');
    expect(kh.check('node2', 22, typeOf(rsa), blob(rsa))).toBe('unknown');
    expect(kh.check('node1', 22, typeOf(ed2), blob(ed2))).toBe('revoked');
    expect(kh.check('node3', 22, typeOf(ed), blob(ed))).toBe('unknown'); // the mislabelled key was dropped
    expect(kh.importKnownHosts(user)).toEqual({ imported: 0, skipped: 3 });
    expect(fs.readFileSync(kh.file, 'utf8')).toContain('|1|');
    expect(fs.statSync(kh.file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
