// `tandem ca init`, `tandem cert issue`, `tandem cert show`: the cluster CA and node certificates
// that authenticate replication (agent/replication/transport.ts). They work on files only and need
// no running agent, so they can run wherever the CA is kept.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  createClusterCa, decryptPrivateKey, encryptPrivateKey, issueNodeCertificate, MIN_PASSPHRASE_LENGTH, nodeNameProblem,
  parseCertificate, privateKeyPem, summarizeCertificate, type CertificateAuthority,
} from '../../common/pki.js';
import { agentPaths } from '../daemon/home.js';
import { loadNodeCredentials, TLS_FILES } from '../replication/transport.js';
import { writeFileAtomic as writeAtomic } from '../../common/atomic-file.js';
import { UsageError } from './usage-error.js';

export const CERT_USAGE = `usage: tandem ca init --dir DIR [--passphrase-file FILE]
                                                create the cluster CA: DIR/ca.crt, DIR/ca.key (encrypted)
       tandem cert issue NODE --ca-dir DIR [--passphrase-file FILE] (--out DIR2 | --install) [--force]
                                                a certificate for NODE: node.crt, node.key, ca.crt into
                                                DIR2, or into this agent's TLS directory (--install)
       tandem cert show [--dir DIR]             the installed certificate (default: this agent's)
  The CA key's passphrase comes from --passphrase-file FILE (first line) or $TANDEM_CA_PASSPHRASE.
`;

export const CA_FILES = { cert: 'ca.crt', key: 'ca.key' } as const;

/** A failure that is not a usage mistake: printed as one line, exit status 1. */
class CertError extends Error {}

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${CERT_USAGE}`);
  }
}

/** The CA passphrase from --passphrase-file or TANDEM_CA_PASSPHRASE; a new one must be long enough. */
function passphrase(file: string | undefined, isNew: boolean): string {
  let value: string | undefined;
  let source: string;
  if (file !== undefined) {
    source = `--passphrase-file ${file}`;
    try {
      value = fs.readFileSync(file, 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new CertError(`cannot read the passphrase file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}`);
    }
  } else {
    source = 'TANDEM_CA_PASSPHRASE';
    value = process.env.TANDEM_CA_PASSPHRASE;
    if (value === undefined || value === '') {
      throw new UsageError('the CA key is kept encrypted and needs a passphrase: give it with --passphrase-file FILE or the TANDEM_CA_PASSPHRASE environment variable');
    }
  }
  if (!value) throw new UsageError(`the passphrase from ${source} is empty; the CA key needs a passphrase`);
  if (isNew && value.length < MIN_PASSPHRASE_LENGTH) {
    throw new UsageError(`the passphrase from ${source} is too short: use at least ${MIN_PASSPHRASE_LENGTH} characters for a new CA`);
  }
  return value;
}

/** Writes a file readable as `mode`, in full or not at all. */
function writeFileAtomic(file: string, data: string, mode: number, overwrite: boolean): void {
  if (!overwrite && fs.existsSync(file)) throw new CertError(`${file} already exists; not overwriting it`);
  try {
    writeAtomic(file, data, mode);
  } catch (err) {
    throw new CertError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

/** A directory only its owner can enter (like /etc/ssh for host keys), created if needed. */
function privateDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (err) {
    throw new CertError(`cannot create the directory ${dir}: ${(err as Error).message}`);
  }
}

async function caInit(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { dir: { type: 'string' }, 'passphrase-file': { type: 'string' } });
  if (!values.dir) throw new UsageError(`ca init needs --dir DIR (where the CA is kept: the console's machine, not a cluster node)\n\n${CERT_USAGE}`);
  if (positionals.length > 0) throw new UsageError(`ca init takes no arguments besides its options (got "${positionals.join(' ')}")`);
  const dir = values.dir;
  for (const f of Object.values(CA_FILES)) {
    if (fs.existsSync(path.join(dir, f))) {
      throw new CertError(`${path.join(dir, f)} already exists: ${dir} holds a CA already; a new CA would cut every node certified by it off the cluster. Use another --dir for a new cluster.`);
    }
  }
  const pass = passphrase(values['passphrase-file'], true);
  const ca = await createClusterCa();
  privateDir(dir);
  writeFileAtomic(path.join(dir, CA_FILES.key), encryptPrivateKey(ca.key, pass), 0o600, false);
  writeFileAtomic(path.join(dir, CA_FILES.cert), ca.certPem, 0o644, false);
  const s = summarizeCertificate(new crypto.X509Certificate(ca.certPem));
  process.stdout.write(`created the cluster CA in ${dir}: ${CA_FILES.cert} (${s.subject}, valid until ${s.validTo.toISOString().slice(0, 10)}), ${CA_FILES.key} (encrypted)
SHA-256 ${s.fingerprint}
Keep ${CA_FILES.key} and its passphrase safe: together they let anyone add nodes to the cluster.
Next, for each node: tandem cert issue NODE --ca-dir ${dir} --out DIR (or --install on the node itself)
`);
  return 0;
}

function loadCa(dir: string, pass: string): CertificateAuthority {
  if (!fs.existsSync(dir)) throw new CertError(`the CA directory ${dir} does not exist; create a cluster CA with: tandem ca init --dir ${dir}`);
  const read = (name: string) => {
    const file = path.join(dir, name);
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new CertError(`${file} is missing: ${dir} is not a CA directory made by "tandem ca init --dir ${dir}"`);
      if (code === 'EACCES') throw new CertError(`cannot read ${file}: permission denied (run as the user who created the CA)`);
      throw new CertError(`cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const certPem = read(CA_FILES.cert);
  const keyPem = read(CA_FILES.key);
  try {
    const cert = parseCertificate(certPem, path.join(dir, CA_FILES.cert));
    if (!cert.ca) throw new Error(`${path.join(dir, CA_FILES.cert)} is not a CA certificate`);
    const key = decryptPrivateKey(keyPem, pass, path.join(dir, CA_FILES.key));
    if (!cert.checkPrivateKey(key)) throw new Error(`${path.join(dir, CA_FILES.key)} is not the key of ${path.join(dir, CA_FILES.cert)}`);
    if (new Date(cert.validTo) < new Date()) throw new Error(`the cluster CA expired on ${new Date(cert.validTo).toISOString()}; every node needs certificates of a new CA`);
    return { certPem, key };
  } catch (err) {
    throw new CertError((err as Error).message);
  }
}

async function certIssue(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    'ca-dir': { type: 'string' }, 'passphrase-file': { type: 'string' }, out: { type: 'string' },
    install: { type: 'boolean', default: false }, force: { type: 'boolean', default: false },
  });
  const node = positionals[0];
  if (!node || positionals.length > 1) throw new UsageError(`cert issue needs exactly one NODE name (the node's --node name, its host name by default)\n\n${CERT_USAGE}`);
  const bad = nodeNameProblem(node);
  if (bad) throw new UsageError(bad);
  if (!values['ca-dir']) throw new UsageError(`cert issue needs --ca-dir DIR (the directory made by tandem ca init)\n\n${CERT_USAGE}`);
  if (Boolean(values.out) === values.install) throw new UsageError(`cert issue needs one of --out DIR (files to copy to the node) or --install (this node's agent)\n\n${CERT_USAGE}`);
  const pass = passphrase(values['passphrase-file'], false);
  const ca = loadCa(values['ca-dir'], pass);
  const out = values.out ?? agentPaths().tlsDir;
  const files = { cert: path.join(out, TLS_FILES.cert), key: path.join(out, TLS_FILES.key), ca: path.join(out, TLS_FILES.ca) };
  if (!values.force) {
    for (const f of Object.values(files)) {
      if (fs.existsSync(f)) throw new CertError(`${f} already exists; to replace the certificate in ${out} (renewal), add --force`);
    }
  }
  const issued = await issueNodeCertificate(ca, node);
  privateDir(out);
  // Key first: a crash in between leaves a key without its certificate, which the agent names.
  writeFileAtomic(files.key, privateKeyPem(issued.key), 0o600, true);
  writeFileAtomic(files.cert, issued.certPem, 0o644, true);
  writeFileAtomic(files.ca, ca.certPem, 0o644, true);
  const s = summarizeCertificate(new crypto.X509Certificate(issued.certPem));
  const where = values.install
    ? `installed for this agent; restart it (tandem-agent run) to use it, and run it as --node ${node}`
    : `copy the three files to ${node}'s TLS directory ($TANDEM_HOME/state/tls or /var/lib/tandem/tls, mode 0700), keeping node.key mode 0600`;
  process.stdout.write(`issued a certificate for node ${node}, valid until ${s.validTo.toISOString().slice(0, 10)}, SHA-256 ${s.fingerprint}
wrote ${files.cert}, ${files.key} (0600), ${files.ca}
${where}
`);
  return 0;
}

function certShow(argv: string[]): number {
  const { values, positionals } = parse(argv, { dir: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError(`cert show takes no arguments (got "${positionals.join(' ')}"); use --dir DIR for another directory`);
  const dir = values.dir ?? agentPaths().tlsDir;
  const file = path.join(dir, TLS_FILES.cert);
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CertError(`no certificate installed in ${dir}; issue one with: tandem cert issue NODE --ca-dir CA_DIR --install`);
    }
    throw new CertError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let s;
  try {
    s = summarizeCertificate(parseCertificate(pem, file));
  } catch (err) {
    throw new CertError((err as Error).message);
  }
  let status = 'usable: signed by the cluster CA in ca.crt, in its validity window, key matches';
  let code = 0;
  try {
    loadNodeCredentials(dir);
  } catch (err) {
    status = `NOT USABLE: ${(err as Error).message}`;
    code = 1;
  }
  process.stdout.write(`${file}
  node:        ${s.node ?? '(none: its CN is not among its DNS names)'}
  subject:     ${s.subject}
  issuer:      ${s.issuer}
  valid from:  ${s.validFrom.toISOString()}
  valid until: ${s.validTo.toISOString()} (${s.daysLeft >= 0 ? `${s.daysLeft} days left` : 'expired'})
  SHA-256:     ${s.fingerprint}
  status:      ${status}
`);
  return code;
}

/** `tandem ca …` and `tandem cert …`. */
export async function runCertificates(command: 'ca' | 'cert', argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  try {
    if (command === 'ca' && verb === 'init') return await caInit(rest);
    if (command === 'cert' && verb === 'issue') return await certIssue(rest);
    if (command === 'cert' && verb === 'show') return certShow(rest);
  } catch (err) {
    if (!(err instanceof CertError)) throw err;
    // Named as main.ts names the program for usage errors.
    const program = process.env.TANDEM_PROGRAM ?? path.basename(process.argv[1] ?? '').replace(/\.(c?js)$/, '');
    process.stderr.write(`${program === 'tandem' ? 'tandem' : 'tandem-agent'}: ${err.message}\n`);
    return 1;
  }
  if (verb === undefined || verb === 'help' || verb === '--help') {
    process.stdout.write(CERT_USAGE);
    return verb === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown command "${command} ${verb}"\n\n${CERT_USAGE}`);
}
