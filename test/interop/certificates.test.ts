// `tandem ca init`, `tandem cert issue`, `tandem cert show` from the built bundle, as an administrator
// meets them: files and their modes, and a one-line error naming the thing and the fix for every mistake.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNodeCredentials } from '../../agent/replication/transport.js';
import { AGENT_BUNDLE, run, tempDir } from '../helpers/tools.js';

const dir = tempDir('certs');
const home = path.join(dir, 'home');
const caDir = path.join(dir, 'ca');
const passFile = path.join(dir, 'pass');
fs.writeFileSync(passFile, 'correct horse battery staple\n', { mode: 0o600 });
const env = { ...process.env, TANDEM_HOME: home, TANDEM_CA_PASSPHRASE: '' };
const tandem = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [AGENT_BUNDLE, 'tandem', ...args], { timeoutMs: 20_000, env: { ...env, ...extraEnv } });
const mode = (p: string) => fs.statSync(p).mode & 0o777;
/** Errors are one line (plus the usage text for usage mistakes) naming the program. */
const firstLine = (s: string) => s.split('\n')[0] ?? '';

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('tandem ca init', () => {
  it('refuses to run without a passphrase, and with a short one (exit 2)', async () => {
    const r = await tandem(['ca', 'init', '--dir', caDir]);
    expect(r.code).toBe(2);
    expect(firstLine(r.stderr)).toBe('tandem-agent: the CA key is kept encrypted and needs a passphrase: give it with --passphrase-file FILE or the TANDEM_CA_PASSPHRASE environment variable');
    const s = await tandem(['ca', 'init', '--dir', caDir], { TANDEM_CA_PASSPHRASE: 'short' });
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('the passphrase from TANDEM_CA_PASSPHRASE is too short: use at least 8 characters');
    const m = await tandem(['ca', 'init', '--dir', caDir, '--passphrase-file', path.join(dir, 'nope')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toContain(`cannot read the passphrase file ${path.join(dir, 'nope')}: it does not exist`);
    expect(fs.existsSync(caDir)).toBe(false);
  });

  it('writes ca.crt and an encrypted ca.key (0600) in a 0700 directory, and never overwrites a CA', async () => {
    const r = await tandem(['ca', 'init', '--dir', caDir, '--passphrase-file', passFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`created the cluster CA in ${caDir}`);
    expect(mode(caDir)).toBe(0o700);
    expect(mode(path.join(caDir, 'ca.key'))).toBe(0o600);
    const key = fs.readFileSync(path.join(caDir, 'ca.key'), 'utf8');
    expect(key.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')).toBe(true);
    expect(() => crypto.createPrivateKey(key)).toThrow();
    expect(crypto.createPrivateKey({ key, passphrase: 'correct horse battery staple' }).asymmetricKeyType).toBe('ec');
    const ca = new crypto.X509Certificate(fs.readFileSync(path.join(caDir, 'ca.crt')));
    expect(ca.ca).toBe(true);
    expect(new Date(ca.validTo).getUTCFullYear() - new Date().getUTCFullYear()).toBe(10);

    const again = await tandem(['ca', 'init', '--dir', caDir, '--passphrase-file', passFile]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/ca\.(crt|key) already exists: .* holds a CA already/);
    expect(fs.readFileSync(path.join(caDir, 'ca.key'), 'utf8')).toBe(key);
  });
});

describe('tandem cert issue / show', () => {
  it('issues into --out: node.crt, node.key (0600), ca.crt that the transport accepts', async () => {
    const out = path.join(dir, 'n2');
    const r = await tandem(['cert', 'issue', 'n2', '--ca-dir', caDir, '--out', out], { TANDEM_CA_PASSPHRASE: 'correct horse battery staple' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('issued a certificate for node n2');
    expect(mode(out)).toBe(0o700);
    expect(mode(path.join(out, 'node.key'))).toBe(0o600);
    expect(fs.readFileSync(path.join(out, 'node.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const creds = loadNodeCredentials(out);
    expect(creds.node).toBe('n2');
    const cert = new crypto.X509Certificate(creds.certPem);
    expect(cert.subjectAltName).toBe('DNS:n2');
    const years = (new Date(cert.validTo).getTime() - Date.now()) / (365.25 * 86400e3);
    expect(years).toBeGreaterThan(2);
    expect(years).toBeLessThan(5);
  });

  it('--install writes into $TANDEM_HOME/state/tls, which cert show describes', async () => {
    const r = await tandem(['cert', 'issue', 'n1', '--ca-dir', caDir, '--passphrase-file', passFile, '--install']);
    expect(r.code, r.stderr).toBe(0);
    const tls = path.join(home, 'state', 'tls');
    expect(mode(tls)).toBe(0o700);
    expect(mode(path.join(tls, 'node.key'))).toBe(0o600);
    const fingerprint = new crypto.X509Certificate(fs.readFileSync(path.join(tls, 'node.crt'))).fingerprint256;
    const s = await tandem(['cert', 'show']);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain('node:        n1');
    expect(s.stdout).toContain('subject:     CN=n1, O=Tandem');
    expect(s.stdout).toMatch(/issuer: {6}CN=Tandem cluster CA [0-9a-f]{8}, O=Tandem/);
    expect(s.stdout).toMatch(/valid until: \S+ \(\d+ days left\)/);
    expect(s.stdout).toContain(`SHA-256:     ${fingerprint}`);
    expect(s.stdout).toContain('status:      usable');

    const again = await tandem(['cert', 'issue', 'n1', '--ca-dir', caDir, '--passphrase-file', passFile, '--install']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists; to replace the certificate in');
    expect(again.stderr).toContain('add --force');
    const forced = await tandem(['cert', 'issue', 'n1', '--ca-dir', caDir, '--passphrase-file', passFile, '--install', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(new crypto.X509Certificate(fs.readFileSync(path.join(tls, 'node.crt'))).fingerprint256).not.toBe(fingerprint);
  });

  it('names each bad input and the fix', async () => {
    const pass = { TANDEM_CA_PASSPHRASE: 'correct horse battery staple' };
    const out = path.join(dir, 'bad');
    const wrong = await tandem(['cert', 'issue', 'n3', '--ca-dir', caDir, '--out', out], { TANDEM_CA_PASSPHRASE: 'not the passphrase' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim()).toBe(`tandem-agent: cannot decrypt ${path.join(caDir, 'ca.key')}: wrong passphrase (give the one used at "tandem ca init", with --passphrase-file FILE or TANDEM_CA_PASSPHRASE)`);

    const noCa = await tandem(['cert', 'issue', 'n3', '--ca-dir', path.join(dir, 'nope'), '--out', out], pass);
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toContain(`the CA directory ${path.join(dir, 'nope')} does not exist; create a cluster CA with: tandem ca init --dir`);

    const halfCa = path.join(dir, 'half');
    fs.mkdirSync(halfCa);
    fs.copyFileSync(path.join(caDir, 'ca.crt'), path.join(halfCa, 'ca.crt'));
    const half = await tandem(['cert', 'issue', 'n3', '--ca-dir', halfCa, '--out', out], pass);
    expect(half.code).toBe(1);
    expect(half.stderr).toContain(`${path.join(halfCa, 'ca.key')} is missing`);

    const badName = await tandem(['cert', 'issue', 'no_such host', '--ca-dir', caDir, '--out', out], pass);
    expect(badName.code).toBe(2);
    expect(firstLine(badName.stderr)).toContain('node name "no_such host" is not valid: use a host name');

    const both = await tandem(['cert', 'issue', 'n3', '--ca-dir', caDir, '--out', out, '--install'], pass);
    expect(both.code).toBe(2);
    expect(firstLine(both.stderr)).toContain('cert issue needs one of --out DIR');
    const noDir = await tandem(['cert', 'issue', 'n3', '--out', out], pass);
    expect(noDir.code).toBe(2);
    expect(firstLine(noDir.stderr)).toContain('cert issue needs --ca-dir DIR');
    expect(fs.existsSync(out)).toBe(false);

    const unreadable = path.join(dir, 'unreadable');
    fs.mkdirSync(unreadable);
    fs.writeFileSync(path.join(unreadable, 'node.crt'), 'not a certificate');
    const show = await tandem(['cert', 'show', '--dir', unreadable]);
    expect(show.code).toBe(1);
    expect(show.stderr.trim()).toMatch(/^tandem-agent: .*unreadable\/node\.crt is not a PEM certificate/);

    const none = await tandem(['cert', 'show', '--dir', path.join(dir, 'empty')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no certificate installed in');
    expect(none.stderr).toContain('tandem cert issue NODE --ca-dir CA_DIR --install');

    const verb = await tandem(['cert', 'revoke', 'n1']);
    expect(verb.code).toBe(2);
    expect(verb.stderr).toContain('unknown command "cert revoke"');
  });

  it('cert show says NOT USABLE, exit 1, when the key is readable by others', async () => {
    const out = path.join(dir, 'n2');
    fs.chmodSync(path.join(out, 'node.key'), 0o644);
    const s = await tandem(['cert', 'show', '--dir', out]);
    expect(s.code).toBe(1);
    expect(s.stdout).toContain('node:        n2');
    expect(s.stdout).toMatch(/status: {6}NOT USABLE: .*node\.key is accessible by others \(mode 0644\); make it private with: chmod 600/);
  });
});
