// `tandem` and the manual's `mirror_status` / `mirror_action`: CLIs over the local agent's control socket.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { callAgent } from '../control/json-rpc.js';
import { agentPaths } from '../daemon/home.js';
import { formatMirrorStatus, formatSize, type MirrorStatus } from '../../common/mirror-status.js';
import { UsageError } from './usage-error.js';
import { runCertificates } from './cert-command.js';
import { runCtl } from './ctl-command.js';
import { formatRewindTime, parseRewindTime } from '../../common/rewind.js';
import { CLUSTER_USAGE, runCluster } from './cluster-command.js';

export const TANDEM_USAGE = `usage: tandem <command> ...   (talks to the agent on this node; state under $TANDEM_HOME)

  status [TAG] [--json]                         every mirror on this node, or one
  create TAG --disk DISK [--bitmap FILE|none] [--chunk-size BYTES] [--async-limit N] [--compress 0-9]
             [--resync-rate BYTES_PER_SECOND]
                                                make DISK the source of a new mirror (its NBD export
                                                is printed: attach it and use it instead of DISK)
  accept TAG --disk DISK                        on a target node: let mirror TAG replicate into DISK
  extend TAG --target NODE --address HOST:PORT [--mode sync|async] [--local-address ADDR]
             [--no-initial-sync | --checksum]  on the source: start replicating to NODE (--checksum: the
                                                target already holds a copy; send only chunks that differ)
  unextend TAG --target NODE                    on the source: stop replicating to NODE
  release TAG                                   on a target node: give DISK back
  delete TAG                                    on the source: remove the mirror (data stays on DISK)
  pause|resume TAG [NODE ...]                   on the source, for all or the named targets
  fullresync TAG [--checksum] [NODE ...]        resend everything (--checksum: only chunks whose hash differs)
  waitsync TAG [NODE ...] [--timeout S]         wait until the targets are Fully Operational (default 600 s)
  inservice TAG                                 bring the mirror in service on this node: on a target in
                                                sync, a switchover (or a failover if its source is lost)
  outofservice TAG                              on the source: stop the export and replication (the bitmap
                                                keeps what changes meanwhile)
  resolve TAG --survivor NODE                   after a split brain, on the node whose changes are to be
                                                discarded: it becomes a target of NODE and is resynced
  bookmark TAG NAME                             a rewind-log bookmark: on the source it goes to every target in
                                                the write stream; on a target, into its own log
  bookmarks TAG [--json]                        on a target: its rewind log's span and bookmarks
  rewind TAG (--time TIME | --bookmark NAME) [--no-mount]
                                                on a paused target: open the data as it was at TIME, exported
                                                read-only (and a file system mounted read-only)
  rewind TAG --close                            close (unmount) the rewound view
  recover TAG (--time TIME | --bookmark NAME)   on a target, mirror resumed and in sync: switch over to it
                                                with its data rewound to TIME; the old source gets only the
                                                chunks that differ (TIME: ISO 8601, e.g. 2026-11-30T18:01:02.123456Z)
${CLUSTER_USAGE}  ca init | cert issue | cert show              the cluster CA and node certificates; \`tandem cert help\`
  ctl                                           JSON-RPC 2.0 to the agent on stdin/stdout, one object per
                                                line (what the console runs over SSH)
`;

function controlSocket(): string {
  return agentPaths().controlSocket;
}


export function formatStatusTable(mirrors: MirrorStatus[]): string {
  if (mirrors.length === 0) return 'no mirrors on this node\n';
  const lines: string[] = [];
  for (const m of mirrors) {
    if (m.role === 'target') {
      lines.push(`${m.tag}: target on ${m.node}, ${m.state}, ${m.disk} (${formatSize(m.size)}), source ${m.source ? `${m.source} connected` : `${m.lastSource ?? 'none'} not connected`}${m.exportSocket ? `; readable (read-only) at ${m.exportSocket}` : ''}`);
      const rl = m.rewindLog;
      if (rl.kept) {
        lines.push(`  rewind log: ${rl.dir}, ${rl.entries ?? 0} entries (${formatSize(rl.bytes ?? 0)}${rl.maxBytes ? ` of at most ${formatSize(rl.maxBytes)}` : ''}), from ${formatRewindTime(rl.start ?? 0)}, ${rl.bookmarks ?? 0} bookmark${rl.bookmarks === 1 ? '' : 's'}${rl.view ? `; rewound view at ${formatRewindTime(rl.view.time)} open${rl.view.mountPoint ? `, mounted at ${rl.view.mountPoint}` : ''}` : ''}`);
      } else if (rl.error) {
        lines.push(`  rewind log not kept: ${rl.error}`);
      }
      continue;
    }
    const flags = [m.lastOwner ? 'last_owner' : '', m.dataCorrupt ? 'data_corrupt' : ''].filter(Boolean).join(', ');
    lines.push(`${m.tag}: source on ${m.node}, ${m.state}, ${m.disk} (${formatSize(m.size)})${m.exportSocket ? `, export ${m.exportSocket}` : ''}${flags ? ` [${flags}]` : ''}`);
    for (const t of m.targets) {
      const extra = t.status === 'Resyncing'
        ? ` ${Math.round(t.resyncSpeed / 1024)}K/sec${t.etaSeconds !== null ? ` ETA ${t.etaSeconds}s` : ''}`
        : '';
      lines.push(`  -> ${t.node} (${t.address}) ${t.status}, ${t.mode}, ${t.percentSynced.toFixed(1)}% synced${extra}, queue ${t.queueDepth}${t.throttled ? ' (full: writes wait)' : ''}${t.lastError && t.status === 'Out Of Sync' ? ` — ${t.lastError}` : ''}`);
    }
    const dirty = Math.max(0, ...m.targets.map((t) => t.dirtyChunks));
    lines.push(`  bitmap: ${m.bitmap.file ?? 'none'}, ${m.bitmap.chunks} chunks of ${formatSize(m.bitmap.chunkSize)}, ${dirty} dirty; async limit ${m.asyncLimit}`);
  }
  return lines.join('\n') + '\n';
}

async function call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
  return callAgent(controlSocket(), method, params);
}

export async function runTandem(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const parse = (options: NonNullable<ParseArgsConfig['options']>, allowPositionals = true) => {
    try {
      return parseArgs({ args: rest, options, allowPositionals, strict: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${TANDEM_USAGE}`);
    }
  };
  const tagOf = (positionals: string[]) => {
    const tag = positionals[0];
    if (!tag) throw new UsageError(`${command} needs a mirror TAG\n\n${TANDEM_USAGE}`);
    return tag;
  };
  const print = (v: unknown) => process.stdout.write(typeof v === 'string' ? v : JSON.stringify(v, null, 2) + '\n');
  switch (command) {
    case 'ctl':
      parse({}, false);
      return runCtl();
    case 'status': {
      const { values, positionals } = parse({ json: { type: 'boolean', default: false } });
      const mirrors = (await call('mirror.status', positionals[0] ? { tag: positionals[0] } : {})) as MirrorStatus[];
      print(values.json ? mirrors : formatStatusTable(mirrors));
      return 0;
    }
    case 'create': {
      const { values, positionals } = parse({ disk: { type: 'string' }, bitmap: { type: 'string' }, 'chunk-size': { type: 'string' }, 'async-limit': { type: 'string' }, compress: { type: 'string' }, 'resync-rate': { type: 'string' } });
      if (!values.disk) throw new UsageError('create needs --disk DISK (the source disk, partition or file)');
      const r = (await call('mirror.create', {
        tag: tagOf(positionals), disk: path.resolve(String(values.disk)),
        bitmap: typeof values.bitmap === 'string' && values.bitmap !== 'none' ? path.resolve(values.bitmap) : values.bitmap,
        chunkSize: values['chunk-size'] ? Number(values['chunk-size']) : undefined,
        asyncLimit: values['async-limit'] ? Number(values['async-limit']) : undefined,
        compression: values.compress ? Number(values.compress) : undefined,
        resyncRate: values['resync-rate'] ? Number(values['resync-rate']) : undefined,
      })) as { tag: string; export: string; size: number };
      print(`created mirror ${r.tag} (${formatSize(r.size)}); its NBD export (the NetRAID device) is ${r.export}\n`);
      return 0;
    }
    case 'accept': {
      const { values, positionals } = parse({ disk: { type: 'string' } });
      if (!values.disk) throw new UsageError('accept needs --disk DISK (the target disk, partition or file)');
      const r = (await call('mirror.accept', { tag: tagOf(positionals), disk: path.resolve(String(values.disk)) })) as { replication: string };
      print(`${values.disk} is ready to be a target of ${positionals[0]}; the source connects to ${r.replication}\n`);
      return 0;
    }
    case 'extend': {
      const { values, positionals } = parse({
        target: { type: 'string' }, address: { type: 'string' }, mode: { type: 'string', default: 'sync' },
        'local-address': { type: 'string' }, 'no-initial-sync': { type: 'boolean', default: false },
        checksum: { type: 'boolean', default: false },
      });
      if (values['no-initial-sync'] && values.checksum) throw new UsageError('--no-initial-sync and --checksum exclude each other');
      if (!values.target || !values.address) throw new UsageError('extend needs --target NODE and --address HOST:PORT (the target agent\'s replication address)');
      await call('mirror.extend', {
        tag: tagOf(positionals), node: values.target, address: values.address, mode: values.mode,
        localAddress: values['local-address'], initialSync: values['no-initial-sync'] ? 'none' : values.checksum ? 'checksum' : 'full',
      });
      const how = values['no-initial-sync'] ? '' : values.checksum ? '; a checksum resync starts now' : '; a full resync starts now';
      print(`extending ${positionals[0]} to ${values.target} (${values.mode})${how}\n`);
      return 0;
    }
    case 'unextend': {
      const { values, positionals } = parse({ target: { type: 'string' } });
      if (!values.target) throw new UsageError('unextend needs --target NODE');
      await call('mirror.unextend', { tag: tagOf(positionals), node: values.target });
      print(`${values.target} is no longer a target of ${positionals[0]}\n`);
      return 0;
    }
    case 'release':
    case 'delete': {
      const { positionals } = parse({});
      await call(command === 'release' ? 'mirror.release' : 'mirror.delete', { tag: tagOf(positionals) });
      print(command === 'release' ? `released the target volume of ${positionals[0]}\n` : `deleted mirror ${positionals[0]}; the data stays on its disk\n`);
      return 0;
    }
    case 'pause':
    case 'resume':
    case 'fullresync': {
      const { values, positionals } = parse(command === 'fullresync' ? { checksum: { type: 'boolean', default: false } } : {});
      const tag = tagOf(positionals);
      const params: Record<string, unknown> = { tag, targets: positionals.slice(1) };
      if (command === 'fullresync') params.checksum = values.checksum === true;
      const r = (await call(`mirror.${command}`, params)) as Record<string, string[]>;
      print(`${command}: ${tag} -> ${(r[command === 'fullresync' ? 'fullresync' : command === 'pause' ? 'paused' : 'resumed'] ?? []).join(', ') || 'no targets'}\n`);
      return 0;
    }
    case 'waitsync': {
      const { values, positionals } = parse({ timeout: { type: 'string', default: '600' } });
      const tag = tagOf(positionals);
      const timeout = Number(values.timeout);
      if (!Number.isInteger(timeout) || timeout < 1 || timeout > 86_400) throw new UsageError(`--timeout takes whole seconds from 1 to 86400, not "${values.timeout}"`);
      const r = (await callAgent(controlSocket(), 'mirror.waitsync', { tag, targets: positionals.slice(1), timeout }, (timeout + 30) * 1000)) as { inSync: string[]; waitedMs: number };
      print(`${tag}: ${r.inSync.join(', ') || 'no targets'} in sync (waited ${(r.waitedMs / 1000).toFixed(1)} s)\n`);
      return 0;
    }
    case 'inservice':
    case 'outofservice': {
      const { positionals } = parse({});
      const r = (await call(`mirror.${command}`, { tag: tagOf(positionals) })) as { message: string };
      print(`${r.message}\n`);
      return 0;
    }
    case 'resolve': {
      const { values, positionals } = parse({ survivor: { type: 'string' } });
      if (!values.survivor) throw new UsageError('resolve needs --survivor NODE (the node whose data is kept)');
      const r = (await call('mirror.resolve', { tag: tagOf(positionals), survivor: values.survivor })) as { message: string };
      print(`${r.message}\n`);
      return 0;
    }
    case 'bookmark': {
      const { positionals } = parse({});
      const tag = tagOf(positionals);
      if (positionals.length !== 2) throw new UsageError(`bookmark needs a TAG and a NAME (quote a name with spaces): tandem bookmark ${tag} NAME`);
      const r = (await call('mirror.bookmark', { tag, name: positionals[1] })) as { name: string; marked: string[]; missed: Array<{ node: string; why: string }>; time?: number };
      const missed = r.missed.length ? `; not on ${r.missed.map((m) => `${m.node} (${m.why})`).join(', ')}` : '';
      print(`bookmark "${r.name}" marked in the rewind log on ${r.marked.join(', ')}${r.time !== undefined ? ` at ${formatRewindTime(r.time)}` : ''}${missed}\n`);
      return 0;
    }
    case 'bookmarks': {
      const { values, positionals } = parse({ json: { type: 'boolean', default: false } });
      const r = (await call('mirror.bookmarks', { tag: tagOf(positionals) })) as {
        tag: string; dir: string; start: number; end: number; entries: number; bytes: number; bookmarks: Array<{ name: string; time: number }>;
      };
      if (values.json) {
        print(r);
        return 0;
      }
      const lines = [`${r.tag}: rewind log ${r.dir}, ${r.entries} entries (${formatSize(r.bytes)}), from ${formatRewindTime(r.start)} to ${formatRewindTime(r.end)}`];
      if (r.bookmarks.length === 0) lines.push('no bookmarks');
      for (const b of r.bookmarks) lines.push(`${formatRewindTime(b.time)}  ${b.name}`);
      print(lines.join('\n') + '\n');
      return 0;
    }
    case 'rewind':
    case 'recover': {
      const { values, positionals } = parse({
        time: { type: 'string' }, bookmark: { type: 'string' },
        ...(command === 'rewind' ? { close: { type: 'boolean', default: false }, 'no-mount': { type: 'boolean', default: false } } : {}),
      });
      const tag = tagOf(positionals);
      if (values.close) {
        if (values.time || values.bookmark) throw new UsageError('rewind --close takes no --time or --bookmark');
        const r = (await call('mirror.rewindclose', { tag })) as { closed: boolean };
        print(r.closed ? `${tag}: the rewound view is closed\n` : `${tag}: no rewound view was open\n`);
        return 0;
      }
      if (!values.time === !values.bookmark) throw new UsageError(`${command} needs --time TIME or --bookmark NAME (one of them)\n\n${TANDEM_USAGE}`);
      let time: number | undefined;
      if (typeof values.time === 'string') {
        const t = parseRewindTime(values.time);
        if (t === null) throw new UsageError(`--time "${values.time}" is not a time: use ISO 8601 (UTC), e.g. 2026-11-30T18:01:02.123456Z, as tandem bookmarks prints them`);
        time = t;
      }
      const bookmark = typeof values.bookmark === 'string' ? values.bookmark : undefined;
      if (command === 'recover') {
        const r = (await call('mirror.inservice', { tag, ...(time !== undefined ? { rewindTo: time } : { rewindBookmark: bookmark }) })) as { message: string };
        print(`${r.message}\n`);
        return 0;
      }
      const r = (await call('mirror.rewind', { tag, ...(time !== undefined ? { time } : { bookmark }), mount: !values['no-mount'] })) as {
        time: number; socket: string; exportName: string; changedBlocks: number; mountPoint: string | null;
      };
      print(`${tag} rewound to ${formatRewindTime(r.time)} (${r.changedBlocks} blocks from the rewind log; the target is unchanged)\n` +
        `  read-only export: nbd+unix:///${r.exportName}?socket=${r.socket}\n` +
        (r.mountPoint ? `  mounted read-only at ${r.mountPoint}\n` : ''));
      return 0;
    }
    case 'cluster':
    case 'commpath':
    case 'failover':
    case 'confirmso':
      return runCluster(command, rest);
    case 'ca':
    case 'cert':
      return runCertificates(command, rest);
    case undefined:
    case 'help':
    case '--help':
      print(TANDEM_USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${TANDEM_USAGE}`);
  }
}

/** `mirror_status <tag>`, in the manual's format. */
export async function runMirrorStatus(argv: string[]): Promise<number> {
  const tag = argv[0];
  if (!tag || argv.length > 1) throw new UsageError('usage: mirror_status <tag>');
  const [m] = (await call('mirror.status', { tag })) as MirrorStatus[];
  if (m!.role === 'target') {
    const from = m!.source ?? m!.lastSource;
    process.stdout.write(`${tag}: this node (${m!.node}) is a target (${m!.state}); run mirror_status on the source${from ? ` (${from})` : ''}\n`);
    return 0;
  }
  if (m!.state !== 'in service') process.stdout.write(`${tag}: ${m!.state} on ${m!.node}${m!.dataCorrupt ? ' (data_corrupt)' : ''}\n`);
  process.stdout.write(formatMirrorStatus(m!));
  return 0;
}

/** `mirror_settings <tag> <setting> <value>`, the manual's syntax (run on the source here). */
export async function runMirrorSettings(argv: string[]): Promise<number> {
  const [tag, setting, value, ...extra] = argv;
  if (!tag || !setting || value === undefined || extra.length > 0) throw new UsageError('usage: mirror_settings <tag> <setting> <value>   (setting: logdir, logmax, compress; Tandem adds resyncrate)');
  const r = (await call('mirror.settings', { tag, setting, value })) as { takesEffect: string };
  process.stdout.write(`${tag}: ${setting} set to ${value}; takes effect ${r.takesEffect}\n`);
  return 0;
}

/** `mirror_action <tag> <action> <source> [target(s)]`, the manual's syntax. */
export async function runMirrorAction(argv: string[]): Promise<number> {
  const [tag, action, source, ...targets] = argv;
  const usage = 'usage: mirror_action <tag> <action> <source> [target(s)]   (action: pause, resume, force, fullresync)';
  if (!tag || !action || !source) throw new UsageError(usage);
  if (!['pause', 'resume', 'fullresync', 'force'].includes(action)) throw new UsageError(`unknown action "${action}"\n${usage}`);
  const info = (await call('agent.info')) as { node: string };
  if (action === 'force') {
    // Force Mirror Online: `mirror_action <tag> force <node>`, run on that node.
    if (targets.length > 0) throw new UsageError(`force takes one system, the one to bring in service: mirror_action ${tag} force ${source}`);
    if (info.node !== source) throw new UsageError(`this node is ${info.node}: run mirror_action ${tag} force ${source} on ${source}`);
    const r = (await call('mirror.inservice', { tag, force: true })) as { message: string };
    process.stdout.write(`${r.message}\n`);
    return 0;
  }
  if (info.node !== source) {
    throw new UsageError(`this node is ${info.node}, but the source given is ${source}: run mirror_action on the source node (${source})`);
  }
  const r = (await call(`mirror.${action}`, { tag, targets })) as Record<string, string[]>;
  const done = r[action === 'fullresync' ? 'fullresync' : action === 'pause' ? 'paused' : 'resumed'] ?? [];
  process.stdout.write(`${tag}: ${action} ${source} -> ${done.join(' ')}\n`);
  return 0;
}
