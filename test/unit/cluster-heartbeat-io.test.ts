// Heartbeat I/O on loopback with real TLS: beats of a peer of this cluster arrive, named by the path's
// two addresses; a line naming another node than the certificate, garbage, an over-long line and a
// peer of another CA are dropped, and the listener goes on serving.
import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatIo } from '../../agent/cluster/heartbeat-io.js';
import type { Heartbeat } from '../../agent/cluster/heartbeat-wire.js';
import { MAX_HEARTBEAT_BYTES } from '../../agent/cluster/heartbeat-wire.js';
import { connectReplication } from '../../agent/replication/transport.js';
import type { Logger } from '../../agent/log.js';
import { createClusterCa, rawCredentials } from '../helpers/pki.js';

const logged: string[] = [];
const log: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => logged.push(m), error: (m) => logged.push(m), child: () => log };
const open: HeartbeatIo[] = [];

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!ok()) throw new Error(`${what} did not happen`);
}

describe('heartbeat I/O', () => {
  afterEach(async () => {
    for (const io of open.splice(0)) await io.close();
  });

  it('beats of this cluster count; hostile lines and another CA are dropped; the listener survives', async () => {
    const ca = await createClusterCa();
    const received: Array<{ h: Heartbeat; path: string }> = [];
    const a = new HeartbeatIo({ node: 'na', creds: await rawCredentials(ca, 'na'), heartbeatMs: 200, log, onHeartbeat: (h, path) => received.push({ h, path }) });
    open.push(a);
    const port = await a.listen('127.0.0.1', 0);
    const b = new HeartbeatIo({ node: 'nb', creds: await rawCredentials(ca, 'nb'), heartbeatMs: 200, log, onHeartbeat: () => undefined });
    open.push(b);
    b.setPeers([{ node: 'na', paths: [{ local: '127.0.0.1', remote: `127.0.0.1:${port}` }] }]);
    const beatUntil = async (n: number) => {
      for (let i = 0; i < 200 && received.filter((r) => r.h.node === 'nb').length < n; i++) {
        b.beat({ stopping: false, mirrors: [] });
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await beatUntil(2);
    expect(received[0]).toMatchObject({ h: { v: 1, node: 'nb', stopping: false, mirrors: [] }, path: '127.0.0.1/127.0.0.1' });

    // A peer with a good certificate for nb that sends hostile lines.
    for (const line of [JSON.stringify({ v: 1, node: 'nc', seq: 1, stopping: false, mirrors: [] }) + '\n', '{not json\n', 'x'.repeat(MAX_HEARTBEAT_BYTES + 10)]) {
      const c = connectReplication({ host: '127.0.0.1', port, expectedPeer: 'na', creds: await rawCredentials(ca, 'nb') });
      c.socket.on('error', () => undefined);
      await c.ready;
      let closed = false;
      c.socket.once('close', () => (closed = true));
      c.socket.write(line);
      await until('the hostile connection dropped', () => closed);
    }
    expect(received.some((r) => r.h.node === 'nc')).toBe(false);
    expect(logged.join('\n')).toContain('heartbeat naming nc from a peer whose certificate is for nb ignored');
    expect(logged.join('\n')).toContain('malformed heartbeat (heartbeat is not JSON) from nb');
    expect(logged.join('\n')).toContain(`heartbeat line from nb longer than ${MAX_HEARTBEAT_BYTES} bytes`);

    // Another CA's peer never gets a beat in.
    const other = await createClusterCa();
    const m = new HeartbeatIo({ node: 'nm', creds: await rawCredentials(other, 'nm', {}, ca), heartbeatMs: 200, log, onHeartbeat: () => undefined });
    open.push(m);
    m.setPeers([{ node: 'na', paths: [{ local: '127.0.0.1', remote: `127.0.0.1:${port}` }] }]);
    for (let i = 0; i < 10; i++) {
      m.beat({ stopping: false, mirrors: [] });
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(received.some((r) => r.h.node === 'nm')).toBe(false);

    // Still serving: nb's beats go on arriving, and its graceful stop is announced.
    const before = received.length;
    await beatUntil(received.filter((r) => r.h.node === 'nb').length + 1);
    expect(received.length).toBeGreaterThan(before);
    await b.close({ stopping: true, mirrors: [] });
    await until('the graceful-stop beat', () => received.some((r) => r.h.stopping));
  }, 60_000);
});
