// `npm start`: builds, then runs the desktop console (Electron). Where Electron's binary is not
// installed (ELECTRON_SKIP_BINARY_DOWNLOAD=1, or no download possible) it says so and starts browser
// mode instead: the same console in any browser, at a 127.0.0.1 address with a random token.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);

const built = spawnSync(process.execPath, ['scripts/build-agent.mjs'], { stdio: 'inherit' }).status === 0
  && spawnSync(process.execPath, ['scripts/build-console.mjs'], { stdio: 'inherit' }).status === 0
  && (!existsSync('scripts/build-renderer.mjs') || spawnSync(process.execPath, ['scripts/build-renderer.mjs'], { stdio: 'inherit' }).status === 0);
if (!built) {
  console.error('npm start: the build failed (see above); fix it, or run npm ci if dependencies are missing.');
  process.exit(1);
}

let electronBinary = null;
let why = '';
try {
  const p = require('electron'); // the package exports the binary's path
  if (typeof p === 'string' && existsSync(p)) electronBinary = p;
  else why = `its binary ${p} is missing`;
} catch (err) {
  why = err.message.split('\n')[0];
}

const run = (cmd, argv) => {
  const child = spawn(cmd, argv, { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
};

if (electronBinary) {
  run(electronBinary, ['.', ...args]);
} else {
  console.log(`Electron is not available here (${why || 'not installed'}): it was installed without its binary,
for example with ELECTRON_SKIP_BINARY_DOWNLOAD=1. To get the desktop app: npm install electron (with internet access).
Starting the console in browser mode instead; open the address below in a browser on this machine.`);
  run(process.execPath, ['resources/console/serve.cjs', ...args]);
}
