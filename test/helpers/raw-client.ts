// A deliberately small NBD client for tests that must send exactly the bytes they choose, bad ones included.
import net from 'node:net';
import { ByteQueue } from '../../agent/nbd/byte-queue.js';
import {
  Cmd, encodeRequestHeader, IHAVEOPT_BYTES, NBDMAGIC, Opt, OPTION_REPLY_MAGIC, SIMPLE_REPLY_MAGIC,
} from '../../agent/nbd/protocol.js';

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export interface SimpleReply {
  error: number;
  cookie: bigint;
  data: Buffer;
}

export class RawClient {
  private queue = new ByteQueue();
  private waiters: Array<() => void> = [];
  private ended = false;
  readonly socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.queue.push(c);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** @param allowHalfOpen keep our side open after the server hangs up (a client that never closes) */
  static connect(path: string, allowHalfOpen = false): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ path, allowHalfOpen });
      s.once('connect', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Bytes received and not yet read: lets a test check that nothing was answered, without consuming. */
  get available(): number {
    return this.queue.length;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Exactly n bytes, or throws if the server closed first (or after timeoutMs). */
  async read(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length < n) {
      if (this.ended) throw new Error(`server closed the connection (wanted ${n} bytes, had ${this.queue.length})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.queue.take(n);
  }

  /** Resolves true if the server closes within timeoutMs. */
  async waitClosed(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.ended;
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  /** Reads the greeting and sends client flags; returns the handshake flags. */
  async greet(clientFlags = 3): Promise<number> {
    const g = await this.read(18);
    if (!g.subarray(0, 8).equals(NBDMAGIC) || !g.subarray(8, 16).equals(IHAVEOPT_BYTES)) throw new Error('bad greeting');
    const b = Buffer.alloc(4);
    b.writeUInt32BE(clientFlags >>> 0);
    this.write(b);
    return g.readUInt16BE(16);
  }

  sendOption(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const h = Buffer.alloc(16);
    IHAVEOPT_BYTES.copy(h, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(declaredLength >>> 0, 12);
    this.write(Buffer.concat([h, data]));
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = await this.read(20);
    if (h.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error('bad option reply magic');
    const length = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(length) };
  }

  /** Reads option replies up to and including a final one (ACK or an error). */
  async readOptionReplies(): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.readOptionReply();
      out.push(r);
      if (r.type === 1 || r.type >= 0x80000000) return out;
    }
  }

  static goPayload(name: string, infos: number[] = []): Buffer {
    const n = Buffer.from(name);
    const b = Buffer.alloc(4 + n.length + 2 + infos.length * 2);
    b.writeUInt32BE(n.length, 0);
    n.copy(b, 4);
    b.writeUInt16BE(infos.length, 4 + n.length);
    infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + i * 2));
    return b;
  }

  /** Full handshake with NBD_OPT_GO; returns export size and transmission flags. */
  async go(name = ''): Promise<{ size: number; flags: number }> {
    await this.greet();
    this.sendOption(Opt.GO, RawClient.goPayload(name));
    const replies = await this.readOptionReplies();
    const last = replies[replies.length - 1];
    if (!last || last.type !== 1) throw new Error(`GO refused: type 0x${last?.type.toString(16)} ${last?.data.toString()}`);
    const info = replies.find((r) => r.type === 3 && r.data.readUInt16BE(0) === 0);
    if (!info) throw new Error('no NBD_INFO_EXPORT');
    return { size: Number(info.data.readBigUInt64BE(2)), flags: info.data.readUInt16BE(10) };
  }

  request(type: number, offset: number, length: number, cookie: bigint, flags = 0, payload?: Buffer): void {
    const h = encodeRequestHeader({ type, flags, offset, length, cookie });
    this.write(payload ? Buffer.concat([h, payload]) : h);
  }

  /** Reads one simple reply; `readLengths` maps a cookie to the data length expected with it (reads). */
  async readReply(readLengths: Map<bigint, number> = new Map(), timeoutMs = 10_000): Promise<SimpleReply> {
    const h = await this.read(16, timeoutMs);
    if (h.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error('bad reply magic');
    const error = h.readUInt32BE(4);
    const cookie = h.readBigUInt64BE(8);
    const n = error === 0 ? (readLengths.get(cookie) ?? 0) : 0;
    return { error, cookie, data: n > 0 ? await this.read(n) : Buffer.alloc(0) };
  }

  async readAt(offset: number, length: number, cookie = 0xfeedn): Promise<SimpleReply> {
    this.request(Cmd.READ, offset, length, cookie);
    return this.readReply(new Map([[cookie, length]]));
  }

  async writeAt(offset: number, data: Buffer, cookie = 0xbeefn, flags = 0): Promise<SimpleReply> {
    this.request(Cmd.WRITE, offset, data.length, cookie, flags, data);
    return this.readReply();
  }

  disconnect(): void {
    this.request(Cmd.DISC, 0, 0, 0n);
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
