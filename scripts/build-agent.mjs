// Bundles the agent into one file that runs with plain `node` and no node_modules: this is what is
// copied to cluster nodes.
import { build } from 'esbuild';
import { chmodSync, mkdirSync } from 'node:fs';

const outfile = 'resources/agent/tandem-agent.cjs';
mkdirSync('resources/agent', { recursive: true });
await build({
  entryPoints: ['agent/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  outfile,
  sourcemap: 'linked',
  banner: { js: '#!/usr/bin/env node' },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
console.log(`built ${outfile}`);
