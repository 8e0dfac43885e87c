// The resource database through the console API against real agents (the local lab): every node keeps
// a copy in its state folder, the console writes version + 1 to all, refuses a save based on an old
// read, and a node that lost its copy gets the newest one back.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ResourceDatabase } from '../../common/resource-database.js';
import { AGENT_BUNDLE, run } from '../helpers/tools.js';
import { startLabBackend } from '../helpers/lab-backend.js';

const { backend, waitCluster } = startLabBackend('console-resdb');

const hierarchy = (version: number): ResourceDatabase => ({
  version,
  resources: [
    { tag: 'datarep-data', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'node1', priority: 1 }, { server: 'node2', priority: 10 }] },
    { tag: 'ext4-srv', kind: 'filesystem', mountPoint: '/srv', fstype: 'ext4', dependsOn: ['datarep-data'], switchback: 'intelligent', instances: [{ server: 'node1', priority: 1 }, { server: 'node2', priority: 10 }] },
  ],
  flags: [{ server: 'node2', confirmFailoverFrom: ['node1'], blockResourceFailover: true }],
});

const stored = (home: string) => JSON.parse(fs.readFileSync(path.join(home, 'state', 'resource-db.json'), 'utf8')) as ResourceDatabase;

describe('resource database', () => {
  it('starts empty, is saved as version + 1 on every node, and shows in the cluster view', async () => {
    await backend.openLocalLab(3);
    expect(await backend.resourceDatabase()).toEqual({ version: 0, resources: [], flags: [] });
    const saved = await backend.saveResourceDatabase(hierarchy(0));
    expect(saved.version).toBe(1);
    for (const n of backend.labNodes()) {
      expect(stored(n.home)).toEqual(hierarchy(1));
      expect(fs.statSync(path.join(n.home, 'state', 'resource-db.json')).mode & 0o777).toBe(0o600);
    }
    expect((await backend.resourceDatabase()).resources.map((r) => r.tag)).toEqual(['datarep-data', 'ext4-srv']);
    await waitCluster((c) => c.resources.version === 1, 'the cluster view to carry version 1');
    const last = (await backend.output()).at(-1)!;
    expect([last.action, last.ok, last.message]).toEqual(['Save resource database', true, 'version 1 saved on node1, node2, node3']);
    // The Output Panel's command is the real thing: run on a node, the agent answers it (here: that
    // version 1 is already there).
    expect(last.command).toMatch(/^echo '\{"jsonrpc":"2\.0","id":1,"method":"resource\.savedatabase","params":\{"database":\{"version":1,.*\}' \| tandem ctl$/);
    const home = backend.labNodes()[0]!.home;
    const r = await run('bash', ['-c', `tandem() { TANDEM_PROGRAM=tandem TANDEM_HOME='${home}' '${process.execPath}' '${AGENT_BUNDLE}' "$@"; }\n${last.command}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).error.message).toBe("resource database version 1 is not newer than this node's (1); read it again (resource.database) and save your change with the version you read + 1");
  });

  it('refuses a save based on an old read ("changed meanwhile; reload") and leaves every copy as it was', async () => {
    // Another console saves version 2 directly on the agents.
    for (const n of ['node1', 'node2', 'node3']) await backend.agentCall(n, 'resource.savedatabase', { database: { ...hierarchy(2), flags: [] } });
    await waitCluster((c) => c.resources.version === 2, 'the other console\'s save to arrive through the status push');
    await expect(backend.saveResourceDatabase(hierarchy(1))).rejects.toThrow('the resource database changed meanwhile (it is at version 2, you read version 1); reload and make your change again');
    for (const n of backend.labNodes()) expect(stored(n.home)).toEqual({ ...hierarchy(2), flags: [] });
    expect((await backend.output()).at(-1)!.ok).toBe(false);
  });

  it('an agent refuses an equal or older version and an invalid database, naming the field', async () => {
    await expect(backend.agentCall('node1', 'resource.savedatabase', { database: hierarchy(2) })).rejects.toThrow('resource database version 2 is not newer than this node\'s (2)');
    const bad = hierarchy(3);
    bad.resources[1]!.dependsOn = ['nothing'];
    await expect(backend.agentCall('node1', 'resource.savedatabase', { database: bad })).rejects.toThrow('resources.1.dependsOn.0: "ext4-srv" depends on "nothing", which is not in the database');
    const dup = hierarchy(3);
    dup.resources[0]!.instances[1]!.priority = 1;
    await expect(backend.agentCall('node1', 'resource.savedatabase', { database: dup })).rejects.toThrow('priority 1 of "datarep-data" is already used on node1');
    await expect(backend.agentCall('node1', 'resource.savedatabase', {})).rejects.toThrow('missing parameter "database"');
    expect(stored(backend.labNodes()[0]!.home).version).toBe(2);
  });

  it('a node that lost its copy gets the newest one back; a damaged file is kept aside', async () => {
    const homes = backend.labNodes().map((n) => n.home);
    await backend.closeLocalLab();
    fs.rmSync(path.join(homes[1]!, 'state', 'resource-db.json'));
    fs.writeFileSync(path.join(homes[2]!, 'state', 'resource-db.json'), '{"version": 9, "resources": "oops"');
    await backend.openLocalLab(3);
    const c = await waitCluster(() => homes.every((h) => fs.existsSync(path.join(h, 'state', 'resource-db.json')) && stored(h).version === 2), 'every node back at version 2');
    expect(c.resources.version).toBe(2);
    const aside = fs.readdirSync(path.join(homes[2]!, 'state')).filter((f) => f.startsWith('resource-db.json.damaged-'));
    expect(aside.length).toBe(1);
    expect(fs.readFileSync(path.join(homes[2]!, 'state', aside[0]!), 'utf8')).toBe('{"version": 9, "resources": "oops"');
    expect((await backend.saveResourceDatabase(await backend.resourceDatabase())).version).toBe(3);
  });
});
