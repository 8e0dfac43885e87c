// `tandem ctl`: JSON-RPC on stdin/stdout, what the console runs over an SSH exec channel.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentLink } from '../../electron/backend/agent-link.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import { makeDisk, startAgent, type Agent } from '../helpers/agents.js';
import { AGENT_BUNDLE, run, tempDir } from '../helpers/tools.js';

const dir = tempDir('ctl');
let agent: Agent;

beforeAll(async () => {
  agent = await startAgent(path.join(dir, 'a'), 'alpha');
});
afterAll(async () => {
  await agent.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function ctl(home: string) {
  return spawn(process.execPath, [AGENT_BUNDLE, 'ctl'], { env: { ...process.env, TANDEM_HOME: home, TANDEM_PROGRAM: 'tandem' }, stdio: ['pipe', 'pipe', 'pipe'] });
}

describe('tandem ctl', () => {
  it('carries calls and pushed status both ways', async () => {
    const child = ctl(agent.home);
    const link = new AgentLink(child.stdout!, child.stdin!, 'alpha');
    expect(await link.call('agent.info', {})).toMatchObject({ node: 'alpha' });
    const seen: MirrorStatus[][] = [];
    await link.watch((_info, mirrors) => seen.push(mirrors), 200);
    await link.call('mirror.create', { tag: 'ctlvol', disk: makeDisk(path.join(dir, 'disk.img'), 8 << 20) });
    const deadline = Date.now() + 10_000;
    while (!seen.some((m) => m.some((x) => x.tag === 'ctlvol'))) {
      if (Date.now() > deadline) throw new Error(`no pushed status with the new mirror: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await expect(link.call('mirror.create', { tag: 'ctlvol', disk: '/dev/null', color: 'red' })).rejects.toThrow('mirror.create: unknown parameter "color"');
    link.close();
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
  });

  it('answers garbage with a JSON-RPC error and keeps serving', async () => {
    const child = ctl(agent.home);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stdin!.write('this is not json\n{"jsonrpc":"2.0","id":7,"method":"agent.info"}\n');
    const deadline = Date.now() + 10_000;
    while (!out.includes('"id":7')) {
      if (Date.now() > deadline) throw new Error(out);
      await new Promise((r) => setTimeout(r, 20));
    }
    child.stdin!.end();
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { id: unknown; error?: { message: string }; result?: { node: string } });
    expect(lines[0]!.error!.message).toBe('parse error: not JSON');
    expect(lines[1]!.result!.node).toBe('alpha');
  });

  it('without a running agent: exit 2 and says how to start it', async () => {
    const r = await run(process.execPath, [AGENT_BUNDLE, 'ctl'], { env: { ...process.env, TANDEM_HOME: path.join(dir, 'none'), TANDEM_PROGRAM: 'tandem' }, input: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`tandem ctl: no agent is running (nothing listening on ${path.join(dir, 'none', 'run', 'control.sock')}); start it with: tandem-agent run`);
  });
});
