// The manual's command-line examples ("Command Line Mirror Administration"), run verbatim on three real
// agents named as in the manual (adam, eve, sophocles), and the control API refusing bad calls without
// changing anything.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callAgent } from '../../agent/control/json-rpc.js';
import { exportUri, inSync, makeDisk, startAgent, tandemOk, waitTargets, type Agent } from '../helpers/agents.js';
import { runOk, sha256File, tempDir } from '../helpers/tools.js';

const SIZE = 8 * 1024 * 1024;
const tag = 'datarep-ext3';

describe('the manual\'s CLI examples, verbatim', () => {
  let dir: string;
  let adam: Agent;
  let eve: Agent;
  let sophocles: Agent;
  const disks: Record<string, string> = {};

  beforeAll(async () => {
    dir = tempDir('manual-cli');
    for (const n of ['adam', 'eve', 'sophocles']) disks[n] = makeDisk(path.join(dir, `${n}.img`), SIZE);
    adam = await startAgent(path.join(dir, 'adam'), 'adam');
    eve = await startAgent(path.join(dir, 'eve'), 'eve');
    sophocles = await startAgent(path.join(dir, 'sophocles'), 'sophocles');
    await tandemOk(adam, 'create', tag, '--disk', disks.adam!);
    for (const t of [eve, sophocles]) {
      await tandemOk(t, 'accept', tag, '--disk', disks[t.node]!);
      await tandemOk(adam, 'extend', tag, '--target', t.node, '--address', t.address, '--mode', t === eve ? 'sync' : 'async');
    }
    await waitTargets(adam, tag, inSync);
  });

  afterAll(async () => {
    for (const a of [adam, eve, sophocles]) await a?.kill9();
  });

  const ok = async (a: Agent, program: string, ...args: string[]) => {
    const r = await a.program(program, ...args);
    expect(r.code, `${program} ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.stdout;
  };

  it('mirror_action pause / resume / fullresync with the manual\'s arguments', async () => {
    expect(await ok(adam, 'mirror_action', 'datarep-ext3', 'pause', 'adam', 'eve')).toBe('datarep-ext3: pause adam -> eve\n');
    const paused = await adam.status(tag);
    expect(paused.targets.map((t) => t.status)).toEqual(['Paused', 'Fully Operational']);
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 1M 64k', exportUri(adam, tag)]);
    expect(await ok(adam, 'mirror_action', 'datarep-ext3', 'resume', 'adam', 'eve', 'sophocles')).toBe('datarep-ext3: resume adam -> eve sophocles\n');
    await waitTargets(adam, tag, inSync);
    const before = (await adam.status(tag)).targets.find((t) => t.node === 'sophocles')!.resyncBytes;
    expect(await ok(adam, 'mirror_action', 'datarep-ext3', 'fullresync', 'adam', 'sophocles')).toBe('datarep-ext3: fullresync adam -> sophocles\n');
    const st = await waitTargets(adam, tag, (t) => inSync(t) && (t.node !== 'sophocles' || t.resyncBytes - before === SIZE));
    expect(st.targets.find((t) => t.node === 'sophocles')!.resyncBytes - before).toBe(SIZE);
    for (const n of ['eve', 'sophocles']) expect(sha256File(disks[n]!)).toBe(sha256File(disks.adam!));
  });

  it('mirror_settings, run on the target systems as the manual advises, and on the source', async () => {
    for (const a of [eve, sophocles, adam]) {
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'compress', '5')).toBe('datarep-ext3: compress set to 5; takes effect at the next pause and resume\n');
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'compress', '0')).toContain('compress set to 0');
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'logdir', '/tmp/logs')).toContain('logdir set to /tmp/logs');
      expect((await a.status(tag)).rewindLog.dir).toBe('/tmp/logs');
      // The manual writes the empty value with typographic quotes: mirror_settings datarep-ext3 logdir “”
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'logdir', '“”')).toContain('logdir set to');
      expect((await a.status(tag)).rewindLog.dir).toBe('');
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'logmax', '1073741824')).toContain('logmax set to 1073741824');
      expect((await a.status(tag)).rewindLog.maxBytes).toBe(1073741824);
      expect(await ok(a, 'mirror_settings', 'datarep-ext3', 'logmax', '0')).toContain('logmax set to 0');
    }
  });

  it('mirror_status has the manual\'s shape', async () => {
    const out = await ok(adam, 'mirror_status', 'datarep-ext3');
    expect(out).toBe(
      '[-] adam -> eve\n Status: Fully Operational\n Type: Synchronous\n' +
      '[-] adam -> sophocles\n Status: Fully Operational\n Type: Asynchronous\n' +
      `Bitmap: ${SIZE / 65536} bits (chunks), 0 dirty (0.0%)\n`);
  });

  it('bad control calls name the field and change nothing (state file hash before and after)', async () => {
    const socket = path.join(adam.home, 'run', 'control.sock');
    const stateFile = path.join(adam.home, 'state', 'mirrors.json');
    const hash = () => crypto.createHash('sha256').update(fs.readFileSync(stateFile)).digest('hex');
    const before = hash();
    const bad: Array<[string, Record<string, unknown>, string]> = [
      ['mirror.create', {}, 'missing parameter "tag"'],
      ['mirror.create', { tag: 'x' }, 'missing parameter "disk"'],
      ['mirror.create', { tag: 7, disk: '/tmp/x' }, 'parameter "tag" must be a string'],
      ['mirror.create', { tag: 'x', disk: 'relative.img' }, 'parameter "disk": "relative.img" must be an absolute path'],
      ['mirror.create', { tag: 'x', disk: disks.adam, chunkSize: 3000 }, 'parameter "chunkSize" must be an integer from 4096'],
      ['mirror.create', { tag: 'x', disk: disks.adam, compression: 'high' }, 'parameter "compression" must be an integer from 0 to 9'],
      ['mirror.create', { tag: 'x', disk: disks.adam, colour: 'blue' }, 'unknown parameter "colour"'],
      ['mirror.create', { tag: 'x', disk: disks.adam }, 'is already protected by mirror "datarep-ext3" (source)'],
      ['mirror.accept', { tag: 'bad tag!', disk: '/tmp/x' }, '"bad tag!" is not a valid tag'],
      ['mirror.extend', { tag, node: 'zed', address: 'nowhere' }, 'parameter "address": replication address "nowhere" is not HOST:PORT'],
      ['mirror.extend', { tag, node: 'zed', address: '127.0.0.1:1', mode: 'fast' }, 'parameter "mode" must be one of sync, async, not "fast"'],
      ['mirror.extend', { tag, node: 'zed', address: '127.0.0.1:1', initialSync: 'maybe' }, 'parameter "initialSync" must be one of full, none, checksum'],
      ['mirror.extend', { tag: 'nosuch', node: 'zed', address: '127.0.0.1:1' }, 'no mirror "nosuch" on this node (adam)'],
      ['mirror.unextend', { tag, node: 'zed' }, '"zed" is not a target of "datarep-ext3"'],
      ['mirror.pause', { tag, targets: 'eve' }, 'parameter "targets" must be a list of node names'],
      ['mirror.resume', { tag, targets: ['zed'] }, '"zed" is not a target of mirror "datarep-ext3"'],
      ['mirror.fullresync', { tag, checksum: 'yes' }, 'parameter "checksum" must be true or false'],
      ['mirror.settings', { tag, setting: 'colour', value: '1' }, 'parameter "setting" must be one of logdir, logmax, compress, resyncrate'],
      ['mirror.settings', { tag, setting: 'compress', value: '11' }, 'compress takes a level from 0 (off) to 9 (best), not "11"'],
      ['mirror.settings', { tag, setting: 'logdir', value: 'logs' }, 'logdir must be an absolute directory'],
      ['mirror.settings', { tag, setting: 'logmax', value: '-1' }, 'logmax takes a size in bytes'],
      ['mirror.settings', { tag, setting: 'compress' }, 'missing parameter "value"'],
      ['mirror.inservice', { tag, force: 1 }, 'parameter "force" must be true or false'],
      ['mirror.resolve', { tag }, 'missing parameter "survivor"'],
      ['mirror.resolve', { tag, survivor: 'zed' }, '"zed" is not a node of mirror "datarep-ext3"'],
      ['mirror.release', { tag }, 'this node (adam) is not a target of "datarep-ext3"'],
      ['mirror.delete', { tag: 'nosuch' }, 'no mirror "nosuch" on this node (adam)'],
      ['mirror.status', { tag: ['x'] }, 'parameter "tag" must be a string'],
      ['agent.info', { verbose: true }, 'unknown parameter "verbose"'],
    ];
    for (const [method, params, message] of bad) {
      await expect(callAgent(socket, method, params), `${method} ${JSON.stringify(params)}`).rejects.toThrow(message);
    }
    expect(hash()).toBe(before);
    expect((await adam.status(tag)).targets).toHaveLength(2);
  });

  it('mirror_action datarep-ext3 force eve, when the source is gone for good', async () => {
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 2M 4k', exportUri(adam, tag)]);
    await waitTargets(adam, tag, inSync);
    const refused = await eve.program('mirror_action', 'datarep-ext3', 'force', 'eve');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('adam is connected and in service; force is only for when it is gone');
    await adam.kill9();
    expect(await ok(eve, 'mirror_action', 'datarep-ext3', 'force', 'eve')).toBe('datarep-ext3 in service on eve (forced)\n');
    const st = await waitTargets(eve, tag, (t) => t.node !== 'sophocles' || inSync(t));
    expect(st.targets.map((t) => t.node).sort()).toEqual(['adam', 'sophocles']);
    expect(sha256File(disks.sophocles!)).toBe(sha256File(disks.eve!));
  });
});
