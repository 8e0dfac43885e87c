// The resource database's rules, shared by the agents (resource.savedatabase) and the console API.
import { describe, expect, it } from 'vitest';
import { checkResourceDatabase, findCycle, type ResourceDatabase, type ResourceDefinition } from '../../common/resource-database.js';
import { parseConsoleCall } from '../../common/console-api.js';

const dk = (tag: string, ...servers: string[]): ResourceDefinition => ({
  tag, kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: servers.map((server, i) => ({ server, priority: i + 1 })),
});
const fsr = (tag: string, on: string, ...servers: string[]): ResourceDefinition => ({
  tag, kind: 'filesystem', mountPoint: '/srv/data', fstype: 'ext4', dependsOn: [on], switchback: 'intelligent',
  instances: servers.map((server, i) => ({ server, priority: i + 1 })),
});
const good: ResourceDatabase = {
  version: 3,
  resources: [dk('datarep-data', 'node1', 'node2'), fsr('ext4-srv-data', 'datarep-data', 'node1', 'node2')],
  flags: [{ server: 'node2', confirmFailoverFrom: ['node1'], blockResourceFailover: false }],
};
const withResources = (...resources: unknown[]) => ({ ...good, resources });

describe('checkResourceDatabase', () => {
  it('accepts a hierarchy (file system over its DataKeeper resource) and returns it unchanged', () => {
    expect(checkResourceDatabase(structuredClone(good))).toEqual(good);
  });

  it('names the field and the fix for each broken rule', () => {
    const cases: Array<[unknown, string]> = [
      [null, 'resource database: database: must be an object'],
      [{ ...good, version: -1 }, 'version: must be a whole number ≥ 0, not -1'],
      [{ ...good, extra: 1 }, 'database.extra: unknown field'],
      [withResources({ ...dk('bad tag', 'node1') }), 'resources.0.tag: "bad tag" is not a valid tag'],
      [withResources({ ...dk('a', 'node1'), kind: 'lvm' }), 'resources.0.kind: must be datakeeper, filesystem or generic, not "lvm"'],
      [withResources({ ...dk('a', 'node 1') }), 'resources.0.instances.0.server: "node 1" is not a server name'],
      [withResources({ ...dk('a', 'node1'), instances: [] }), 'resources.0.instances: "a" must be defined on at least one server'],
      [withResources({ ...dk('a', 'node1'), instances: [{ server: 'node1', priority: 0 }] }), 'resources.0.instances.0.priority: a priority is a whole number from 1 to 999, not 0'],
      [withResources({ ...dk('a', 'node1'), instances: [{ server: 'node1', priority: 1000 }] }), 'from 1 to 999, not 1000'],
      [withResources({ ...dk('a', 'node1'), instances: [{ server: 'node1', priority: 5 }, { server: 'node2', priority: 5 }] }),
        'resources.0.instances.1.priority: priority 5 of "a" is already used on node1; each server needs its own'],
      [withResources({ ...dk('a', 'node1'), instances: [{ server: 'node1', priority: 1 }, { server: 'node1', priority: 2 }] }), 'resources.0.instances.1.server: "a" is already defined on node1'],
      [withResources(dk('a', 'node1'), dk('a', 'node2')), 'resources.1.tag: tag "a" is used twice (also resources.0)'],
      [withResources(fsr('fs', 'missing', 'node1')), 'resources.0.dependsOn.0: "fs" depends on "missing", which is not in the database; create "missing" first'],
      [withResources({ ...dk('a', 'node1'), dependsOn: ['a'] }), 'resources.0.dependsOn.0: "a" cannot depend on itself'],
      [withResources({ ...dk('a', 'node1'), dependsOn: ['b'] }, { ...dk('b', 'node1'), dependsOn: ['c'] }, { ...dk('c', 'node1'), dependsOn: ['a'] }),
        'dependency cycle a → b → c → a; a hierarchy is a tree'],
      [withResources({ ...fsr('fs', 'x', 'node1'), dependsOn: [], mountPoint: 'srv' }), 'resources.0.mountPoint: a file system resource needs its mount point, an absolute path'],
      [withResources({ ...dk('a', 'node1'), mountPoint: '/srv' }), 'only a filesystem resource has a mount point'],
      [withResources({ ...dk('a', 'node1'), switchback: 'automatic' }), 'resources.0.switchback: must be "intelligent"'],
      [{ ...good, flags: [{ server: 'node1', confirmFailoverFrom: ['node1'], blockResourceFailover: false }] }, 'flags.0.confirmFailoverFrom.0: Confirm Failover is set per other server; node1 cannot name itself'],
      [{ ...good, flags: [{ server: 'node1', confirmFailoverFrom: [], blockResourceFailover: 'yes' }] }, 'flags.0.blockResourceFailover: must be true or false'],
      [{ ...good, flags: [good.flags[0], good.flags[0]] }, 'flags.1.server: node2 has two flag entries'],
    ];
    for (const [db, message] of cases) expect(() => checkResourceDatabase(db), message).toThrow(message);
  });

  it('finds cycles without recursion, even in a long chain', () => {
    const chain = Array.from({ length: 3000 }, (_, i) => ({ ...dk(`r${i}`, 'node1'), dependsOn: i + 1 < 3000 ? [`r${i + 1}`] : [] }));
    expect(findCycle(chain)).toBeNull();
    chain[2999]!.dependsOn = ['r0'];
    expect(findCycle(chain)?.length).toBe(3001);
  });
});

describe('saveResourceDatabase through the console API contract', () => {
  it('takes a valid database and refuses a broken one with the field path', () => {
    expect(parseConsoleCall('saveResourceDatabase', [good]).args[0]).toEqual(good);
    expect(() => parseConsoleCall('saveResourceDatabase', [withResources(fsr('fs', 'missing', 'node1'))]))
      .toThrow('saveResourceDatabase: invalid argument at 0.resources.0.dependsOn.0: "fs" depends on "missing"');
    expect(() => parseConsoleCall('saveResourceDatabase', [{ ...good, resources: [{ ...dk('a', 'node1'), owner: 'x' }] }]))
      .toThrow(/invalid argument at 0\.resources\.0: Unrecognized key/);
  });
});
