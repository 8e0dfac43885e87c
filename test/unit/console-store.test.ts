// Cluster definitions and remembered secrets on the console's machine, and the console API contract.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterStore, SecretStore, type SecretCipher } from '../../electron/backend/cluster-store.js';
import { parseConsoleCall, type ClusterDefinition } from '../../common/console-api.js';
import { cliEquivalent } from '../../common/cli-equivalent.js';
import { tempDir } from '../helpers/tools.js';

const dir = tempDir('console-store');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Stands in for safeStorage (a logic test: what is written is only ever the cipher's output). */
const xorCipher: SecretCipher = {
  available: () => true,
  encrypt: (s) => Buffer.from(Buffer.from(s).map((b) => b ^ 0x5c)),
  decrypt: (b) => Buffer.from(b.map((x) => x ^ 0x5c)).toString(),
};

const cluster: ClusterDefinition = {
  version: 1, name: 'prod',
  servers: [{ name: 'alpha', ssh: { host: '10.0.0.1', port: 22, user: 'root', auth: ['agent', 'key'], keepaliveSeconds: 15 } }],
  commPaths: [{ servers: ['alpha', 'beta'], addresses: ['10.1.0.1', '10.1.0.2'] }],
};

describe('cluster store', () => {
  it('saves and loads the definition, 0600, atomically', () => {
    const store = new ClusterStore(dir);
    expect(store.load()).toBeNull();
    store.save(cluster);
    expect(store.load()).toEqual(cluster);
    expect(fs.statSync(store.file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('a damaged file is an error naming the file and the field, and is left as it was', () => {
    const store = new ClusterStore(path.join(dir, 'bad'));
    fs.mkdirSync(path.join(dir, 'bad'));
    fs.writeFileSync(store.file, '{"version":1,"name":"x","servers":[{"name":"a b"}],"commPaths":[]}');
    expect(() => store.load()).toThrow(`${store.file}: servers.0.name: a server name is`);
    fs.writeFileSync(store.file, '{not json');
    expect(() => store.load()).toThrow(`${store.file} is not valid JSON`);
    expect(fs.readFileSync(store.file, 'utf8')).toBe('{not json');
  });
});

describe('secret store', () => {
  it('writes only ciphertext, and reads it back', () => {
    const secrets = new SecretStore(dir, xorCipher);
    expect(secrets.set('alpha/password', 'hunter2-very-secret')).toBe(true);
    const file = fs.readFileSync(path.join(dir, 'secrets.json'), 'utf8');
    expect(file).not.toContain('hunter2');
    expect(fs.statSync(path.join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    expect(secrets.get('alpha/password')).toBe('hunter2-very-secret');
    secrets.forget('alpha/');
    expect(secrets.get('alpha/password')).toBeNull();
  });

  it('remembers nothing without a cipher (browser mode) or when the OS has no protected storage', () => {
    const none = new SecretStore(path.join(dir, 'none'), null);
    expect(none.set('alpha/password', 'x')).toBe(false);
    expect(fs.existsSync(path.join(dir, 'none', 'secrets.json'))).toBe(false);
    const unavailable = new SecretStore(path.join(dir, 'none'), { ...xorCipher, available: () => false });
    expect(unavailable.set('alpha/password', 'x')).toBe(false);
  });
});

describe('console API contract', () => {
  it('fills defaults and refuses what is not in the schema', () => {
    const { args } = parseConsoleCall('addServer', [{ name: 'beta', ssh: { host: '10.0.0.2' } }]);
    expect(args[0]).toEqual({ name: 'beta', ssh: { host: '10.0.0.2', port: 22, user: 'root', auth: ['agent', 'key'], keepaliveSeconds: 15 } });
    expect(() => parseConsoleCall('addServer', [{ name: 'beta', ssh: { host: '10.0.0.2', shell: '/bin/sh' } }])).toThrow(/addServer: invalid argument at 0\.ssh: Unrecognized key/);
    expect(() => parseConsoleCall('addServer', [{ name: 'beta', ssh: { host: 'a;rm -rf /' } }])).toThrow('at 0.ssh.host: a host is a DNS name or an IP address');
    expect(() => parseConsoleCall('connect', ['alpha', 'extra'])).toThrow(/connect: invalid argument/);
    expect(() => parseConsoleCall('__proto__', [])).toThrow('unknown console method "__proto__"');
    expect(() => parseConsoleCall('answerPrompt', ['abc', { accept: 'yes' }])).toThrow(/answerPrompt: invalid argument at 1/);
  });

  it('shows each action as the command an administrator would type', () => {
    expect(cliEquivalent('mirror.extend', { tag: 'vol', node: 'beta', address: '10.1.0.2:7788', mode: 'async' })).toBe('tandem extend vol --target beta --address 10.1.0.2:7788 --mode async');
    expect(cliEquivalent('mirror.pause', { tag: 'vol', targets: ['beta'] })).toBe('mirror_action vol pause beta');
    expect(cliEquivalent('mirror.inservice', { tag: 'vol', force: true })).toBe('mirror_action vol force');
    expect(cliEquivalent('mirror.settings', { tag: 'vol', setting: 'logdir', value: '' })).toBe("mirror_settings vol logdir ''");
    expect(cliEquivalent('mirror.create', { tag: 'vol', disk: '/dev/sdb 1' })).toBe("tandem create vol --disk '/dev/sdb 1'");
  });
});
