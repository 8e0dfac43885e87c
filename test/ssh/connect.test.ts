// Logins against a real OpenSSH server: every key type, passphrases, passwords, keyboard-interactive,
// ssh-agent, sudo; and what a session does once up (commands, streams, SFTP).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh } from '../../electron/backend/ssh/connect.js';
import { KnownHosts } from '../../electron/backend/ssh/known-hosts.js';
import type { SshSession } from '../../electron/backend/ssh/types.js';
import { startSshd, type Sshd } from '../lab/sshd.js';
import { endpoint, logMark, logSince, makeKey, scripted, sshErrorOf, tempDir, waitFor, type Answers, type ClientKey } from './helpers.js';

let dir: string;
let sshd: Sshd;
let keys: Record<'ed25519' | 'ecdsa' | 'rsa' | 'protected' | 'agent' | 'root', ClientKey>;
let knownHosts: KnownHosts;
const sessions: SshSession[] = [];

beforeAll(async () => {
  dir = tempDir('ssh-connect');
  keys = {
    ed25519: makeKey(dir, 'id_ed25519', 'ed25519'),
    ecdsa: makeKey(dir, 'id_ecdsa', 'ecdsa'),
    rsa: makeKey(dir, 'id_rsa', 'rsa'),
    protected: makeKey(dir, 'id_protected', 'ed25519', 'correct horse'),
    agent: makeKey(dir, 'id_agent', 'ed25519'),
    root: makeKey(dir, 'id_root', 'ed25519'),
  };
  sshd = await startSshd({
    dir: path.join(dir, 'sshd'),
    // DEBUG1: the log then names the signature algorithm of each public key attempt (rsa-sha2-256).
    logLevel: 'DEBUG1',
    users: [
      { name: 'alice', password: 'alice-pw', sudo: 'password', authorizedKeys: [keys.ed25519.pub, keys.ecdsa.pub, keys.rsa.pub, keys.protected.pub, keys.agent.pub] },
      { name: 'root', authorizedKeys: [keys.root.pub] },
    ],
  });
  // Trust the server up front: these tests are about logging in (host keys have their own file).
  knownHosts = new KnownHosts(path.join(dir, 'known_hosts'));
  knownHosts.add(sshd.address, sshd.port, 'ssh-ed25519', Buffer.from(sshd.hostKeyPublic.split(' ')[1]!, 'base64'));
});

afterAll(async () => {
  for (const s of sessions) s.close();
  await sshd?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function login(over: Parameters<typeof endpoint>[1], answers: Answers = {}, agentSocket?: string) {
  const { prompter, calls } = scripted(answers);
  const session = await connectSsh(endpoint(sshd, over), { knownHosts, prompter, agentSocket });
  sessions.push(session);
  return { session, calls };
}

describe('logins', () => {
  for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
    it(`with an ${type} key`, async () => {
      const mark = logMark(sshd);
      const { session, calls } = await login({ auth: ['key'], keyFile: keys[type].file });
      expect(calls).toEqual([]);
      expect((await session.run('whoami')).stdout.trim()).toBe('alice');
      await waitFor('the login in the log', () => logSince(sshd, mark).includes('Accepted publickey for alice'));
      const log = logSince(sshd, mark);
      expect(log).toContain(keys[type].fingerprint);
      if (type === 'rsa') {
        // Signed with rsa-sha2-*, never ssh-rsa (SHA-1).
        expect(log).toMatch(/pkalg rsa-sha2-(256|512)/);
        expect(log).not.toMatch(/pkalg ssh-rsa /);
      }
      session.close();
    });
  }

  it('with a passphrase-protected key: the right passphrase logs in, a wrong one is a passphrase error naming the file', async () => {
    const { session, calls } = await login({ auth: ['key'], keyFile: keys.protected.file }, { passphrase: 'correct horse' });
    expect(calls).toEqual([{ kind: 'passphrase', keyFile: keys.protected.file }]);
    expect(session.connected).toBe(true);
    session.close();
    const err = await sshErrorOf(login({ auth: ['key'], keyFile: keys.protected.file }, { passphrase: 'battery staple' }));
    expect(err.kind).toBe('passphrase');
    expect(err.message).toContain(keys.protected.file);
  });

  it('a missing key file is a key-file error', async () => {
    const err = await sshErrorOf(login({ auth: ['key'], keyFile: path.join(dir, 'no-such-key') }));
    expect(err.kind).toBe('key-file');
    expect(err.message).toContain('no-such-key');
  });

  it('with a password; a wrong one fails naming user@host:port and the methods tried', async () => {
    const { session, calls } = await login({ auth: ['password'] }, { password: 'alice-pw' });
    expect(calls).toEqual([{ kind: 'password', host: '127.0.0.1', user: 'alice' }]);
    session.close();
    const err = await sshErrorOf(login({ auth: ['key', 'password'], keyFile: keys.root.file }, { password: 'wrong' }));
    expect(err.kind).toBe('auth-failed');
    expect(err.message).toContain(`alice@127.0.0.1:${sshd.port}`);
    expect(err.message).toMatch(/key .*id_root.*password/);
  });

  it('a cancelled password prompt stops without sending anything', async () => {
    const mark = logMark(sshd);
    const err = await sshErrorOf(login({ auth: ['password'] }, { password: null }));
    expect(err.kind).toBe('cancelled');
    await waitFor('sshd to log the disconnect', () => /Connection (closed|reset)|Disconnected/.test(logSince(sshd, mark)));
    expect(logSince(sshd, mark)).not.toMatch(/Failed password|method password/);
  });

  it('with keyboard-interactive (PAM asks for the password)', async () => {
    const asked: string[] = [];
    const { session, calls } = await login({ auth: ['keyboard-interactive'] }, {
      keyboard: (qs) => {
        asked.push(...qs.map((q) => q.prompt));
        return qs.map(() => 'alice-pw');
      },
    });
    expect(calls.map((c) => c.kind)).toEqual(['keyboard-interactive']);
    expect(asked.join()).toMatch(/password/i);
    expect((await session.run('whoami')).stdout.trim()).toBe('alice');
    session.close();
  });

  it('through ssh-agent', async () => {
    const sock = path.join(dir, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      await waitFor('the agent socket', () => fs.existsSync(sock));
      execFileSync('ssh-add', ['-q', keys.agent.file], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const mark = logMark(sshd);
      const { session, calls } = await login({ auth: ['agent', 'password'] }, {}, sock);
      expect(calls).toEqual([]);
      await waitFor('the login in the log', () => logSince(sshd, mark).includes('Accepted publickey for alice'));
      expect(logSince(sshd, mark)).toContain(keys.agent.fingerprint);
      session.close();
    } finally {
      agent.kill();
    }
  });
});

describe('sudo', () => {
  it('a non-root login runs as root after one sudo-password prompt per session', async () => {
    const { session, calls } = await login({ auth: ['key'], keyFile: keys.ed25519.file }, { sudo: 'alice-pw' });
    const r = await session.run('id -u', { sudo: true });
    expect(r).toMatchObject({ stdout: '0\n', code: 0 });
    expect(r.stderr).toBe(''); // sudo's prompt and our ready line are not the command's stderr
    expect((await session.run('id -u', { sudo: true, input: 'x' })).stdout).toBe('0\n');
    expect((await session.run('id -u')).stdout.trim()).not.toBe('0');
    expect(calls).toEqual([{ kind: 'sudo-password', host: '127.0.0.1', user: 'alice' }]);
    // stdin reaches the command, not sudo's password reader.
    expect((await session.run('cat', { sudo: true, input: 'through sudo' })).stdout).toBe('through sudo');
    session.close();
  });

  it('a wrong sudo password is a sudo error', async () => {
    const { session } = await login({ auth: ['key'], keyFile: keys.ed25519.file }, { sudo: 'not-it' });
    const err = await sshErrorOf(session.run('id -u', { sudo: true }));
    expect(err.kind).toBe('sudo');
    expect(err.message).toContain('127.0.0.1');
    session.close();
  });

  it('root needs no sudo', async () => {
    const { session, calls } = await login({ user: 'root', auth: ['key'], keyFile: keys.root.file });
    expect((await session.run('id -u', { sudo: true })).stdout).toBe('0\n');
    expect(calls).toEqual([]);
    session.close();
  });
});

describe('a session', () => {
  let session: SshSession;
  beforeAll(async () => {
    session = (await login({ auth: ['key'], keyFile: keys.ed25519.file })).session;
  });

  it('run: exit codes, stdout, stderr, input', async () => {
    expect(await session.run('echo out; echo err >&2; exit 3')).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 3 });
    expect(await session.run('tr a-z A-Z', { input: 'hello' })).toMatchObject({ stdout: 'HELLO', code: 0 });
    expect((await session.run('kill -9 $$')).code).toBe(-1);
    await expect(session.run('sleep 5', { timeoutMs: 200 })).rejects.toThrow(/did not finish within 200 ms/);
  });

  it('spawn: stdin and stdout stream both ways', async () => {
    const p = await session.spawn('cat');
    const got: string[] = [];
    p.stdout.on('data', (d: Buffer) => got.push(d.toString()));
    for (const line of ['one\n', 'two\n', 'three\n']) {
      p.stdin.write(line);
      await waitFor(`echo of ${line.trim()}`, () => got.join('').endsWith(line));
    }
    p.stdin.end();
    expect(await p.exit).toEqual({ code: 0, signal: null });
    expect(got.join('')).toBe('one\ntwo\nthree\n');
  });

  it('sftp: put and get keep the content', async () => {
    const local = path.join(dir, 'blob');
    fs.writeFileSync(local, crypto.randomBytes(3 * 1024 * 1024 + 17));
    const sftp = await session.sftp();
    const remote = `/tmp/tandem-sftp-test-${process.pid}`;
    await new Promise<void>((res, rej) => sftp.fastPut(local, remote, (e) => (e ? rej(e) : res())));
    const back = path.join(dir, 'blob.back');
    await new Promise<void>((res, rej) => sftp.fastGet(remote, back, (e) => (e ? rej(e) : res())));
    await new Promise<void>((res) => sftp.unlink(remote, () => res()));
    sftp.end();
    const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    expect(sha(back)).toBe(sha(local));
  });

  it('onClose: a close by us reports no error', async () => {
    const seen: Array<Error | undefined> = [];
    session.onClose((err) => seen.push(err));
    session.close();
    await waitFor('close', () => seen.length === 1);
    expect(seen).toEqual([undefined]);
    expect(session.connected).toBe(false);
  });
});
