// The manager loop with a fake clock and fake daemon actions: it fails over only once every path is
// silent, waits for the fence command, goes through Confirm Failover, and never repeats a failover
// it already tried for the same failed server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterManager, type ClusterActions } from '../../agent/cluster/manager.js';
import { CommPaths } from '../../agent/cluster/commpaths.js';
import { resolveSettings } from '../../agent/cluster/settings.js';
import type { Heartbeat, MirrorBeat } from '../../agent/cluster/heartbeat-wire.js';
import type { Logger } from '../../agent/log.js';
import type { Timers } from '../../agent/cluster/successor.js';

const tag = 'datarep-ext3';
const lines: string[] = [];
const log: Logger = { debug: () => undefined, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), child: () => log };

class FakeTimers implements Timers {
  t = 1_000_000;
  private q: Array<{ at: number; f: () => void; id: number }> = [];
  private n = 0;
  now = () => this.t;
  setTimeout = (f: () => void, ms: number) => {
    this.q.push({ at: this.t + ms, f, id: ++this.n });
    return this.n;
  };
  clearTimeout = (h: unknown) => {
    this.q = this.q.filter((x) => x.id !== h);
  };
  advance(ms: number): void {
    this.t += ms;
    for (const x of this.q.filter((y) => y.at <= this.t)) {
      this.clearTimeout(x.id);
      x.f();
    }
  }
}

const mine: MirrorBeat = { tag, role: 'target', inService: false, generation: 'g1', history: [], consistent: true, connected: null, lostSourceInSync: true, source: 'n1', members: ['n1', 'n2', 'n3'], targets: [] };
const srcBeat: MirrorBeat = { ...mine, role: 'source', inService: true, lostSourceInSync: false, source: null, targets: [{ node: 'n2', status: 'Fully Operational', percentSynced: 100 }, { node: 'n3', status: 'Fully Operational', percentSynced: 100 }] };
const hb = (node: string, mirrors: MirrorBeat[]): Heartbeat => ({ v: 1, node, seq: 0, stopping: false, mirrors });
const P = '127.0.0.1/127.0.0.1';

function setup(env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-manager-'));
  const paths = CommPaths.in(dir);
  paths.add('n2', 'n1', '127.0.0.1', '127.0.0.1:7001');
  paths.add('n2', 'n3', '127.0.0.1', '127.0.0.1:7003');
  const timers = new FakeTimers();
  const calls: string[] = [];
  const actions: ClusterActions = {
    hierarchies: () => [mine],
    resourceDatabase: () => null,
    goInService: async (t, failed) => {
      calls.push(`in service ${t} from ${failed}`);
      return `${t} in service on n2`;
    },
    goOutOfService: async (t) => {
      calls.push(`out of service ${t}`);
      return 'osu';
    },
  };
  const settings = resolveSettings(null, 'tandem.conf', { LCMHBEATTIME: '1', LCMNUMHBEATS: '3', ...env });
  const m = new ClusterManager({ node: 'n2', settings, creds: null, commPaths: paths, actions, log, timers });
  m.applyPeers();
  /** One second: beats from the servers still alive, then a round. */
  const second = (alive: string[]) => {
    timers.advance(1000);
    for (const n of alive) m.received(hb(n, n === 'n1' ? [srcBeat] : [{ ...mine, connected: 'n1' }]), P);
    m.round();
  };
  return { m, timers, calls, second };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('cluster manager loop', () => {
  it('fails over only after three silent beats, once; a failed server seen again may be decided anew', async () => {
    const { m, calls, second } = setup();
    second(['n1', 'n3']);
    second(['n3']);
    second(['n3']);
    await settle();
    expect(calls).toEqual([]);
    second(['n3']);
    second(['n3']);
    await settle();
    expect(calls).toEqual([`in service ${tag} from n1`]);
    expect(m.status().servers.find((s) => s.name === 'n1')?.state).toBe('failed');
    second(['n3']);
    await settle();
    expect(calls).toHaveLength(1);
    // n1 is heard again, then silent again: a new failure, decided anew.
    second(['n1', 'n3']);
    for (let i = 0; i < 4; i++) second(['n3']);
    await settle();
    expect(calls).toEqual([`in service ${tag} from n1`, `in service ${tag} from n1`]);
    expect(lines.some((l) => l.startsWith(`cluster decision for ${tag}: in service: n1 failed; quorate (2 of 3 servers, 2 needed)`))).toBe(true);
  });

  it('FENCE_CMD: a fence that fails stops the failover, with the reason; one that succeeds lets it go on', async () => {
    const bad = setup({ FENCE_CMD: 'exit 3; :' });
    for (let i = 0; i < 5; i++) bad.second(['n3']);
    for (let i = 0; i < 100 && !bad.m.status().decisions[0]?.reason.includes('fence'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(bad.calls).toEqual([]);
    expect(bad.m.status().decisions[0]!.reason).toMatch(/^n1 failed; the fence command failed \(exit 3; : n1 exited 3\): no failover of datarep-ext3 until n1 is fenced$/);
    const good = setup({ FENCE_CMD: 'test n1 =' });
    for (let i = 0; i < 5; i++) good.second(['n3']);
    for (let i = 0; i < 100 && good.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(good.calls).toEqual([`in service ${tag} from n1`]);
  });

  it('Confirm Failover: pending with the time left; CONFIRMSOTO expiry applies CONFIRMSODEF=1 (block)', async () => {
    const { m, calls, second, timers } = setup({ CONFIRMSOTO: '30', CONFIRMSODEF: '1' });
    (m as unknown as { o: { actions: ClusterActions } }).o.actions.resourceDatabase = () => ({ version: 1, resources: [], flags: [{ server: 'n2', confirmFailoverFrom: ['n1'], blockResourceFailover: false }] });
    // n1 never beat: failed 3 s after its path was added (third round), at the gate one beat later.
    for (let i = 0; i < 5; i++) second(['n3']);
    expect(m.status().pending).toEqual([{ tag, failed: 'n1', deadline: expect.any(Number), secondsLeft: 29 }]);
    timers.advance(10_000);
    expect(m.status().pending[0]!.secondsLeft).toBe(19);
    timers.advance(20_000);
    await settle();
    expect(m.status().pending).toEqual([]);
    expect(calls).toEqual([]);
    expect(m.status().decisions[0]!.reason).toBe('n1 failed; failover of datarep-ext3 to n2 blocked (no answer within CONFIRMSOTO=30 s, CONFIRMSODEF=1)');
    expect(() => m.confirm('n1', 'proceed')).toThrow('no failover from n1 is waiting for confirmation on n2');
  });
});
