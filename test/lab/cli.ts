// npm run lab [-- --nodes N]: a lab cluster for a person, until Ctrl-C or SIGTERM.
import { createLab, type Lab } from './lab.js';

function usage(): never {
  process.stderr.write('usage: npm run lab [-- --nodes N]   (N 1–8, default 3; run as root)\n');
  process.exit(2);
}

async function main(): Promise<void> {
  let nodes = 3;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--nodes' || a === '-n') nodes = Number(argv[++i]);
    else if (a?.startsWith('--nodes=')) nodes = Number(a.slice('--nodes='.length));
    else usage();
  }
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 8) usage();
  process.stdout.write(`creating a ${nodes}-node lab…\n`);
  let lab: Lab | null = null;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: tearing the lab down…\n`);
    await lab?.teardown();
    process.stdout.write('done\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGHUP', () => void stop('SIGHUP'));
  lab = await createLab({ nodes });
  if (stopping) return;
  const lines = [
    `lab ${lab.id}: bridge ${lab.bridge} ${lab.bridgeAddress}/24, files in ${lab.dir}`,
    `client key: ${lab.clientKey.privateKeyFile}   known hosts: ${lab.knownHostsFile}`,
    '',
  ];
  for (const n of lab.nodes) {
    lines.push(`${n.name}  ${n.address}  disks ${n.disks.join(' ')}  netns ${n.netns}`);
    lines.push(`  host key ${n.hostKeyFingerprint}`);
    lines.push(`  ssh -i ${lab.clientKey.privateKeyFile} -o UserKnownHostsFile=${lab.knownHostsFile} root@${n.address}`);
  }
  lines.push('', 'Ctrl-C tears everything down.');
  process.stdout.write(lines.join('\n') + '\n');
  // Keep running until a signal.
  setInterval(() => undefined, 1 << 30);
}

main().catch((e: Error) => {
  process.stderr.write(`lab: ${e.message}\n`);
  process.exit(1);
});
