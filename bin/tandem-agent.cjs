#!/usr/bin/env node
// Launchers used from the repository (`npx tandem-agent`, `npx tandem`, …): run the bundle that
// `npm run build` produced, as the program named by the launcher's file name.
const path = require('node:path');
const fs = require('node:fs');
const bundle = path.join(__dirname, '..', 'resources', 'agent', 'tandem-agent.cjs');
if (!fs.existsSync(bundle)) {
  process.stderr.write('tandem: the agent is not built yet. Run `npm run build` in the repository first.\n');
  process.exit(1);
}
process.env.TANDEM_PROGRAM = path.basename(process.argv[1] || '', '.cjs');
require(bundle);
