// The command an administrator would type on the node for an agent call — shown in the Output Panel
// next to every action, so the GUI teaches the CLI.
const quote = (s: unknown): string => {
  const v = String(s);
  return /^[A-Za-z0-9_./:@=+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
};

export function cliEquivalent(method: string, params: Record<string, unknown>): string {
  const tag = params.tag !== undefined ? quote(params.tag) : '';
  const targets = Array.isArray(params.targets) ? params.targets.map(quote).join(' ') : '';
  const opt = (flag: string, v: unknown) => (v === undefined || v === null || v === '' ? '' : ` ${flag} ${quote(v)}`);
  switch (method) {
    case 'mirror.status': return `tandem status${tag ? ` ${tag}` : ''}`;
    case 'mirror.create':
      return `tandem create ${tag} --disk ${quote(params.disk)}${opt('--bitmap', params.bitmap)}${opt('--chunk-size', params.chunkSize)}${opt('--async-limit', params.asyncLimit)}${opt('--compress', params.compression)}${opt('--resync-rate', params.resyncRate)}`;
    case 'mirror.accept': return `tandem accept ${tag} --disk ${quote(params.disk)}`;
    case 'mirror.extend':
      return `tandem extend ${tag} --target ${quote(params.node)} --address ${quote(params.address)}${opt('--mode', params.mode)}${opt('--local-address', params.localAddress)}${params.initialSync === 'none' ? ' --no-initial-sync' : params.initialSync === 'checksum' ? ' --checksum' : ''}`;
    case 'mirror.unextend': return `tandem unextend ${tag} --target ${quote(params.node)}`;
    case 'mirror.release': return `tandem release ${tag}`;
    case 'mirror.delete': return `tandem delete ${tag}`;
    case 'mirror.pause': return `mirror_action ${tag} pause${targets ? ` ${targets}` : ''}`;
    case 'mirror.resume': return `mirror_action ${tag} resume${targets ? ` ${targets}` : ''}`;
    case 'mirror.fullresync': return `mirror_action ${tag} fullresync${targets ? ` ${targets}` : ''}`;
    case 'mirror.settings': return `mirror_settings ${tag} ${quote(params.setting)} ${quote(params.value)}`;
    case 'mirror.inservice': return params.force ? `mirror_action ${tag} force` : `tandem inservice ${tag}`;
    case 'mirror.outofservice': return `tandem outofservice ${tag}`;
    case 'mirror.resolve': return `tandem resolve ${tag} --survivor ${quote(params.survivor)}`;
    // No CLI of its own: the JSON-RPC request itself, which `tandem ctl` on the node answers.
    default: return `echo '${JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }).replace(/'/g, `'\\''`)}' | tandem ctl`;
  }
}

/** The GUI's words for an agent call (the Output Panel's Action column). */
export function actionName(method: string, params: Record<string, unknown>): string {
  const names: Record<string, string> = {
    'mirror.create': 'Create Mirror', 'mirror.accept': 'Accept Target', 'mirror.extend': 'Extend Mirror', 'mirror.unextend': 'Unextend Mirror',
    'mirror.release': 'Release Target', 'mirror.delete': 'Delete Mirror', 'mirror.pause': 'Pause Mirror', 'mirror.resume': 'Resume Mirror',
    'mirror.fullresync': 'Full Resync', 'mirror.outofservice': 'Out of Service', 'mirror.resolve': 'Resolve Split Brain',
    'resource.create': 'Create Resource Hierarchy', 'resource.savedatabase': 'Save resource database',
  };
  if (method === 'mirror.inservice') return params.force ? 'Force Mirror Online' : 'In Service';
  if (method === 'mirror.settings') {
    const what: Record<string, string> = { compress: 'Set Compression Level', logdir: 'Set Rewind Log Location', logmax: 'Set Rewind Log Max Size', resyncrate: 'Set Resync Rate' };
    return what[String(params.setting)] ?? 'Mirror Settings';
  }
  return names[method] ?? method;
}
