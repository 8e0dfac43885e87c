// `npm start`: the console. It arrives with the console issues; until then this says what exists and
// what to run, rather than failing obscurely. Where the Electron binary is missing, the console will
// fall back to browser mode (`npm run serve`).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let electronBinary = null;
try {
  const p = require('electron'); // the package exports the binary path
  if (typeof p === 'string' && existsSync(p)) electronBinary = p;
} catch {
  electronBinary = null;
}

console.log(`Tandem console
  The desktop console (Electron) and its browser mode are not built yet.
  Electron binary: ${electronBinary ?? 'not installed here (installed with ELECTRON_SKIP_BINARY_DOWNLOAD=1 or unavailable); the console will fall back to browser mode'}

What works today: the node agent — NBD export, mirroring over mutual TLS, the failover rules
(switchover, failover, split brain), file system resources — driven by its CLIs.
  npm run build
  npx tandem-agent export --file disk.img --socket /var/tmp/disk.sock
  npx tandem-agent tandem ca init --dir CA_DIR --passphrase-file FILE   # once per cluster
  npx tandem-agent tandem cert issue NAME --ca-dir CA_DIR --passphrase-file FILE --install
  npx tandem-agent run --node NAME     # the node daemon; then: npx tandem-agent tandem help
The two-node mirror recipe (certificates included) is in docs/cli.md.
See README.md.`);
