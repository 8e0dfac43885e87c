// Network compression of replicated writes (zlib deflate-raw, levels 1–9), agreed per connection.
import zlib from 'node:zlib';
import { encodeWriteZ } from '../replication/wire.js';

/**
 * The WRITE_Z frame (sequence number 0, to be set) for a payload, or null when compressing does not
 * make it smaller — then the plain WRITE goes.
 */
export function compressWrite(offset: number, payload: Buffer, level: number): Buffer | null {
  const c = zlib.deflateRawSync(payload, { level });
  return c.length + 4 < payload.length ? encodeWriteZ(0, offset, payload.length, c) : null;
}
