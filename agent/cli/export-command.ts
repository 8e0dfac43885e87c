// `tandem-agent export`: serve one file or disk over NBD until SIGTERM.
import { parseArgs } from 'node:util';
import { FileBlockStore, OpenError } from '../storage/file-store.js';
import { makeExport } from '../nbd/export.js';
import { ListenError, NbdServer, SimpleCatalog } from '../nbd/server.js';
import { createLogger } from '../log.js';
import { UsageError } from './usage-error.js';

export const EXPORT_USAGE =
  'usage: tandem-agent export --file PATH --socket PATH [--tcp 127.0.0.1:PORT] [--read-only] [--name NAME]';

export interface ExportOptions {
  file: string;
  socket: string;
  tcp?: { host: string; port: number };
  readOnly: boolean;
  name: string;
}

export function parseExportArgs(argv: string[]): ExportOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        file: { type: 'string' },
        socket: { type: 'string' },
        tcp: { type: 'string' },
        'read-only': { type: 'boolean', default: false },
        name: { type: 'string', default: 'tandem' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${EXPORT_USAGE}`);
  }
  if (!values.file) throw new UsageError(`--file is required: the disk, partition or image file to serve.\n${EXPORT_USAGE}`);
  if (!values.socket) throw new UsageError(`--socket is required: the Unix socket path clients connect to.\n${EXPORT_USAGE}`);
  const name = values.name ?? 'tandem';
  if (Buffer.byteLength(name) > 4096) throw new UsageError('--name is longer than 4096 bytes, the NBD limit.');
  let tcp: ExportOptions['tcp'];
  if (values.tcp !== undefined) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(values.tcp);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port > 65535) throw new UsageError(`--tcp ${values.tcp} is not HOST:PORT (for example 127.0.0.1:10809).`);
    tcp = { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
  }
  return { file: values.file, socket: values.socket, tcp, readOnly: values['read-only'] ?? false, name };
}

export async function runExport(argv: string[]): Promise<number> {
  const options = parseExportArgs(argv);
  const log = createLogger('tandem-agent export');
  let store: FileBlockStore;
  try {
    store = FileBlockStore.open(options.file, { readOnly: options.readOnly });
  } catch (err) {
    if (err instanceof OpenError) {
      log.error(err.message);
      return 1;
    }
    throw err;
  }
  const server = new NbdServer(new SimpleCatalog([makeExport(options.name, store, `Tandem export of ${options.file}`)]), log);
  const where: string[] = [];
  try {
    await server.listenUnix(options.socket);
    where.push(`unix:${options.socket}`);
    if (options.tcp) {
      const port = await server.listenTcp(options.tcp.host, options.tcp.port);
      where.push(`tcp:${options.tcp.host.includes(':') ? `[${options.tcp.host}]` : options.tcp.host}:${port}`);
    }
  } catch (err) {
    await server.close();
    await store.close();
    if (err instanceof ListenError) {
      log.error(err.message);
      return 1;
    }
    throw err;
  }
  process.stdout.write(
    `serving ${options.file} (${store.size} bytes${options.readOnly ? ', read-only' : ''}) as export "${options.name}" on ${where.join(' ')}\n`,
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info(`${signal}: finishing requests in flight and closing`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await server.close();
  if (!store.readOnly) await store.flush();
  await store.close();
  log.info('closed cleanly');
  return 0;
}
