// The cluster manager's CLIs: `tandem cluster status`, `tandem commpath`, `tandem failover --dry-run`,
// `tandem confirmso` and the manual's `lk_confirmso -y|-n -s SERVER`.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
import { callAgent } from '../control/json-rpc.js';
import { agentPaths } from '../daemon/home.js';
import type { ClusterStatus } from '../cluster/manager.js';
import type { Action } from '../cluster/decide.js';
import type { Quorum } from '../cluster/quorum.js';
import type { ClusterPeer } from '../cluster/commpaths.js';
import { UsageError } from './usage-error.js';

export const CLUSTER_USAGE = `  cluster status [--json]                       servers (alive/failed/stopped/unknown), each comm path's last
                                                heartbeat, quorum, pending confirmations, the last decisions
  commpath add SERVER --local ADDR --remote HOST:PORT
                                                heartbeat to SERVER on a comm path (REMOTE: its --heartbeat)
  commpath remove SERVER [--local ADDR [--remote HOST:PORT]]
  commpath list [--json]
  failover --dry-run SERVER                     what this server would do now if SERVER failed
  confirmso -y|-n -s SERVER                     answer a Confirm Failover (also lk_confirmso): proceed or block
`;

export const LK_CONFIRMSO_USAGE = 'usage: lk_confirmso -y|-n -s SERVER   (proceed with, or block, the failover from the failed SERVER)';

const call = (method: string, params: Record<string, unknown> = {}) => callAgent(agentPaths().controlSocket, method, params);
const out = (s: string) => process.stdout.write(s);

function ago(s: number | null): string {
  return s === null ? 'no heartbeat yet' : `last heartbeat ${s.toFixed(1)} s ago`;
}

export function formatClusterStatus(c: ClusterStatus): string {
  const lines = [`cluster as ${c.node} sees it (heartbeat ${c.heartbeat}, every ${c.settings.heartbeatSeconds} s; failed after ${c.settings.missedBeats} missed on every path = ${c.settings.detectionSeconds} s)`];
  for (const s of c.servers) {
    if (s.state === 'this server') continue;
    lines.push(`  ${s.name}: ${s.state}${s.warning ? ` (warning: ${s.warning})` : ''}`);
    for (const p of s.paths) lines.push(`    comm path ${p.path}: ${p.state}, ${ago(p.secondsAgo)}`);
  }
  if (c.servers.length === 1) lines.push('  no other servers: add comm paths with tandem commpath add SERVER --local ADDR --remote HOST:PORT');
  const q = c.quorum;
  lines.push(`quorum (${c.settings.quorumMode}): ${q.quorate ? 'quorate' : 'NOT quorate'}, ${q.votes} of ${q.expected} votes, ${q.needed} needed${q.witness !== 'not used' ? `, witness ${q.witness}` : ''}${q.warning ? `\n  warning: ${q.warning}` : ''}`);
  for (const p of c.pending) lines.push(`pending confirmation: failover of ${p.tag} from ${p.failed}, ${p.secondsLeft} s left (then CONFIRMSODEF=${c.settings.confirmDefault === 'block' ? '1, blocked' : '0, it proceeds'}): lk_confirmso -y -s ${p.failed} | lk_confirmso -n -s ${p.failed}`);
  for (const d of c.decisions) lines.push(`${d.tag}: ${d.kind === 'none' ? 'no action' : d.kind}: ${d.reason}`);
  return lines.join('\n') + '\n';
}

export async function runCluster(command: string, rest: string[]): Promise<number> {
  const parse = <O extends Options>(options: O) => {
    try {
      return parseArgs({ args: rest, options, allowPositionals: true, strict: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${CLUSTER_USAGE}`);
    }
  };
  if (command === 'cluster') {
    const { values, positionals } = parse({ json: { type: 'boolean', default: false } });
    if (positionals[0] !== 'status' || positionals.length > 1) throw new UsageError(`cluster takes: status [--json]\n\n${CLUSTER_USAGE}`);
    const st = (await call('cluster.status')) as ClusterStatus;
    out(values.json ? JSON.stringify(st, null, 2) + '\n' : formatClusterStatus(st));
    return 0;
  }
  if (command === 'commpath') {
    const { values, positionals } = parse({ local: { type: 'string' }, remote: { type: 'string' }, json: { type: 'boolean', default: false } });
    const [verb, server, ...extra] = positionals;
    if (extra.length) throw new UsageError(`commpath: unexpected ${extra.join(' ')}\n\n${CLUSTER_USAGE}`);
    if (verb === 'list') {
      const r = (await call('cluster.commpaths')) as { node: string; heartbeatPort: number; peers: ClusterPeer[] };
      if (values.json) out(JSON.stringify(r, null, 2) + '\n');
      else {
        out(`${r.node} listens for heartbeats on port ${r.heartbeatPort}\n`);
        if (r.peers.length === 0) out('no comm paths\n');
        for (const p of r.peers) for (const c of p.paths) out(`${p.node}: ${c.local} -> ${c.remote}\n`);
      }
      return 0;
    }
    if (!server) throw new UsageError(`commpath ${verb ?? ''} needs a SERVER\n\n${CLUSTER_USAGE}`);
    if (verb === 'add') {
      if (!values.local || !values.remote) throw new UsageError('commpath add needs --local ADDR (this server\'s address on the path) and --remote HOST:PORT (the other server\'s --heartbeat address)');
      await call('cluster.commpath.add', { node: server, local: values.local, remote: values.remote });
      out(`comm path to ${server}: ${values.local} -> ${values.remote} added\n`);
      return 0;
    }
    if (verb === 'remove') {
      await call('cluster.commpath.remove', { node: server, local: values.local, remote: values.remote });
      out(`comm path${values.local ? '' : 's'} to ${server} removed\n`);
      return 0;
    }
    throw new UsageError(`commpath takes add, remove or list\n\n${CLUSTER_USAGE}`);
  }
  if (command === 'failover') {
    const { values, positionals } = parse({ 'dry-run': { type: 'boolean', default: false } });
    if (!values['dry-run'] || positionals.length !== 1) throw new UsageError('failover takes --dry-run SERVER (automatic failover needs no command; this tells what would happen if SERVER failed)');
    const r = (await call('cluster.dryrun', { server: positionals[0] })) as { server: string; q: Quorum; actions: Action[] };
    out(`if ${r.server} failed now (dry run, nothing done): quorum ${r.q.quorate ? 'kept' : 'lost'} (${r.q.reason})\n`);
    if (r.actions.length === 0) out('this server holds no hierarchy: nothing to do\n');
    for (const a of r.actions) out(`${a.tag}: ${a.kind === 'none' ? 'no action' : a.kind === 'in service' ? `this server goes in service${a.confirm ? ' after confirmation (Confirm Failover is On)' : ''}` : 'out of service'}: ${a.reason}\n`);
    return 0;
  }
  return runConfirmso(rest, 'confirmso');
}

/** lk_confirmso -y|-n -s SERVER (the manual's syntax). */
export async function runConfirmso(argv: string[], name = 'lk_confirmso'): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { y: { type: 'boolean', short: 'y' }, n: { type: 'boolean', short: 'n' }, s: { type: 'string', short: 's' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${LK_CONFIRMSO_USAGE}`);
  }
  if (values.y === values.n || !values.s) throw new UsageError(`${name} needs exactly one of -y (proceed) or -n (block) and -s SERVER (the failed server)\n${LK_CONFIRMSO_USAGE}`);
  const r = (await call('cluster.confirm', { failed: values.s, answer: values.y ? 'proceed' : 'block' })) as { message: string };
  out(r.message + '\n');
  return 0;
}
