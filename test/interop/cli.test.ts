// `tandem-agent export` as an administrator meets it: arguments, mistakes, and a clean stop.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AGENT_BUNDLE, run, runOk, startExport, tempDir } from '../helpers/tools.js';

const dir = tempDir('cli');
const disk = path.join(dir, 'disk.img');
fs.writeFileSync(disk, Buffer.alloc(1 << 20, 7));
const agent = (...args: string[]) => run(process.execPath, [AGENT_BUNDLE, ...args], { timeoutMs: 15_000 });

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('tandem-agent export', () => {
  it('runs from the repository root with npx after npm run build', async () => {
    const r = await run('npx', ['--no-install', 'tandem-agent', 'version'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('explains a missing --file or --socket with the usage line (exit 2)', async () => {
    const r = await agent('export', '--socket', path.join(dir, 'a.sock'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--file is required');
    expect(r.stderr).toContain('usage: tandem-agent export --file PATH --socket PATH');
    const s = await agent('export', '--file', disk);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('--socket is required');
  });

  it('refuses unknown options and commands', async () => {
    const r = await agent('export', '--file', disk, '--socket', path.join(dir, 'b.sock'), '--bogus');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--bogus'/);
    const c = await agent('exprot');
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('unknown command "exprot"');
  });

  it('names a missing disk and says how to make one', async () => {
    const r = await agent('export', '--file', path.join(dir, 'nope.img'), '--socket', path.join(dir, 'c.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path.join(dir, 'nope.img')} does not exist`);
    expect(r.stderr).toContain('truncate -s 1G');
    expect(fs.existsSync(path.join(dir, 'c.sock'))).toBe(false);
  });

  it('refuses a directory and an empty file', async () => {
    const d = await agent('export', '--file', dir, '--socket', path.join(dir, 'd.sock'));
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('neither a regular file nor a block device');
    const empty = path.join(dir, 'empty.img');
    fs.writeFileSync(empty, '');
    const e = await agent('export', '--file', empty, '--socket', path.join(dir, 'e.sock'));
    expect(e.code).toBe(1);
    expect(e.stderr).toContain('is empty');
  });

  it('refuses a non-loopback --tcp address and a malformed one', async () => {
    const r = await agent('export', '--file', disk, '--socket', path.join(dir, 'f.sock'), '--tcp', '0.0.0.0:10809');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not a loopback address');
    expect(fs.existsSync(path.join(dir, 'f.sock'))).toBe(false); // cleaned up
    const m = await agent('export', '--file', disk, '--socket', path.join(dir, 'g.sock'), '--tcp', 'localhost');
    expect(m.code).toBe(2);
    expect(m.stderr).toContain('is not HOST:PORT');
  });

  it('never deletes a file that sits where the socket should go', async () => {
    const precious = path.join(dir, 'precious.txt');
    fs.writeFileSync(precious, 'keep me');
    const r = await agent('export', '--file', disk, '--socket', precious);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a socket');
    expect(fs.readFileSync(precious, 'utf8')).toBe('keep me');
  });

  it('serves on a root-only socket and loopback TCP, refuses a second export on the same socket, stops cleanly on SIGTERM', async () => {
    const socket = path.join(dir, 'live.sock');
    const exp = await startExport({ file: disk, socket, tcp: '127.0.0.1:0', name: 'live' });
    expect(fs.statSync(socket).mode & 0o777).toBe(0o600);
    const port = /tcp:127\.0\.0\.1:(\d+)/.exec(exp.stdout())![1];
    const info = JSON.parse(await runOk('nbdinfo', ['--json', `nbd://127.0.0.1:${port}/live`]));
    expect(info.exports[0]['export-size']).toBe(1 << 20);
    const second = await agent('export', '--file', disk, '--socket', socket);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain('in use by another running export');
    expect(await exp.stop()).toBe(0);
    expect(exp.stderr()).toContain('closed cleanly');
    expect(fs.existsSync(socket)).toBe(false);
  });

  it('on SIGTERM, finishes and exits even if a client never hangs up', async () => {
    const socket = path.join(dir, 'stubborn.sock');
    const exp = await startExport({ file: disk, socket });
    const { RawClient } = await import('../helpers/raw-client.js');
    const stubborn = await RawClient.connect(socket, true);
    await stubborn.go();
    const started = Date.now();
    expect(await exp.stop()).toBe(0);
    expect(Date.now() - started, exp.stderr()).toBeLessThan(12_000);
    stubborn.destroy();
  });

  it('replaces a stale socket left by a crashed export', async () => {
    const socket = path.join(dir, 'stale.sock');
    const first = await startExport({ file: disk, socket });
    first.child.kill('SIGKILL');
    await first.exited;
    expect(fs.existsSync(socket)).toBe(true);
    const again = await startExport({ file: disk, socket });
    expect(JSON.parse(await runOk('nbdinfo', ['--json', again.uri])).exports[0]['export-size']).toBe(1 << 20);
    expect(await again.stop()).toBe(0);
  });
});
