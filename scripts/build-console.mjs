// Bundles the console: Electron's main process and preload, and the browser-mode server, each one
// CommonJS file under resources/console/ (the renderer is built by Vite into resources/renderer/).
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';

mkdirSync('resources/console', { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  sourcemap: 'linked',
  logLevel: 'warning',
  // ssh2's optional native speed-ups; it falls back to pure JavaScript without them.
  external: ['electron', 'cpu-features', '*.node'],
};
await build({ ...common, entryPoints: ['electron/main.ts'], outfile: 'resources/console/main.cjs' });
await build({ ...common, entryPoints: ['electron/preload.ts'], outfile: 'resources/console/preload.cjs' });
await build({ ...common, entryPoints: ['electron/backend/serve.ts'], outfile: 'resources/console/serve.cjs' });
console.log('built resources/console/{main,preload,serve}.cjs');
