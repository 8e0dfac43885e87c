// `npm run serve`: the console in browser mode — the backend with HTTP + WebSocket on 127.0.0.1 and a
// random token. Secrets are never stored in this mode (there is no OS keychain to protect them).
import { parseArgs } from 'node:util';
import path from 'node:path';
import { createBackend, resourcesDir } from './create-backend.js';
import { defaultDataDir } from './data-dir.js';
import { startBrowserServer } from './browser-server.js';

const USAGE = 'usage: npm run serve -- [--port N] [--data-dir DIR] [--local-lab NODES]';

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ options: { port: { type: 'string' }, 'data-dir': { type: 'string' }, 'local-lab': { type: 'string' }, help: { type: 'boolean' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`--port ${values.port} is not a port number (0–65535; 0 picks a free one)\n`);
    return 2;
  }
  const labNodes = values['local-lab'] === undefined ? 0 : Number(values['local-lab']);
  if (!Number.isInteger(labNodes) || (labNodes !== 0 && (labNodes < 2 || labNodes > 8))) {
    process.stderr.write(`--local-lab ${values['local-lab']}: give 2 to 8 nodes\n`);
    return 2;
  }
  // Always run bundled as resources/console/serve.cjs (npm run build), so __dirname is that folder.
  const resources = resourcesDir(__dirname);
  const dataDir = path.resolve(values['data-dir'] ?? defaultDataDir());
  const backend = createBackend({ dataDir, resources, cipher: null });
  const server = await startBrowserServer({ backend, staticDir: path.join(resources, 'renderer'), port });
  if (labNodes) await backend.openLocalLab(labNodes);
  process.stdout.write(`Tandem console (browser mode): open ${server.url}\n  data folder ${dataDir}; passwords are not remembered in browser mode. Ctrl-C stops it.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await server.close();
  await backend.close();
  return 0;
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`tandem console: ${err.message}\n`);
  process.exit(1);
});
