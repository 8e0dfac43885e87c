// Hostile and broken clients: each gets a clear refusal or a closed connection; the export keeps serving
// everyone else and the data is untouched.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cmd, CmdFlag, encodeRequestHeader, NbdErrno, Opt, Rep } from '../../agent/nbd/protocol.js';
import { RawClient } from '../helpers/raw-client.js';
import { makeRandomFile, runOk, sha256, sha256File, startExport, tempDir, type RunningExport } from '../helpers/tools.js';

const SIZE = 4 * 1024 * 1024;

describe('bad input', () => {
  let dir: string;
  let disk: string;
  let original: string;
  let exp: RunningExport;
  let witness: RawClient; // a well-behaved client connected throughout

  beforeAll(async () => {
    dir = tempDir('bad');
    disk = path.join(dir, 'disk.img');
    original = sha256(makeRandomFile(disk, SIZE, 42));
    exp = await startExport({ file: disk, socket: path.join(dir, 'nbd.sock') });
    witness = await RawClient.connect(exp.socket);
    await witness.go();
  });

  afterAll(async () => {
    witness.disconnect();
    expect(await exp.stop()).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // After every case: the witness still reads, a new real client still connects, nothing changed on disk.
  afterEach(async () => {
    const r = await witness.readAt(SIZE - 4096, 4096);
    expect(r.error).toBe(0);
    expect(r.data.equals(fs.readFileSync(disk).subarray(SIZE - 4096))).toBe(true);
    const info = JSON.parse(await runOk('nbdinfo', ['--json', exp.uri]));
    expect(info.exports[0]['export-size']).toBe(SIZE);
    expect(sha256File(disk)).toBe(original);
    expect(exp.child.exitCode).toBeNull();
  });

  it('wrong option magic: the connection is closed', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.write(Buffer.concat([Buffer.from('IHAVEOPX'), Buffer.from([0, 0, 0, 7, 0, 0, 0, 0])]));
    expect(await c.waitClosed()).toBe(true);
  });

  it('wrong request magic in transmission: hard disconnect of that client only', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.go();
    const h = encodeRequestHeader({ type: Cmd.READ, flags: 0, offset: 0, length: 512, cookie: 1n });
    h.writeUInt32BE(0xdeadbeef, 0);
    c.write(h);
    expect(await c.waitClosed()).toBe(true);
  });

  it('unknown client flags: closed before any option', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet(0x80000003);
    expect(await c.waitClosed()).toBe(true);
  });

  it('truncated option: the client vanishes in the middle of its data', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.GO, Buffer.alloc(10), 100);
    await new Promise((r) => setTimeout(r, 50));
    c.destroy();
  });

  it('truncated option header: 7 bytes then close', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.write(Buffer.from('IHAVEOP'));
    c.destroy();
  });

  it('oversized option: ERR_TOO_BIG, then closed', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.GO, Buffer.alloc(0), 0x40000000);
    const r = await c.readOptionReply();
    expect(r.type).toBe(Rep.ERR_TOO_BIG);
    expect(await c.waitClosed()).toBe(true);
  });

  it('malformed GO payload: ERR_INVALID and the connection stays usable', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.GO, Buffer.from([0, 0, 0, 50, 1, 2]));
    expect((await c.readOptionReply()).type).toBe(Rep.ERR_INVALID);
    await c.readAt(0, 0).catch(() => undefined); // not in transmission yet: nothing to read
    c.destroy();
  });

  it('unknown command and unknown flags: EINVAL, and the same connection keeps working', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.go();
    c.request(99, 0, 512, 1n);
    expect(await c.readReply()).toMatchObject({ cookie: 1n, error: NbdErrno.EINVAL });
    c.request(Cmd.READ, 0, 512, 2n, 1 << 9);
    expect(await c.readReply()).toMatchObject({ cookie: 2n, error: NbdErrno.EINVAL });
    c.request(Cmd.WRITE, 0, 512, 3n, 1 << 9, Buffer.alloc(512, 0xee)); // payload still consumed, not written
    expect(await c.readReply()).toMatchObject({ cookie: 3n, error: NbdErrno.EINVAL });
    c.request(Cmd.READ, 0, 512, 4n, CmdFlag.DF); // DF was not negotiated
    expect(await c.readReply()).toMatchObject({ cookie: 4n, error: NbdErrno.EINVAL });
    expect((await c.readAt(0, 16)).error).toBe(0);
    c.disconnect();
  });

  it('out-of-range reads, writes, trims and zeroes get EINVAL / ENOSPC and change nothing', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.go();
    c.request(Cmd.READ, SIZE - 100, 200, 1n);
    expect(await c.readReply()).toMatchObject({ cookie: 1n, error: NbdErrno.EINVAL });
    c.request(Cmd.READ, 2 ** 52, 1, 2n);
    expect(await c.readReply()).toMatchObject({ cookie: 2n, error: NbdErrno.EINVAL });
    const huge = encodeRequestHeader({ type: Cmd.READ, flags: 0, offset: 0, length: 1, cookie: 3n });
    huge.writeBigUInt64BE(0xfffffffffffffe00n, 16); // offset + length overflows 64 bits
    c.write(huge);
    expect(await c.readReply()).toMatchObject({ cookie: 3n, error: NbdErrno.EINVAL });
    c.request(Cmd.WRITE, SIZE - 100, 200, 4n, 0, Buffer.alloc(200, 0xff));
    expect(await c.readReply()).toMatchObject({ cookie: 4n, error: NbdErrno.ENOSPC });
    c.request(Cmd.WRITE, SIZE, 1, 5n, 0, Buffer.alloc(1, 0xff));
    expect(await c.readReply()).toMatchObject({ cookie: 5n, error: NbdErrno.ENOSPC });
    c.request(Cmd.TRIM, SIZE - 4096, 8192, 6n);
    expect(await c.readReply()).toMatchObject({ cookie: 6n, error: NbdErrno.EINVAL });
    c.request(Cmd.WRITE_ZEROES, SIZE - 4096, 8192, 7n);
    expect(await c.readReply()).toMatchObject({ cookie: 7n, error: NbdErrno.ENOSPC });
    expect((await c.readAt(SIZE - 1, 1)).error).toBe(0); // the last byte is in range
    c.disconnect();
  });

  it('requests above 32 MiB are refused without harming the connection; 32 MiB itself is served', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.go();
    c.request(Cmd.READ, 0, 64 * 1024 * 1024, 1n);
    expect(await c.readReply()).toMatchObject({ cookie: 1n, error: NbdErrno.EINVAL });
    const big = 32 * 1024 * 1024 + 1;
    c.request(Cmd.WRITE, 0, big, 2n, 0, Buffer.alloc(big, 0xcc)); // read and thrown away
    expect(await c.readReply()).toMatchObject({ cookie: 2n, error: NbdErrno.EINVAL });
    expect((await c.readAt(0, 4096)).data.equals(fs.readFileSync(disk).subarray(0, 4096))).toBe(true);
    c.disconnect();
  });

  it('a 32 MiB read is served in full', async () => {
    const bigDir = tempDir('big');
    const bigDisk = path.join(bigDir, 'big.img');
    const data = makeRandomFile(bigDisk, 33 * 1024 * 1024, 5);
    const bigExp = await startExport({ file: bigDisk, socket: path.join(bigDir, 'nbd.sock') });
    const c = await RawClient.connect(bigExp.socket);
    await c.go();
    const r = await c.readAt(1024 * 1024, 32 * 1024 * 1024);
    expect(r.error).toBe(0);
    expect(sha256(r.data)).toBe(sha256(data.subarray(1024 * 1024, 33 * 1024 * 1024)));
    c.disconnect();
    expect(await bigExp.stop()).toBe(0);
    fs.rmSync(bigDir, { recursive: true, force: true });
  });

  it('a client killed (SIGKILL) in the middle of a write payload leaves the disk untouched', async () => {
    const script = `
      const net = require('node:net');
      const s = net.connect(process.argv[1]);
      let got = Buffer.alloc(0), phase = 0;
      s.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (phase === 0 && got.length >= 18) {
          phase = 1; got = got.subarray(18);
          const flags = Buffer.alloc(4); flags.writeUInt32BE(3);
          const opt = Buffer.alloc(16 + 6); opt.write('IHAVEOPT'); opt.writeUInt32BE(7, 8); opt.writeUInt32BE(6, 12);
          s.write(Buffer.concat([flags, opt]));
        }
        while (phase === 1 && got.length >= 20 && got.length >= 20 + got.readUInt32BE(16)) {
          const type = got.readUInt32BE(12);
          got = got.subarray(20 + got.readUInt32BE(16));
          if (type !== 1) continue;
          phase = 2;
          const h = Buffer.alloc(28); h.writeUInt32BE(0x25609513, 0); h.writeUInt16BE(1, 6);
          h.writeBigUInt64BE(0n, 16); h.writeUInt32BE(1048576, 24);
          s.write(Buffer.concat([h, Buffer.alloc(300000, 0xab)]), () => {
            process.stdout.write('sent\\n');
            setTimeout(() => process.kill(process.pid, 'SIGKILL'), 50);
          });
        }
      });`;
    const child = spawn(process.execPath, ['-e', script, exp.socket], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const signal = await new Promise((resolve) => child.once('exit', (_c, s) => resolve(s)));
    expect(signal).toBe('SIGKILL');
    expect(out).toContain('sent');
  });

  it('clients that say goodbye with NBD_CMD_DISC leave no descriptors behind', async () => {
    const fdCount = () => fs.readdirSync(`/proc/${exp.child.pid}/fd`).length;
    const before = fdCount();
    for (let i = 0; i < 20; i++) await runOk('nbdinfo', ['--size', exp.uri]);
    await Promise.all(Array.from({ length: 50 }, async () => {
      const c = await RawClient.connect(exp.socket);
      await c.go();
      c.disconnect();
      await c.waitClosed();
    }));
    const deadline = Date.now() + 5_000;
    while (fdCount() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(fdCount()).toBeLessThanOrEqual(before);
  });

  it('1,000 connections opened and dropped at every stage leave no descriptors behind', async () => {
    const fdCount = () => fs.readdirSync(`/proc/${exp.child.pid}/fd`).length;
    const before = fdCount();
    const stages = ['immediately', 'after greeting', 'mid option', 'in transmission', 'mid request'] as const;
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(Array.from({ length: 100 }, async (_, i) => {
        const stage = stages[(batch * 100 + i) % stages.length];
        if (stage === 'immediately') {
          await new Promise<void>((resolve) => {
            const s = net.connect(exp.socket, () => {
              s.destroy();
              resolve();
            });
            s.on('error', () => resolve());
          });
          return;
        }
        const c = await RawClient.connect(exp.socket);
        if (stage === 'after greeting') await c.read(18);
        else if (stage === 'mid option') {
          await c.greet();
          c.sendOption(Opt.GO, Buffer.alloc(3), 40);
        } else {
          await c.go();
          if (stage === 'mid request') c.write(encodeRequestHeader({ type: Cmd.WRITE, flags: 0, offset: 0, length: 4096, cookie: 1n }).subarray(0, 20));
        }
        c.destroy();
      }));
    }
    // Give the server a moment to see every close, bounded.
    const deadline = Date.now() + 10_000;
    while (fdCount() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(fdCount()).toBeLessThanOrEqual(before);
  });
});
