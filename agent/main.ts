// Entry point of the agent bundle. One file, several programs, chosen by the name it is run under
// (symlinks on a node: tandem, mirror_status, mirror_action, mirror_settings, bitmap, lk_confirmso) or by its first argument.
import path from 'node:path';
import { TANDEM_VERSION } from '../common/version.js';
import { runBitmap } from './cli/bitmap-command.js';
import { EXPORT_USAGE, runExport } from './cli/export-command.js';
import { RUN_USAGE, runDaemon } from './cli/run-command.js';
import { runMirrorAction, runMirrorSettings, runMirrorStatus, runTandem } from './cli/tandem-command.js';
import { UsageError } from './cli/usage-error.js';
import { runConfirmso } from './cli/cluster-command.js';

const HELP = `tandem-agent ${TANDEM_VERSION}: the Tandem node agent

commands:
  run            the node daemon: mirrors, replication, control socket
                 ${RUN_USAGE.replace('usage: ', '')}
  export         serve a file or disk over NBD until SIGTERM
                 ${EXPORT_USAGE.replace('usage: ', '')}
  tandem ...     the mirror CLI (also installed as \`tandem\`); \`tandem-agent tandem help\`
  mirror_status <tag>
  mirror_action <tag> <action> <source> [target(s)]
  mirror_settings <tag> <setting> <value>
  bitmap -a <num>|-c|-d|-X <bitmap_file>
  lk_confirmso -y|-n -s <server>
  version        print the version
`;

const PROGRAMS: Record<string, (argv: string[]) => Promise<number>> = {
  tandem: runTandem,
  mirror_status: runMirrorStatus,
  mirror_action: runMirrorAction,
  mirror_settings: runMirrorSettings,
  bitmap: runBitmap,
  lk_confirmso: (argv) => runConfirmso(argv),
};

export async function main(program: string, argv: string[]): Promise<number> {
  try {
    const direct = PROGRAMS[program];
    if (direct) return await direct(argv);
    const [command, ...rest] = argv;
    const sub = command ? PROGRAMS[command] : undefined;
    if (sub) return await sub(rest);
    switch (command) {
      case 'run':
        return await runDaemon(rest);
      case 'export':
        return await runExport(rest);
      case 'version':
      case '--version':
        process.stdout.write(`${TANDEM_VERSION}\n`);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}".\n\n${HELP}`);
    }
  } catch (err) {
    const name = PROGRAMS[program] ? program : 'tandem-agent';
    if (err instanceof UsageError) {
      process.stderr.write(`${name}: ${err.message}\n`);
      return 2;
    }
    if (err && (err as Error).constructor?.name === 'RpcError') {
      process.stderr.write(`${name}: ${(err as Error).message}\n`);
      return 1;
    }
    if (err instanceof Error && /no agent is running|permission denied|did not answer/.test(err.message)) {
      process.stderr.write(`${name}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`${name}: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

const program = process.env.TANDEM_PROGRAM ?? path.basename(process.argv[1] ?? '').replace(/\.(c?js)$/, '');
void main(program, process.argv.slice(2)).then((code) => process.exit(code));
