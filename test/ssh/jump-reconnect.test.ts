// A target reached through a jump host, and the connection keeper riding out a server restart.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh } from '../../electron/backend/ssh/connect.js';
import { KnownHosts } from '../../electron/backend/ssh/known-hosts.js';
import { ConnectionKeeper, type KeeperState } from '../../electron/backend/ssh/reconnecting.js';
import { startSshd, type Sshd } from '../lab/sshd.js';
import { endpoint, makeKey, scripted, tempDir, waitFor, type ClientKey } from './helpers.js';

let dir: string;
let key: ClientKey;
const servers: Sshd[] = [];

beforeAll(() => {
  dir = tempDir('ssh-jump');
  key = makeKey(dir, 'id_ed25519', 'ed25519');
});

afterAll(async () => {
  for (const s of servers) await s.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function server(name: string, extra: Partial<Parameters<typeof startSshd>[0]> = {}): Promise<Sshd> {
  const s = await startSshd({ dir: path.join(dir, name), users: [{ name: 'alice', password: 'alice-pw', authorizedKeys: [key.pub] }], ...extra });
  servers.push(s);
  return s;
}

describe('jump host', () => {
  it('checks both host keys, logs in to both, and reaches the target through the jump host', async () => {
    // DEBUG1 makes the jump host log each forwarding request (server_request_direct_tcpip).
    const jump = await server('jump', { logLevel: 'DEBUG1' });
    const target = await server('target');
    const { prompter, calls } = scripted({ hostKey: true, password: 'alice-pw' });
    const settings = endpoint(target, {
      auth: ['password'],
      jumpHost: { host: jump.address, port: jump.port, user: 'alice', auth: ['key'], keyFile: key.file },
    });
    const session = await connectSsh(settings, { knownHosts: new KnownHosts(path.join(dir, 'known_hosts')), prompter });
    try {
      expect(calls).toEqual([
        { kind: 'host-key', host: '127.0.0.1', port: jump.port, keyType: 'ssh-ed25519', fingerprint: jump.hostKeyFingerprint },
        { kind: 'host-key', host: '127.0.0.1', port: target.port, keyType: 'ssh-ed25519', fingerprint: target.hostKeyFingerprint },
        { kind: 'password', host: '127.0.0.1', user: 'alice' },
      ]);
      expect(jump.log()).toMatch(new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${target.port}`));
      expect(jump.log()).toContain(`Accepted publickey for alice`);
      expect(target.log()).toContain(`Accepted password for alice`);
      expect((await session.run('echo via jump')).stdout).toBe('via jump\n');
    } finally {
      session.close();
    }
  });
});

describe('connection keeper', () => {
  it('reconnects after the server restarts on the same port with the same host key', async () => {
    const first = await server('first');
    const knownHosts = new KnownHosts(path.join(dir, 'known_hosts.keeper'));
    const { prompter, calls } = scripted({ hostKey: true });
    const states: Array<[KeeperState, string]> = [];
    const keeper = new ConnectionKeeper({
      settings: endpoint(first, { auth: ['key'], keyFile: key.file, keepaliveSeconds: 1 }),
      deps: { knownHosts, prompter },
      onState: (state, message) => states.push([state, message]),
      initialDelayMs: 100,
      maxDelayMs: 400,
    });
    keeper.start();
    try {
      await waitFor('connected', () => keeper.state === 'connected');
      await first.stop(); // ends the session too: the client sees the drop
      await waitFor('reconnecting', () => keeper.state === 'reconnecting');
      await new Promise((r) => setTimeout(r, 300)); // a few failed attempts while nothing listens
      await server('second', { port: first.port, hostKeyFrom: first.hostKeyFile });
      await waitFor('connected again', () => keeper.state === 'connected', 10_000);
      expect((await keeper.session!.run('echo back')).stdout).toBe('back\n');
      const seq = states.map(([s]) => s).filter((s, i, a) => s !== a[i - 1]);
      expect(seq[0]).toBe('connecting');
      expect(seq.slice(-2)).toEqual([seq.at(-2) === 'unreachable' ? 'unreachable' : 'reconnecting', 'connected']);
      expect(seq).toContain('reconnecting');
      expect(states.find(([s]) => s === 'reconnecting')![1]).toMatch(/lost|closed/);
      // Same key: trusted once, never asked again.
      expect(calls.filter((c) => c.kind === 'host-key')).toHaveLength(1);
    } finally {
      keeper.close();
    }
  });

  it('does not retry a changed host key', async () => {
    const s = await server('changed');
    const knownHosts = new KnownHosts(path.join(dir, 'known_hosts.changed'));
    const other = makeKey(dir, 'not-the-host', 'ed25519');
    fs.writeFileSync(knownHosts.file, `[127.0.0.1]:${s.port} ${other.pub}\n`);
    let attempts = 0;
    const states: KeeperState[] = [];
    const keeper = new ConnectionKeeper({
      settings: endpoint(s, { auth: ['key'], keyFile: key.file }),
      deps: { knownHosts, prompter: scripted().prompter },
      onState: (state) => states.push(state),
      initialDelayMs: 50,
      connect: (settings, deps) => {
        attempts++;
        return connectSsh(settings, deps);
      },
    });
    keeper.start();
    await waitFor('failed', () => keeper.state === 'failed');
    await new Promise((r) => setTimeout(r, 300));
    keeper.close();
    expect(attempts).toBe(1);
    expect(states).toEqual(['connecting', 'failed']);
  });
});
