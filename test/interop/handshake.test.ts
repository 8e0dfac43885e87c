// Option haggling, byte by byte, against the real agent process.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Info, Opt, Rep, TF } from '../../agent/nbd/protocol.js';
import { RawClient } from '../helpers/raw-client.js';
import { runOk, startExport, tempDir, type RunningExport } from '../helpers/tools.js';

describe('handshake', () => {
  let dir: string;
  let exp: RunningExport;
  let roExp: RunningExport;

  beforeAll(async () => {
    dir = tempDir('hs');
    const disk = path.join(dir, 'disk.img');
    fs.writeFileSync(disk, Buffer.alloc(1 << 20, 0x61));
    exp = await startExport({ file: disk, socket: path.join(dir, 'nbd.sock'), name: 'vol' });
    roExp = await startExport({ file: disk, socket: path.join(dir, 'ro.sock'), name: 'ro', readOnly: true });
  });
  afterAll(async () => {
    await exp.stop();
    await roExp.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('offers fixed newstyle and no zeroes', async () => {
    const c = await RawClient.connect(exp.socket);
    expect(await c.greet()).toBe(3);
    c.destroy();
  });

  it('answers STARTTLS with ERR_POLICY, STRUCTURED_REPLY and unknown options with ERR_UNSUP, and stays usable', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(Rep.ERR_POLICY);
    c.sendOption(Opt.STRUCTURED_REPLY);
    expect((await c.readOptionReply()).type).toBe(Rep.ERR_UNSUP);
    c.sendOption(Opt.SET_META_CONTEXT, Buffer.alloc(12));
    expect((await c.readOptionReply()).type).toBe(Rep.ERR_UNSUP);
    c.sendOption(0x7777, Buffer.from('whatever'));
    const r = await c.readOptionReply();
    expect(r.type).toBe(Rep.ERR_UNSUP);
    expect(r.data.toString()).toContain('not supported');
    c.sendOption(Opt.GO, RawClient.goPayload('vol'));
    const replies = await c.readOptionReplies();
    expect(replies.at(-1)!.type).toBe(Rep.ACK);
    expect((await c.readAt(0, 4)).data.toString()).toBe('aaaa');
    c.disconnect();
  });

  it('INFO returns the export and valid power-of-two block sizes, then GO still works', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.INFO, RawClient.goPayload('vol', [Info.BLOCK_SIZE, Info.NAME, Info.DESCRIPTION]));
    const replies = await c.readOptionReplies();
    const byInfo = new Map(replies.filter((r) => r.type === Rep.INFO).map((r) => [r.data.readUInt16BE(0), r.data]));
    const e = byInfo.get(Info.EXPORT)!;
    expect(Number(e.readBigUInt64BE(2))).toBe(1 << 20);
    const flags = e.readUInt16BE(10);
    expect(flags & TF.HAS_FLAGS).toBeTruthy();
    expect(flags & TF.READ_ONLY).toBe(0);
    const bs = byInfo.get(Info.BLOCK_SIZE)!;
    const [min, pref, max] = [bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)];
    for (const v of [min, pref, max]) expect(v & (v - 1)).toBe(0);
    expect(min).toBeLessThanOrEqual(pref);
    expect(pref).toBeLessThanOrEqual(max);
    expect(byInfo.get(Info.NAME)!.subarray(2).toString()).toBe('vol');
    expect(replies.at(-1)!.type).toBe(Rep.ACK);
    c.sendOption(Opt.GO, RawClient.goPayload(''));
    expect((await c.readOptionReplies()).at(-1)!.type).toBe(Rep.ACK);
    c.disconnect();
  });

  it('GO on an unknown export is ERR_UNKNOWN naming the exports, and the connection stays usable', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.GO, RawClient.goPayload('nope'));
    const r = await c.readOptionReply();
    expect(r.type).toBe(Rep.ERR_UNKNOWN);
    expect(r.data.toString()).toContain('"vol"');
    c.sendOption(Opt.GO, RawClient.goPayload('vol'));
    expect((await c.readOptionReplies()).at(-1)!.type).toBe(Rep.ACK);
    c.disconnect();
  });

  it('LIST answers one SERVER entry then ACK; LIST with data is ERR_INVALID', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.LIST);
    const replies = await c.readOptionReplies();
    expect(replies.map((r) => r.type)).toEqual([Rep.SERVER, Rep.ACK]);
    const entry = replies[0]!.data;
    expect(entry.subarray(4, 4 + entry.readUInt32BE(0)).toString()).toBe('vol');
    c.sendOption(Opt.LIST, Buffer.from('x'));
    expect((await c.readOptionReply()).type).toBe(Rep.ERR_INVALID);
    c.destroy();
  });

  it('EXPORT_NAME enters transmission with or without the 124 zero bytes', async () => {
    for (const clientFlags of [3, 1]) {
      const c = await RawClient.connect(exp.socket);
      await c.greet(clientFlags);
      c.sendOption(Opt.EXPORT_NAME, Buffer.from('vol'));
      const r = await c.read(clientFlags & 2 ? 10 : 134);
      expect(Number(r.readBigUInt64BE(0))).toBe(1 << 20);
      expect((await c.readAt(100, 3)).data.toString()).toBe('aaa');
      c.disconnect();
    }
  });

  it('EXPORT_NAME of an unknown export closes the connection (the option has no error reply)', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.EXPORT_NAME, Buffer.from('missing'));
    expect(await c.waitClosed()).toBe(true);
  });

  it('ABORT is acknowledged and the server closes', async () => {
    const c = await RawClient.connect(exp.socket);
    await c.greet();
    c.sendOption(Opt.ABORT);
    expect((await c.readOptionReply()).type).toBe(Rep.ACK);
    expect(await c.waitClosed()).toBe(true);
  });

  it('a read-only export says so, refuses writes, trims and zeroes with EPERM, and serves reads', async () => {
    const info = JSON.parse(await runOk('nbdinfo', ['--json', roExp.uri])).exports[0];
    expect(info).toMatchObject({ is_read_only: true, can_trim: false, can_zero: false });
    const c = await RawClient.connect(roExp.socket);
    const { flags } = await c.go();
    expect(flags & TF.READ_ONLY).toBeTruthy();
    expect((await c.writeAt(0, Buffer.alloc(4096, 1))).error).toBe(1);
    c.request(4, 0, 4096, 9n);
    expect((await c.readReply()).error).toBe(1);
    c.request(6, 0, 4096, 10n);
    expect((await c.readReply()).error).toBe(1);
    expect((await c.readAt(0, 2)).data.toString()).toBe('aa');
    c.disconnect();
    const qemu = await import('../helpers/tools.js').then((t) => t.run('qemu-io', ['-f', 'raw', '-c', 'write 0 4k', roExp.uri]));
    expect(qemu.stdout + qemu.stderr).toMatch(/read-only|Operation not permitted|permission/i);
  });
});
