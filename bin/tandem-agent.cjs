#!/usr/bin/env node
// `npx tandem-agent` from the repository: runs the bundle that `npm run build` produced.
const path = require('node:path');
const fs = require('node:fs');
const bundle = path.join(__dirname, '..', 'resources', 'agent', 'tandem-agent.cjs');
if (!fs.existsSync(bundle)) {
  process.stderr.write('tandem-agent: the agent is not built yet. Run `npm run build` in the repository first.\n');
  process.exit(1);
}
require(bundle);
