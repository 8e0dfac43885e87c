// A real OpenSSH server for tests, with its own users, host key, sudoers and log, that changes nothing
// on the machine: sshd runs in its own mount namespace where copies of /etc/passwd, /etc/shadow,
// /etc/group, /etc/sudoers and /etc/pam.d/sshd are bind-mounted over the real ones (and any further
// directories the caller asks for, e.g. a node's /var/lib/tandem). Optionally inside a network namespace.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface SshdUser {
  name: string;
  /** Password for password and keyboard-interactive logins; none = key only. */
  password?: string;
  /** OpenSSH public key lines allowed to log in. */
  authorizedKeys?: string[];
  /** 'password': sudo asks for the user's password; 'nopasswd': it does not; undefined: no sudo. */
  sudo?: 'password' | 'nopasswd';
}

export interface SshdOptions {
  /** Working directory for config, keys, copies of /etc files and the log (created). */
  dir: string;
  listenAddress?: string; // default 127.0.0.1
  port?: number; // default: a free port on the listen address (host namespace only) or 22
  /** Run inside this network namespace (ip netns exec). */
  netns?: string;
  /** Extra users (root is always there; give root authorized keys with a user named "root"). */
  users?: SshdUser[];
  /** Directories bind-mounted in sshd's mount namespace, so sessions see them: [source, target]. */
  binds?: Array<[string, string]>;
  /** Shell commands run in the mount namespace before sshd starts (after the binds). */
  setup?: string[];
  /** Extra sshd_config lines. */
  config?: string[];
  /** Give sshd its own UTS namespace with this host name (sessions see it as `hostname`). */
  hostname?: string;
  /** sshd's LogLevel (default VERBOSE); DEBUG1 also logs e.g. the signature algorithm of a public key. */
  logLevel?: 'QUIET' | 'FATAL' | 'ERROR' | 'INFO' | 'VERBOSE' | 'DEBUG1' | 'DEBUG2' | 'DEBUG3';
  /** Use a copy of this private host key (and its .pub) instead of a new one, e.g. another sshd's hostKeyFile to
   *  "restart" a server on the same port with the same identity. */
  hostKeyFrom?: string;
}

export interface Sshd {
  address: string;
  port: number;
  /** "ssh-ed25519 AAAA…" */
  hostKeyPublic: string;
  /** "SHA256:…" as ssh-keygen -l prints it. */
  hostKeyFingerprint: string;
  logFile: string;
  /** The listening sshd's process id (its namespaces are the ones sessions get). */
  pid(): number;
  /** The private host key file (see SshdOptions.hostKeyFrom). */
  hostKeyFile: string;
  /** sshd's log so far. */
  log(): string;
  /** Replaces the host key with a new one and restarts sshd (a "changed host key"). */
  rotateHostKey(): Promise<void>;
  /** Stops the listener and ends every session it started (their clients see the connection drop). */
  stop(): Promise<void>;
}

const FIRST_UID = 61000;

export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function sha512Crypt(password: string): string {
  return execFileSync('openssl', ['passwd', '-6', '-stdin'], { input: password }).toString().trim();
}

export function fingerprintOfPublicKey(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return 'SHA256:' + crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

function writeEtcCopies(dir: string, users: SshdUser[]): void {
  const etc = path.join(dir, 'etc');
  fs.mkdirSync(etc, { recursive: true });
  let passwd = fs.readFileSync('/etc/passwd', 'utf8');
  let group = fs.readFileSync('/etc/group', 'utf8');
  let shadow = fs.readFileSync('/etc/shadow', 'utf8');
  let sudoers = 'Defaults env_reset\nDefaults !lecture\nDefaults passwd_tries=1\nroot ALL=(ALL:ALL) ALL\n';
  users.forEach((u, i) => {
    const hash = u.password ? sha512Crypt(u.password) : '*';
    if (u.name === 'root') {
      shadow = shadow.replace(/^root:[^:]*:/m, `root:${hash}:`);
    } else {
      const uid = FIRST_UID + i;
      const home = path.join(dir, 'home', u.name);
      fs.mkdirSync(home, { recursive: true });
      fs.chownSync(home, uid, uid);
      passwd += `${u.name}:x:${uid}:${uid}::${home}:/bin/bash\n`;
      group += `${u.name}:x:${uid}:\n`;
      shadow += `${u.name}:${hash}:19000:0:99999:7:::\n`;
    }
    if (u.sudo) sudoers += `${u.name} ALL=(ALL:ALL) ${u.sudo === 'nopasswd' ? 'NOPASSWD: ' : ''}ALL\n`;
  });
  fs.writeFileSync(path.join(etc, 'passwd'), passwd, { mode: 0o644 });
  fs.writeFileSync(path.join(etc, 'group'), group, { mode: 0o644 });
  fs.writeFileSync(path.join(etc, 'shadow'), shadow, { mode: 0o640 });
  fs.writeFileSync(path.join(etc, 'sudoers'), sudoers, { mode: 0o440 });
  // Containers have no audit login uid: pam_loginuid would fail every session.
  const pam = fs.readFileSync('/etc/pam.d/sshd', 'utf8').replace(/^session\s+required\s+pam_loginuid\.so.*$/m, '');
  fs.writeFileSync(path.join(etc, 'pam.sshd'), pam, { mode: 0o644 });
}

function writeAuthorizedKeys(dir: string, users: SshdUser[]): string {
  const keysDir = path.join(dir, 'authorized_keys');
  fs.mkdirSync(keysDir, { recursive: true });
  for (const u of users) fs.writeFileSync(path.join(keysDir, u.name), (u.authorizedKeys ?? []).join('\n') + '\n', { mode: 0o644 });
  return keysDir;
}

function newHostKey(dir: string, from?: string): string {
  const key = path.join(dir, 'ssh_host_ed25519_key');
  fs.rmSync(key, { force: true });
  fs.rmSync(key + '.pub', { force: true });
  if (from) {
    fs.copyFileSync(from, key);
    fs.chmodSync(key, 0o600); // sshd refuses a group/world-readable host key
    fs.copyFileSync(from + '.pub', key + '.pub');
  } else {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tandem-lab-host', '-f', key]);
  }
  return key;
}

/** The direct children of a process (sshd's per-connection processes), from /proc. */
function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may contain spaces and parentheses: the fields start after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export async function startSshd(options: SshdOptions): Promise<Sshd> {
  const dir = path.resolve(options.dir);
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  const address = options.listenAddress ?? '127.0.0.1';
  const port = options.port ?? (options.netns ? 22 : await freePort(address));
  const users = options.users ?? [];
  writeEtcCopies(dir, users);
  const keysDir = writeAuthorizedKeys(dir, users);
  const hostKey = newHostKey(dir, options.hostKeyFrom);
  const logFile = path.join(dir, 'sshd.log');
  const configFile = path.join(dir, 'sshd_config');
  fs.writeFileSync(configFile, [
    `Port ${port}`,
    `ListenAddress ${address}`,
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${keysDir}/%u`,
    'StrictModes no',
    'PermitRootLogin yes',
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'KbdInteractiveAuthentication yes',
    'UsePAM yes',
    'AllowTcpForwarding yes',
    `LogLevel ${options.logLevel ?? 'VERBOSE'}`,
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
    ...(options.config ?? []),
    '',
  ].join('\n'));

  const binds: Array<[string, string]> = [
    [path.join(dir, 'etc', 'passwd'), '/etc/passwd'],
    [path.join(dir, 'etc', 'group'), '/etc/group'],
    [path.join(dir, 'etc', 'shadow'), '/etc/shadow'],
    [path.join(dir, 'etc', 'sudoers'), '/etc/sudoers'],
    [path.join(dir, 'etc', 'pam.sshd'), '/etc/pam.d/sshd'],
    ...(options.binds ?? []),
  ];
  const script = [
    'set -e',
    ...binds.map(([src, dst]) => `mkdir -p ${shellQuote(dst)} 2>/dev/null || true; mount --bind ${shellQuote(src)} ${shellQuote(dst)}`),
    ...(options.hostname ? [`hostname ${shellQuote(options.hostname)}`] : []),
    ...(options.setup ?? []),
    `exec /usr/sbin/sshd -D -f ${shellQuote(configFile)} -E ${shellQuote(logFile)}`,
  ].join('\n');

  let child: ChildProcess | null = null;
  const launch = async (): Promise<void> => {
    const args = ['--mount', ...(options.hostname ? ['--uts'] : []), '--propagation', 'private', 'sh', '-c', script];
    child = options.netns ? spawn('ip', ['netns', 'exec', options.netns, 'unshare', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('unshare', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // The log is appended to: only a "listening" line written by this sshd counts (the directory may be reused).
    const logStart = fs.existsSync(logFile) ? fs.statSync(logFile).size : 0;
    const newLog = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile).subarray(logStart).toString() : '');
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${stderr}${newLog()}`);
      if (/Server listening on/.test(newLog())) return;
      if (Date.now() > deadline) throw new Error(`sshd did not start within 10 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stopListener = async (): Promise<number[]> => {
    const c = child as ChildProcess | null;
    if (!c || c.exitCode !== null || c.signalCode) return [];
    // unshare and sh exec into sshd, so the child is the listener and its children are the sessions.
    const sessions = c.pid ? childPids(c.pid) : [];
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    if (c.exitCode === null && !c.signalCode) c.kill('SIGKILL');
    return sessions;
  };
  const stop = async (): Promise<void> => {
    // sshd leaves running sessions alone when the listener stops; a stopped test server must not.
    for (const pid of await stopListener()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  await launch();
  const publicKeyOf = (): string => fs.readFileSync(hostKey + '.pub', 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const sshd: Sshd = {
    address,
    port,
    hostKeyPublic: publicKeyOf(),
    hostKeyFingerprint: fingerprintOfPublicKey(publicKeyOf()),
    logFile,
    pid: () => {
      // ip netns exec, unshare and sh each exec the next program, so the child is sshd itself.
      const c = child as ChildProcess | null;
      if (!c?.pid) throw new Error('sshd is not running');
      return c.pid;
    },
    log: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    hostKeyFile: hostKey,
    rotateHostKey: async () => {
      await stopListener();
      newHostKey(dir);
      fs.rmSync(logFile, { force: true });
      await launch();
      sshd.hostKeyPublic = publicKeyOf();
      sshd.hostKeyFingerprint = fingerprintOfPublicKey(sshd.hostKeyPublic);
    },
    stop,
  };
  return sshd;
}
