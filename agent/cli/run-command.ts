// `tandem-agent run`: start the node daemon and serve until SIGTERM.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { AgentDaemon, DEFAULT_REPLICATION_PORT } from '../daemon/agent-daemon.js';
import { createLogger } from '../log.js';
import { UsageError } from './usage-error.js';

export const RUN_USAGE = 'usage: tandem-agent run [--node NAME] [--replication HOST:PORT] [--heartbeat HOST:PORT] [--insecure-plaintext]   (state under $TANDEM_HOME or /var/lib/tandem, /run/tandem)';

export async function runDaemon(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { node: { type: 'string' }, replication: { type: 'string' }, heartbeat: { type: 'string' }, 'insecure-plaintext': { type: 'boolean', default: false } }, strict: true }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${RUN_USAGE}`);
  }
  let host = '0.0.0.0';
  let port = DEFAULT_REPLICATION_PORT;
  if (values.replication) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(values.replication);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--replication ${values.replication} is not HOST:PORT (for example 10.0.0.1:${DEFAULT_REPLICATION_PORT}).`);
    host = (m[1] as string).replace(/^\[|\]$/g, '');
    port = Number(m[2]);
  }
  let heartbeat: { heartbeatHost: string; heartbeatPort: number; heartbeatExplicit: boolean } | Record<string, never> = {};
  if (values.heartbeat) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(values.heartbeat);
    if (!m || Number(m[2]) > 65535) throw new UsageError(`--heartbeat ${values.heartbeat} is not HOST:PORT (for example 10.0.0.1:${DEFAULT_REPLICATION_PORT + 1}).`);
    heartbeat = { heartbeatHost: (m[1] as string).replace(/^\[|\]$/g, ''), heartbeatPort: Number(m[2]), heartbeatExplicit: true };
  }
  const log = createLogger('tandem-agent');
  // insecurePlaintext: replication over plain TCP instead of mutual TLS (benchmarks, trusted lab networks).
  const options = { node: values.node ?? os.hostname(), replicationHost: host, replicationPort: port, insecurePlaintext: values['insecure-plaintext'], ...heartbeat };
  const daemon = new AgentDaemon(options, log);
  try {
    await daemon.start();
  } catch (err) {
    log.error((err as Error).message);
    await daemon.stop().catch(() => undefined);
    return 1;
  }
  process.stdout.write(`tandem-agent ${daemon.node} running: control ${daemon.paths.controlSocket}, replication ${host}:${daemon.replicationPort}, heartbeat ${daemon.heartbeatPort}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  log.info('stopping');
  await daemon.stop();
  log.info('stopped cleanly');
  return 0;
}
