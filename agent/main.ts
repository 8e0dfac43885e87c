// Entry point of the agent bundle: `tandem-agent <command> ...`.
import { TANDEM_VERSION } from '../common/version.js';
import { EXPORT_USAGE, runExport } from './cli/export-command.js';
import { UsageError } from './cli/usage-error.js';

const HELP = `tandem-agent ${TANDEM_VERSION}: the Tandem node agent

commands:
  export   serve a file or disk over NBD until SIGTERM
           ${EXPORT_USAGE.replace('usage: ', '')}
  version  print the version
  help     print this text
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
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
    if (err instanceof UsageError) {
      process.stderr.write(`tandem-agent: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`tandem-agent: internal error: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
