// The local lab: agents as child processes of the console on loopback, each with its own TANDEM_HOME
// and file-backed disks — every feature, no cluster needed. It persists under the console's data folder
// (disks, mirrors, ports), so reopening it finds the mirrors where they were.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { agentLayout } from '../../common/agent-layout.js';
import { writeFileAtomic } from '../../common/atomic-file.js';
import { createClusterCa, issueNodeCertificate, privateKeyPem } from '../../common/pki.js';
import { AgentLink } from './agent-link.js';

export const LAB_DISKS_PER_NODE = 2;
export const LAB_DISK_BYTES = 256 * 1024 * 1024;

export interface LocalLabNode {
  name: string;
  home: string;
  /** host:port the agent replicates on (127.0.0.1). */
  replication: string;
  disks: string[];
  link: AgentLink;
  /** The agent's output so far (for the Output Panel and errors). */
  log(): string;
}

interface LabFile {
  ports: Record<string, number>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function connectSocket(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

export class LocalLab {
  private readonly children = new Map<string, ChildProcess>();
  nodes: LocalLabNode[] = [];

  constructor(
    /** The lab's folder (in the console's data folder). */
    readonly dir: string,
    /** The built agent (resources/agent/tandem-agent.cjs). */
    private readonly agentBundle: string,
    private readonly nodeBinary = process.execPath,
  ) {}

  async start(count: number): Promise<LocalLabNode[]> {
    if (!fs.existsSync(this.agentBundle)) throw new Error(`the agent bundle ${this.agentBundle} is missing; run: npm run build`);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const labFile = path.join(this.dir, 'lab.json');
    const saved: LabFile = fs.existsSync(labFile) ? (JSON.parse(fs.readFileSync(labFile, 'utf8')) as LabFile) : { ports: {} };
    const names = Array.from({ length: count }, (_, i) => `node${i + 1}`);
    for (const n of names) saved.ports[n] ??= await freePort();
    writeFileAtomic(labFile, JSON.stringify(saved, null, 2) + '\n', 0o600);
    // A fresh CA each time the lab opens, kept only in memory: no CA key is ever written, and every
    // node gets a new certificate of it (the agents read their certificates at start).
    const ca = await createClusterCa();
    try {
      for (const name of names) this.nodes.push(await this.startNode(name, saved.ports[name] as number, ca));
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this.nodes;
  }

  private async startNode(name: string, port: number, ca: Awaited<ReturnType<typeof createClusterCa>>): Promise<LocalLabNode> {
    const home = path.join(this.dir, name);
    const layout = agentLayout(home);
    fs.mkdirSync(layout.tlsDir, { recursive: true, mode: 0o700 });
    const issued = await issueNodeCertificate(ca, name);
    writeFileAtomic(path.join(layout.tlsDir, 'node.key'), privateKeyPem(issued.key), 0o600);
    writeFileAtomic(path.join(layout.tlsDir, 'node.crt'), issued.certPem, 0o644);
    writeFileAtomic(path.join(layout.tlsDir, 'ca.crt'), ca.certPem, 0o644);
    const diskDir = path.join(home, 'disks');
    fs.mkdirSync(diskDir, { recursive: true });
    const disks: string[] = [];
    for (let i = 1; i <= LAB_DISKS_PER_NODE; i++) {
      const disk = path.join(diskDir, `disk${i}.img`);
      if (!fs.existsSync(disk)) {
        const fd = fs.openSync(disk, 'wx', 0o600);
        fs.ftruncateSync(fd, LAB_DISK_BYTES); // sparse
        fs.closeSync(fd);
      }
      disks.push(disk);
    }
    const replication = `127.0.0.1:${port}`;
    const child = spawn(this.nodeBinary, [this.agentBundle, 'run', '--node', name, '--replication', replication], {
      env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: '', TANDEM_DISKS_DIR: diskDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.set(name, child);
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString()).slice(-64 * 1024);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the lab agent ${name} did not start within 20 s:\n${output}`)), 20_000);
      const check = () => {
        if (output.includes(' running: ')) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the lab agent ${name} exited (${code}):\n${output}`));
      });
    });
    const socket = await connectSocket(layout.controlSocket);
    return { name, home, replication, disks, link: new AgentLink(socket, socket, name), log: () => output };
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) n.link.close();
    await Promise.all([...this.children.values()].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode) return resolve();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    })));
    this.children.clear();
    this.nodes = [];
  }
}
