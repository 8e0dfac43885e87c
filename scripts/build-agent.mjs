// Bundles the agent into one file that runs with plain `node` and no node_modules: this is what is
// copied to cluster nodes.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

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
// What the console checks after uploading the bundle to a node: its hash, and the version it must report.
const bundle = readFileSync(outfile);
const version = /TANDEM_VERSION = "([^"]+)"/.exec(bundle.toString())?.[1];
if (!version) throw new Error('could not find TANDEM_VERSION in the bundle');
writeFileSync('resources/agent/manifest.json', JSON.stringify({ file: 'tandem-agent.cjs', version, sha256: createHash('sha256').update(bundle).digest('hex'), size: bundle.length }, null, 2) + '\n');
console.log(`built ${outfile}`);
