// Replication is authenticated and encrypted: a source with a certificate of another cluster's CA, or one
// speaking plain TCP, is refused before any data moves, and the target's disk is unchanged.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClusterCa } from '../../common/pki.js';
import { makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { makeRandomFile, sha256File, tempDir, AGENT_BUNDLE, run } from '../helpers/tools.js';

const SIZE = 8 * 1024 * 1024;

describe('replication peers must hold a certificate of the cluster', () => {
  let dir: string;
  let eve: Agent;
  let eveDisk: string;
  let original: string;
  const others: Agent[] = [];

  beforeAll(async () => {
    dir = tempDir('tls-peers');
    eveDisk = makeDisk(path.join(dir, 'eve.img'), SIZE);
    makeRandomFile(eveDisk, SIZE, 7);
    original = sha256File(eveDisk);
    eve = await startAgent(path.join(dir, 'eve'), 'eve');
    await tandemOk(eve, 'accept', 'vol', '--disk', eveDisk);
  });

  afterAll(async () => {
    for (const a of [...others, eve]) await a?.kill9();
  });

  async function sourceTowardsEve(name: string, security: Parameters<typeof startAgent>[4]): Promise<Agent> {
    const a = await startAgent(path.join(dir, name), 'adam', undefined, {}, security);
    others.push(a);
    const disk = makeDisk(path.join(dir, `${name}.img`), SIZE);
    makeRandomFile(disk, SIZE, 3);
    await tandemOk(a, 'create', 'vol', '--disk', disk);
    await tandemOk(a, 'extend', 'vol', '--target', 'eve', '--address', eve.address);
    return a;
  }

  it('a source whose certificate is of another CA is refused in the handshake; nothing is written', async () => {
    const mallory = await sourceTowardsEve('other-ca', { security: await createClusterCa() });
    const st = await waitTargets(mallory, 'vol', (t) => /cannot connect to eve/.test(t.lastError), 20_000);
    expect(st.targets[0]!.lastError).toMatch(/not from this cluster's CA|refused this node's certificate/);
    expect(st.targets[0]!.resyncBytes).toBe(0);
    expect(sha256File(eveDisk)).toBe(original);
    await mallory.kill9();
  });

  it('a plain-TCP source (--insecure-plaintext) is refused; nothing is written', async () => {
    const plain = await sourceTowardsEve('plain', { security: 'plaintext' });
    const refused = await waitTargets(plain, 'vol', (t) => t.lastError !== '', 20_000);
    expect(refused.targets[0]!.lastError).toContain('closed the connection before accepting it (this agent replicates over plain TCP, --insecure-plaintext; the target may require TLS)');
    await new Promise((r) => setTimeout(r, 1_000));
    const st = await plain.status('vol');
    expect(st.targets[0]!.status).toBe('Out Of Sync');
    expect(st.targets[0]!.resyncBytes).toBe(0);
    expect(eve.log()).toMatch(/refused a replication connection .* the peer does not speak TLS/);
    expect(sha256File(eveDisk)).toBe(original);
    await plain.kill9();
  });

  it('an agent without a certificate does not start, and says how to get one', async () => {
    const home = path.join(dir, 'bare');
    fs.mkdirSync(home, { recursive: true });
    const r = await run(process.execPath, [AGENT_BUNDLE, 'run', '--node', 'bare', '--replication', '127.0.0.1:0'], { env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: '' }, timeoutMs: 20_000 });
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain(`no certificate installed in ${path.join(home, 'state', 'tls')}`);
    expect(r.stderr + r.stdout).toContain('tandem cert issue NODE --ca-dir CA_DIR --install');
  });
});
