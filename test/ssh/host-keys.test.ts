// Host key checking against a real sshd: nothing of the user's is sent before the key is trusted, a
// changed key is refused without a question, and keys come in from the user's (hashed) known_hosts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh } from '../../electron/backend/ssh/connect.js';
import { KnownHosts } from '../../electron/backend/ssh/known-hosts.js';
import { freePort, startSshd, type Sshd } from '../lab/sshd.js';
import { endpoint, logMark, logSince, scripted, sshErrorOf, tempDir, waitFor } from './helpers.js';

let dir: string;
let sshd: Sshd;
let n = 0;
const freshKnownHosts = () => new KnownHosts(path.join(dir, `known_hosts.${++n}`));
const hostLine = () => `[127.0.0.1]:${sshd.port} ${sshd.hostKeyPublic}`;
// sshd logs the end of every connection; wait for it before reading what the connection did.
const connectionEnded = (mark: number) => waitFor('sshd to log the end of the connection', () => /Connection (closed|reset)|Disconnected|disconnect/i.test(logSince(sshd, mark)));

beforeAll(async () => {
  dir = tempDir('ssh-hostkeys');
  sshd = await startSshd({ dir: path.join(dir, 'sshd'), users: [{ name: 'alice', password: 'alice-pw' }] });
});

afterAll(async () => {
  await sshd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('an unknown host key', () => {
  it('is shown with exactly sshd\'s fingerprint; refusing it sends nothing', async () => {
    const mark = logMark(sshd);
    const { prompter, calls } = scripted({ hostKey: false, password: 'alice-pw' });
    const err = await sshErrorOf(connectSsh(endpoint(sshd), { knownHosts: freshKnownHosts(), prompter }));
    expect(err.kind).toBe('host-key-rejected');
    expect(calls).toEqual([{ kind: 'host-key', host: '127.0.0.1', port: sshd.port, keyType: 'ssh-ed25519', fingerprint: sshd.hostKeyFingerprint }]);
    await connectionEnded(mark);
    const log = logSince(sshd, mark);
    expect(log).not.toMatch(/alice|Accepted|Failed|Postponed|password|publickey/);
  });

  it('accepted, is saved (0600, [host]:port) and not asked about again', async () => {
    const knownHosts = freshKnownHosts();
    const first = scripted({ hostKey: true, password: 'alice-pw' });
    const s1 = await connectSsh(endpoint(sshd), { knownHosts, prompter: first.prompter });
    s1.close();
    expect(first.calls.map((c) => c.kind)).toEqual(['host-key', 'password']);
    expect(fs.readFileSync(knownHosts.file, 'utf8')).toBe(hostLine() + '\n');
    expect(fs.statSync(knownHosts.file).mode & 0o777).toBe(0o600);
    const second = scripted({ password: 'alice-pw' });
    const s2 = await connectSsh(endpoint(sshd), { knownHosts, prompter: second.prompter });
    s2.close();
    expect(second.calls.map((c) => c.kind)).toEqual(['password']);
  });
});

describe('known_hosts', () => {
  it('imported from a hashed file (ssh-keygen -H) makes the key known without a prompt', async () => {
    const user = path.join(dir, 'user_known_hosts');
    const other = execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'other'), '-C', '']) && fs.readFileSync(path.join(dir, 'other.pub'), 'utf8').trim();
    fs.writeFileSync(user, [`elsewhere.example ${other}`, hostLine(), ''].join('\n'));
    execFileSync('ssh-keygen', ['-q', '-H', '-f', user], { stdio: 'ignore' });
    // ssh-keygen refuses to hash a file with broken lines: add the comment and the garbage afterwards.
    const [a, b] = fs.readFileSync(user, 'utf8').trim().split('\n');
    fs.writeFileSync(user, ['# my hosts', a, 'garbage line without a key', '', b, ''].join('\n'));
    expect(fs.readFileSync(user, 'utf8')).not.toContain('127.0.0.1');
    expect(fs.readFileSync(user, 'utf8')).toMatch(/^\|1\|/m);
    const knownHosts = freshKnownHosts();
    expect(knownHosts.importKnownHosts(user)).toEqual({ imported: 2, skipped: 1 });
    const { prompter, calls } = scripted({ password: 'alice-pw' });
    const s = await connectSsh(endpoint(sshd), { knownHosts, prompter });
    s.close();
    expect(calls.map((c) => c.kind)).toEqual(['password']);
  });

  it('a key marked @revoked is refused without a prompt', async () => {
    const knownHosts = freshKnownHosts();
    fs.writeFileSync(knownHosts.file, `@revoked * ${sshd.hostKeyPublic}\n`);
    const { prompter, calls } = scripted({ password: 'alice-pw' });
    const err = await sshErrorOf(connectSsh(endpoint(sshd), { knownHosts, prompter }));
    expect(err.kind).toBe('host-key-revoked');
    expect(calls).toEqual([]);
  });
});

describe('unreachable', () => {
  it('a closed port is "unreachable", naming host:port', async () => {
    const port = await freePort();
    const { prompter, calls } = scripted({ password: 'x' });
    const err = await sshErrorOf(connectSsh(endpoint(sshd, { port }), { knownHosts: freshKnownHosts(), prompter }));
    expect(err.kind).toBe('unreachable');
    expect(err.message).toContain(`cannot reach 127.0.0.1:${port}:`);
    expect(err.message).toContain('check the address and that sshd runs');
    expect(calls).toEqual([]);
  });
});

describe('a changed host key', () => {
  it('is refused with a warning, no prompt and no password sent', async () => {
    const knownHosts = freshKnownHosts();
    fs.writeFileSync(knownHosts.file, `# first line\n${hostLine()}\n`);
    await sshd.rotateHostKey(); // also starts a new log
    const { prompter, calls } = scripted({ hostKey: true, password: 'alice-pw' });
    const err = await sshErrorOf(connectSsh(endpoint(sshd), { knownHosts, prompter }));
    expect(err.kind).toBe('host-key-changed');
    expect(calls).toEqual([]);
    expect(err.message).toContain(`127.0.0.1:${sshd.port}`);
    expect(err.message).toContain(sshd.hostKeyFingerprint);
    expect(err.message).toContain(`remove line 2 of ${knownHosts.file}`);
    await connectionEnded(0);
    expect(sshd.log()).not.toMatch(/password|Accepted|Failed|alice/);
  });
});
