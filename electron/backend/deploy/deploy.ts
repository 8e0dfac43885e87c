// Installs or upgrades the agent on one node over SSH, step by step with progress: check the OS and
// Node.js, upload the bundle over SFTP to a temporary name, verify its sha256, move it into place,
// install the CLIs and the service (systemd, or a fallback script), issue the node's certificate,
// start, and check the running version. A failure before the rename leaves the installed agent as it
// was; state under /var/lib/tandem is never touched except the TLS folder; disks never.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { DeployProgress, DeployStepName } from '../../../common/console-api.js';
import { agentLayout, INSTALL_DIR } from '../../../common/agent-layout.js';
import { issueNodeCertificate, privateKeyPem, type CertificateAuthority } from '../../../common/pki.js';
import type { SshSession } from '../ssh/types.js';
import {
  AGENT_PATH, agentWrapper, BIN_DIR, fallbackServiceScript, LINK_DIR, MIN_NODE_MAJOR, parseNodeVersion, SERVICE_SCRIPT, sq, systemdUnit,
  UNIT_PATH, UPLOAD_PATH, wrapperPrograms, wrapperScript, writeFileCommand,
} from './node-files.js';

export interface AgentManifest {
  file: string;
  version: string;
  sha256: string;
  size: number;
}

export interface DeployOptions {
  node: string;
  session: SshSession;
  bundleFile: string;
  manifest: AgentManifest;
  /** The cluster CA: its certificate if it exists, and the authority (asks for the key's passphrase) only when a certificate must be issued. */
  ca: { certPem(): string | null; authority(): Promise<CertificateAuthority> };
  progress: (p: DeployProgress) => void;
  /** How long to wait for the started agent to answer (default 30 s). */
  startTimeoutMs?: number;
}

export class DeployError extends Error {
  constructor(readonly step: DeployStepName, message: string) {
    super(message);
  }
}

const STATE = agentLayout(undefined);

export async function deployAgent(o: DeployOptions): Promise<{ version: string; systemd: boolean }> {
  const { session, node } = o;
  const report = (step: DeployStepName, state: DeployProgress['state'], message: string, extra: Partial<DeployProgress> = {}) =>
    o.progress({ server: node, step, state, message, ...extra });
  const step = async <T>(name: DeployStepName, running: string, work: () => Promise<[T, string]>): Promise<T> => {
    report(name, 'running', running);
    try {
      const [value, done] = await work();
      report(name, 'done', done);
      return value;
    } catch (err) {
      report(name, 'failed', (err as Error).message);
      throw err instanceof DeployError ? err : new DeployError(name, (err as Error).message);
    }
  };
  const root = async (command: string, what: string, timeoutMs = 60_000) => {
    const r = await session.run(command, { sudo: true, timeoutMs });
    if (r.code !== 0) throw new Error(`${what} failed on ${node} (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
    return r.stdout;
  };

  // The bundle the console holds must be the one the build described; otherwise the upload check is moot.
  const local = fs.readFileSync(o.bundleFile);
  const localHash = crypto.createHash('sha256').update(local).digest('hex');

  await step('check-os', `checking the operating system of ${node}`, async () => {
    const out = await root('uname -sm; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || echo unknown', 'checking the OS');
    const [uname = '', pretty = 'unknown'] = out.trim().split('\n');
    if (!uname.startsWith('Linux')) throw new Error(`${node} runs ${uname || 'an unknown system'}; the Tandem agent needs Linux`);
    return [undefined, `${pretty.trim()} (${uname.trim()})`];
  });

  await step('check-node', 'checking Node.js', async () => {
    const out = (await root('if command -v node >/dev/null 2>&1; then node --version 2>&1 || echo "CANNOT RUN"; else echo MISSING; fi', 'checking Node.js')).trim();
    const version = parseNodeVersion(out);
    const install = `the agent needs Node.js ${MIN_NODE_MAJOR} or newer. Install it on the node (Debian/Ubuntu: apt-get install nodejs; RHEL/Rocky: dnf install nodejs), then deploy again`;
    if (out === 'MISSING') throw new Error(`Node.js is not installed on ${node}; ${install}`);
    if (!version) throw new Error(`Node.js on ${node} cannot run (node --version said: ${out.split('\n').slice(0, 2).join(' ')}); ${install}`);
    if (version[0] < MIN_NODE_MAJOR) throw new Error(`${node} has Node.js ${out}; the agent needs ${MIN_NODE_MAJOR} or newer: upgrade it on the node, then deploy again`);
    return [undefined, `Node.js ${out.trim()}`];
  });

  await step('upload', `uploading the agent (${o.manifest.size} bytes)`, async () => {
    await root(`mkdir -p ${BIN_DIR} && chmod 755 ${INSTALL_DIR} && rm -f ${UPLOAD_PATH}`, 'preparing /opt/tandem');
    const sftp = await session.sftp();
    const isRoot = session.settings.user === 'root';
    // A non-root login cannot write /opt/tandem: it uploads to its home and sudo moves the file in.
    const staging = isRoot ? UPLOAD_PATH : `.tandem-agent-upload-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await new Promise<void>((resolve, reject) => {
        sftp.fastPut(o.bundleFile, staging, {
          step: (done: number, _chunk: number, total: number) => report('upload', 'running', `uploading the agent`, { done, total }),
        }, (err) => (err ? reject(err) : resolve()));
      });
      if (!isRoot) await root(`install -m 0644 ${sq(staging)} ${UPLOAD_PATH}; rc=$?; rm -f ${sq(staging)}; exit $rc`, 'moving the upload into /opt/tandem');
    } catch (err) {
      await session.run(`rm -f ${UPLOAD_PATH}`, { sudo: true }).catch(() => undefined);
      if (!isRoot) await session.run(`rm -f ${sq(staging)}`).catch(() => undefined);
      const msg = (err as Error).message;
      const full = /no space|ENOSPC|quota|Failure/i.test(msg);
      throw new Error(full
        ? `the upload to ${node} failed: no space left in ${INSTALL_DIR} (${msg}); free space on the node, then deploy again. Nothing was installed`
        : `the upload to ${node} failed: ${msg}. Nothing was installed`, { cause: err });
    } finally {
      sftp.end();
    }
    return [undefined, `uploaded ${o.manifest.size} bytes`];
  });

  await step('verify', 'verifying the upload (sha256)', async () => {
    const out = await root(`sha256sum ${UPLOAD_PATH}`, 'hashing the upload');
    const remote = out.trim().split(/\s+/)[0];
    if (remote !== o.manifest.sha256 || localHash !== o.manifest.sha256) {
      await session.run(`rm -f ${UPLOAD_PATH}`, { sudo: true }).catch(() => undefined);
      throw new Error(`the agent uploaded to ${node} is corrupted: sha256 ${remote}, expected ${o.manifest.sha256}${localHash !== o.manifest.sha256 ? ` (the console's own copy ${o.bundleFile} does not match its manifest either: rebuild with npm run build)` : ''}; it was removed and nothing was installed. Deploy again`);
    }
    return [undefined, `sha256 ${remote.slice(0, 16)}… matches`];
  });

  const systemd = await step('install', 'installing the agent, the CLIs and the service', async () => {
    const hasSystemd = (await session.run('[ -d /run/systemd/system ] && command -v systemctl >/dev/null', { sudo: true })).code === 0;
    const files = [
      ...wrapperPrograms().map((p) => writeFileCommand(`${BIN_DIR}/${p}`, p === 'tandem-agent' ? agentWrapper() : wrapperScript(p), '0755')),
      hasSystemd ? writeFileCommand(UNIT_PATH, systemdUnit(node), '0644') : writeFileCommand(SERVICE_SCRIPT, fallbackServiceScript(node), '0755'),
    ];
    const links = wrapperPrograms().map((p) => `ln -sfn ${BIN_DIR}/${p} ${LINK_DIR}/${p}`);
    // The rename is the moment the new agent replaces the old one; everything before it can fail harmlessly.
    await root([`chmod 0755 ${UPLOAD_PATH}`, `mv -f ${UPLOAD_PATH} ${AGENT_PATH}`, ...files, `mkdir -p ${LINK_DIR}`, ...links].join(' && '), 'installing');
    return [hasSystemd, hasSystemd ? `installed ${AGENT_PATH}, CLIs in ${LINK_DIR}, ${UNIT_PATH}` : `installed ${AGENT_PATH}, CLIs in ${LINK_DIR}, ${SERVICE_SCRIPT} (no systemd on this node)`];
  });

  await step('certificate', 'checking the node certificate', async () => {
    const tls = STATE.tlsDir;
    const caCert = o.ca.certPem();
    const current = await session.run(`cat ${tls}/ca.crt 2>/dev/null; echo ----; openssl x509 -noout -subject -enddate -in ${tls}/node.crt 2>/dev/null`, { sudo: true });
    const [caOnNode = '', certInfo = ''] = current.stdout.split('----\n');
    const sameCa = caCert !== null && caOnNode.trim() === caCert.trim();
    const endDate = /notAfter=(.*)/.exec(certInfo)?.[1];
    const validLongEnough = endDate ? new Date(endDate).getTime() - Date.now() > 30 * 86400_000 : false;
    if (sameCa && certInfo.includes(`CN = ${node}`) && validLongEnough) return [undefined, `the node already has a certificate of this cluster (valid until ${endDate})`];
    const ca = await o.ca.authority();
    const issued = await issueNodeCertificate(ca, node);
    await root([
      `mkdir -p ${tls} && chmod 700 ${STATE.stateDir} ${tls}`,
      writeFileCommand(`${tls}/node.key`, privateKeyPem(issued.key), '0600'),
      writeFileCommand(`${tls}/node.crt`, issued.certPem, '0644'),
      writeFileCommand(`${tls}/ca.crt`, ca.certPem, '0644'),
    ].join(' && '), 'installing the certificate');
    return [undefined, `issued and installed a certificate for ${node}`];
  });

  await step('start', 'starting the agent', async () => {
    if (systemd) await root(`systemctl daemon-reload && systemctl enable tandem-agent >/dev/null 2>&1; systemctl restart tandem-agent`, 'starting the service');
    else await root(`${SERVICE_SCRIPT} restart`, 'starting the agent');
    return [undefined, systemd ? 'systemctl restart tandem-agent' : `${SERVICE_SCRIPT} restart`];
  });

  const version = await step('check-version', 'waiting for the agent to answer', async () => {
    const deadline = Date.now() + (o.startTimeoutMs ?? 30_000);
    for (;;) {
      const r = await session.run(`echo '{"jsonrpc":"2.0","id":1,"method":"agent.info"}' | ${BIN_DIR}/tandem ctl`, { sudo: true, timeoutMs: 15_000 });
      const line = r.stdout.trim().split('\n')[0] ?? '';
      try {
        const info = (JSON.parse(line) as { result?: { version: string; node: string } }).result;
        if (info) {
          if (info.version !== o.manifest.version) throw new Error(`the agent on ${node} reports version ${info.version}, expected ${o.manifest.version}`);
          if (info.node !== node) throw new Error(`the agent on ${node} calls itself "${info.node}"`);
          return [info.version, `tandem-agent ${info.version} running as ${info.node}`];
        }
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
      }
      const last = (r.stderr || r.stdout).trim();
      if (Date.now() > deadline) {
        const log = systemd ? 'journalctl -u tandem-agent' : (await session.run(`tail -n 20 /var/log/tandem-agent.log`, { sudo: true })).stdout;
        throw new Error(`the agent on ${node} did not start: ${last}\n${systemd ? `see: ${log}` : log}`);
      }
      await new Promise((r2) => setTimeout(r2, 500));
    }
  });
  return { version, systemd };
}

/** Removes the agent and its service; keeps /var/lib/tandem (mirrors, bitmaps, certificates) and every disk. */
export async function uninstallAgent(session: SshSession, node: string): Promise<void> {
  const script = [
    'if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then systemctl disable --now tandem-agent >/dev/null 2>&1; rm -f ' + UNIT_PATH + '; systemctl daemon-reload; fi',
    `[ -x ${SERVICE_SCRIPT} ] && ${SERVICE_SCRIPT} stop`,
    ...wrapperPrograms().map((p) => `[ "$(readlink ${LINK_DIR}/${p})" = ${BIN_DIR}/${p} ] && rm -f ${LINK_DIR}/${p}`),
    // Contents first: /opt/tandem may be a mount point.
    `rm -rf ${INSTALL_DIR}/* ${INSTALL_DIR}/.[!.]*`, `rmdir ${INSTALL_DIR} 2>/dev/null`,
    'true',
  ].join('; ');
  const r = await session.run(script, { sudo: true, timeoutMs: 90_000 });
  if (r.code !== 0) throw new Error(`uninstalling the agent on ${node} failed (exit ${r.code}): ${r.stderr.trim()}`);
}
