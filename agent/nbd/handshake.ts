// Fixed newstyle option haggling, written against a small I/O interface so it is independent of sockets.
import {
  BLOCK_SIZE_MAX, BLOCK_SIZE_MIN, BLOCK_SIZE_PREFERRED, CLIENT_FLAG_FIXED_NEWSTYLE, CLIENT_FLAG_NO_ZEROES,
  decodeInfoRequest, decodeOptionHeader, encodeExportNameReply, encodeGreeting, encodeInfoBlockSize,
  encodeInfoExport, encodeInfoString, encodeOptionReply, encodeServerEntry, Info, KNOWN_CLIENT_FLAGS,
  MAX_OPTION_LENGTH, Opt, OPTION_HEADER_LENGTH, Rep,
} from './protocol.js';
import type { NbdExport } from './export.js';

export interface HandshakeIo {
  /** Exactly n bytes, or null if the client went away first. */
  read(n: number): Promise<Buffer | null>;
  write(data: Buffer): void;
}

export interface ExportCatalog {
  /** The export for a name; "" means the default export. */
  lookup(name: string): NbdExport | undefined;
  list(): NbdExport[];
}

export type HandshakeResult =
  | { kind: 'transmission'; export: NbdExport; noZeroes: boolean }
  | { kind: 'close'; reason: string; protocolError: boolean };

function message(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

export async function negotiate(io: HandshakeIo, exports: ExportCatalog): Promise<HandshakeResult> {
  const left = (when: string): HandshakeResult => ({ kind: 'close', reason: `client left ${when}`, protocolError: false });
  const violation = (reason: string): HandshakeResult => ({ kind: 'close', reason, protocolError: true });

  io.write(encodeGreeting());
  const clientFlagBytes = await io.read(4);
  if (!clientFlagBytes) return left('before sending its flags');
  const clientFlags = clientFlagBytes.readUInt32BE(0);
  if (clientFlags & ~KNOWN_CLIENT_FLAGS) {
    // The spec requires closing: the client expects something we do not understand.
    return violation(`unknown client flags 0x${clientFlags.toString(16)}`);
  }
  const fixed = (clientFlags & CLIENT_FLAG_FIXED_NEWSTYLE) !== 0;
  const noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) !== 0;

  for (;;) {
    const headerBytes = await io.read(OPTION_HEADER_LENGTH);
    if (!headerBytes) return left('during option haggling');
    const header = decodeOptionHeader(headerBytes);
    if (!header.magicOk) return violation('bad option magic');
    const { option, length } = header;
    if (length > MAX_OPTION_LENGTH) {
      io.write(encodeOptionReply(option, Rep.ERR_TOO_BIG, message(`option of ${length} bytes exceeds ${MAX_OPTION_LENGTH}`)));
      return violation(`oversized option ${option} (${length} bytes)`);
    }
    const data = length > 0 ? await io.read(length) : Buffer.alloc(0);
    if (!data) return left(`in the middle of option ${option}`);

    switch (option) {
      case Opt.EXPORT_NAME: {
        const name = data.toString('utf8');
        const exp = exports.lookup(name);
        // This option has no error reply: the only way to refuse is to close.
        if (!exp) return violation(`unknown export "${name}" requested with NBD_OPT_EXPORT_NAME`);
        io.write(encodeExportNameReply(exp.size, exp.transmissionFlags, noZeroes));
        return { kind: 'transmission', export: exp, noZeroes };
      }
      case Opt.ABORT:
        io.write(encodeOptionReply(option, Rep.ACK));
        return { kind: 'close', reason: 'client aborted the handshake', protocolError: false };
      case Opt.LIST:
        if (length !== 0) {
          io.write(encodeOptionReply(option, Rep.ERR_INVALID, message('NBD_OPT_LIST takes no data')));
          break;
        }
        for (const exp of exports.list()) io.write(encodeOptionReply(option, Rep.SERVER, encodeServerEntry(exp.name, exp.description)));
        io.write(encodeOptionReply(option, Rep.ACK));
        break;
      case Opt.STARTTLS:
        io.write(encodeOptionReply(option, Rep.ERR_POLICY,
          message('TLS is not offered here: this export is reachable only through a root-only socket or loopback')));
        break;
      case Opt.INFO:
      case Opt.GO: {
        const request = decodeInfoRequest(data);
        if (!request) {
          io.write(encodeOptionReply(option, Rep.ERR_INVALID, message('malformed NBD_OPT_INFO/GO payload')));
          break;
        }
        const exp = exports.lookup(request.name);
        if (!exp) {
          const names = exports.list().map((e) => `"${e.name}"`).join(', ');
          io.write(encodeOptionReply(option, Rep.ERR_UNKNOWN, message(`no export named "${request.name}"; exports: ${names}`)));
          break;
        }
        io.write(encodeOptionReply(option, Rep.INFO, encodeInfoExport(exp.size, exp.transmissionFlags)));
        io.write(encodeOptionReply(option, Rep.INFO, encodeInfoBlockSize(BLOCK_SIZE_MIN, BLOCK_SIZE_PREFERRED, BLOCK_SIZE_MAX)));
        if (request.requests.includes(Info.NAME)) io.write(encodeOptionReply(option, Rep.INFO, encodeInfoString(Info.NAME, exp.name)));
        if (request.requests.includes(Info.DESCRIPTION) && exp.description) {
          io.write(encodeOptionReply(option, Rep.INFO, encodeInfoString(Info.DESCRIPTION, exp.description)));
        }
        io.write(encodeOptionReply(option, Rep.ACK));
        if (option === Opt.GO) return { kind: 'transmission', export: exp, noZeroes };
        break;
      }
      default:
        // Includes STRUCTURED_REPLY: simple replies only. A non-fixed client cannot take ERR_UNSUP.
        if (!fixed) return violation(`unsupported option ${option} from a client without fixed newstyle`);
        io.write(encodeOptionReply(option, Rep.ERR_UNSUP, message(`option ${option} is not supported`)));
        break;
    }
  }
}
