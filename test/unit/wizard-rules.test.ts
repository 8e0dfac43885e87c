// The wizards' validation, step by step: each bad input gets its message beside the right field, and
// good input gets none. The same functions run in the renderer and again in the backend.
import { describe, expect, it } from 'vitest';
import type { DiskCandidate } from '../../common/hierarchy.js';
import { validateHierarchy, type HierarchyContext } from '../../common/hierarchy-rules.js';
import type { ResourceDatabase } from '../../common/resource-database.js';
import {
  addServerDefinition, emptyAddServerForm, extendDefaults, hostOfAddress, inServiceRefusal, outOfServiceRefusal, pathChoices, validateAddServer,
  validateCommPaths, validateCreateDependency, validateDelete, validateDeleteDependency, validateExtend, validateLabNodes, validatePreExtend,
  validateUnextend, type ExtendFacts,
} from '../../common/wizard-rules.js';
import { posixBasename, posixJoin, posixNormalize } from '../../common/posix-path.js';
import { mirror, server, target, view } from '../fixtures/cluster-view.js';

const GiB = 1024 ** 3;
const disk = (path: string, size: number, reasons: string[] = []): DiskCandidate => ({ path, name: posixBasename(path), kind: 'disk', size, fstype: null, eligible: reasons.length === 0, reasons });

describe('Add Server', () => {
  const ok = { ...emptyAddServerForm(), name: 'node4', host: '10.0.0.4' };
  it('accepts a complete form and builds the server definition', () => {
    expect(validateAddServer(ok, ['node1'])).toEqual({});
    expect(addServerDefinition({ ...ok, auth: ['key', 'password'], keyFile: ' /root/.ssh/id_ed25519 ' })).toEqual({
      name: 'node4', ssh: { host: '10.0.0.4', port: 22, user: 'root', auth: ['key', 'password'], keyFile: '/root/.ssh/id_ed25519', jumpHost: null },
    });
    expect(addServerDefinition({ ...ok, useJumpHost: true, jump: { ...ok.jump, host: 'bastion', port: '2222', user: 'admin' } }).ssh.jumpHost)
      .toEqual({ host: 'bastion', port: 2222, user: 'admin', auth: ['agent', 'key'] });
  });
  it('names each wrong field', () => {
    expect(validateAddServer({ ...emptyAddServerForm() }, [])).toEqual({
      name: 'enter the server name: the node name its agent runs as (usually its host name)',
      host: 'enter the host: a DNS name or an IP address',
    });
    expect(validateAddServer({ ...ok, name: 'node1' }, ['node1']).name).toBe('a server named "node1" is already in the cluster; choose another name');
    expect(validateAddServer({ ...ok, name: '-x' }, []).name).toContain('is not a server name');
    expect(validateAddServer({ ...ok, host: 'a b' }, []).host).toBe('"a b" is not a host name or IP address (letters, digits, ".", ":", "-")');
    expect(validateAddServer({ ...ok, port: '70000' }, []).port).toBe('the SSH port is a number from 1 to 65535, not "70000"');
    expect(validateAddServer({ ...ok, user: 'bad user' }, []).user).toContain('is not a user name');
    expect(validateAddServer({ ...ok, auth: [] }, []).auth).toBe('choose at least one way to log in');
    expect(validateAddServer({ ...ok, keyFile: 'id_rsa' }, []).keyFile).toContain('id_rsa is not an absolute path');
    expect(validateAddServer({ ...ok, auth: ['password'], keyFile: '/k' }, []).keyFile).toContain('"key file" is not one of the ways to log in');
    expect(validateAddServer({ ...ok, useJumpHost: true }, [])['jump.host']).toBe('enter the host: a DNS name or an IP address');
  });
  it('the other servers\' hosts are the defaults of the comm paths', () => {
    expect(['root@10.77.1.11:22', 'admin@[fd00::5]:2222', 'node1.example:22', 'local 127.0.0.1:7501', 'local'].map(hostOfAddress))
      .toEqual(['10.77.1.11', 'fd00::5', 'node1.example', '127.0.0.1', 'local']);
  });
  it('comm paths: an address each side, without a port', () => {
    expect(validateCommPaths([{ other: 'node1', localAddress: '10.1.0.4', remoteAddress: 'fd00::1' }])).toEqual({});
    expect(validateCommPaths([{ other: 'node1', localAddress: '', remoteAddress: '10.1.0.1:7500' }])).toEqual({
      'paths.0.localAddress': 'enter the address of the new server on this path',
      'paths.0.remoteAddress': '"10.1.0.1:7500" is not an IP address or host name (no port: the agents\' replication port is added)',
    });
  });
});

describe('Create Resource Hierarchy (the agent\'s own rules, run in the page)', () => {
  const ctx: HierarchyContext = {
    disks: [disk('/dev/sdb', 8 * GiB), disk('/dev/sda', 32 * GiB, ['holds the system\'s /'])], fileSystems: [], mountPoints: ['/srv/used'],
    tagsInUse: ['datarep-old'], fileSystemTypes: ['ext4', 'ext3'], node: 'node1',
  };
  it('a new file system with every field right has no error', () => {
    expect(validateHierarchy({ type: 'new', switchback: 'intelligent', server: 'node1', sourceDisk: '/dev/sdb', mountPoint: '/srv/data', fileSystemType: 'ext4', dataKeeperTag: 'datarep-ext4-data', fileSystemTag: 'ext4-data', bitmapFile: '/var/lib/tandem/bitmaps/x.bitmap', asyncReplication: true }, ctx)).toEqual([]);
  });
  it('ineligible disk, system mount point, missing mkfs, used tag, relative bitmap — each beside its field', () => {
    const errors = validateHierarchy({ type: 'new', switchback: 'automatic', server: 'node1', sourceDisk: '/dev/sda', mountPoint: '/usr', fileSystemType: 'xfs', dataKeeperTag: 'datarep-old', fileSystemTag: 'ext4 data', bitmapFile: 'bitmap', asyncReplication: false }, ctx);
    expect(Object.fromEntries(errors.map((e) => [e.field, e.message]))).toEqual({
      switchback: 'Automatic Switchback is not supported for DataKeeper resources (the manual\'s caution); choose intelligent',
      sourceDisk: '/dev/sda cannot be used: holds the system\'s /',
      mountPoint: '/usr is a system location; choose another mount point',
      fileSystemType: 'mkfs.xfs is not installed on node1 (apt-get install xfsprogs); choose ext4, ext3',
      dataKeeperTag: 'DataKeeper Resource Tag "datarep-old" is already in use on node1; choose a unique tag',
      fileSystemTag: 'File System Resource Tag "ext4 data" may hold only letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)',
      bitmapFile: 'bitmap is not an absolute path; enter one, or none',
    });
  });
  it('paths are judged as a Linux node\'s, without node:path', () => {
    expect(posixNormalize('/srv//data/../x/.')).toBe('/srv/x');
    expect(posixJoin('/var/lib/', 'b.bitmap')).toBe('/var/lib/b.bitmap');
    expect(posixBasename('/dev/sdb1/')).toBe('sdb1');
  });
});

describe('Pre-Extend and Extend', () => {
  const db = (instances: Array<[string, number]>): ResourceDatabase => ({
    version: 3, flags: [], resources: [{ tag: 'dr', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: instances.map(([server, priority]) => ({ server, priority })) }],
  });
  const commPaths = [
    { servers: ['node1', 'node2'] as [string, string], addresses: ['10.1.0.1', '10.1.0.2'] as [string, string] },
    { servers: ['node3', 'node1'] as [string, string], addresses: ['10.1.0.3', '10.1.0.1'] as [string, string] },
    { servers: ['node2', 'node3'] as [string, string], addresses: ['10.1.0.2', '10.1.0.3'] as [string, string] },
  ];
  const facts = (mirrors: { n1: ReturnType<typeof mirror>[]; n2?: ReturnType<typeof mirror>[] }, instances: Array<[string, number]>, disks = [disk('/dev/vdb', 2 * GiB), disk('/dev/vdc', GiB / 2)]): ExtendFacts => ({
    cluster: { ...view([server('node1', mirrors.n1), server('node2', mirrors.n2 ?? []), server('node3', [])]), commPaths },
    db: db(instances), targetDisks: disks, targetBitmapDir: '/var/lib/tandem/state/bitmaps',
  });

  it('first extend: template priority asked, defaults from the comm paths, a target disk large enough', () => {
    const f = facts({ n1: [mirror('dr', 'node1', 'source')] }, [['node1', 1]]);
    const d = extendDefaults(f, 'node1', 'dr', 'node2');
    expect(d).toMatchObject({ templatePriority: 1, targetPriority: 2, targetDisk: '/dev/vdb', dataKeeperTag: 'dr', bitmapFile: '/var/lib/tandem/state/bitmaps/dr.bitmap', pairs: [{ other: 'node1', addresses: ['10.1.0.2', '10.1.0.1'], mode: 'sync' }] });
    expect(validatePreExtend(d, f)).toEqual({});
    expect(validateExtend(d, f)).toEqual({});
  });

  it('second extend: no template priority, one pair per server holding it, async refused without it', () => {
    const src = mirror('dr', 'node1', 'source', { targets: [target('node2')], asyncAllowed: false });
    const f = facts({ n1: [src], n2: [mirror('dr', 'node2', 'target')] }, [['node1', 1], ['node2', 10]]);
    const d = extendDefaults(f, 'node1', 'dr', 'node3');
    expect(d.templatePriority).toBeNull();
    expect(d.targetPriority).toBe(11);
    expect(d.pairs).toEqual([{ other: 'node1', addresses: ['10.1.0.3', '10.1.0.1'], mode: 'sync' }, { other: 'node2', addresses: ['10.1.0.3', '10.1.0.2'], mode: 'sync' }]);
    expect(validateExtend({ ...d, pairs: d.pairs.map((p) => ({ ...p, mode: 'async' as const })) }, f)).toEqual({
      'pairs.0.mode': '"dr" was created without asynchronous replication; choose synchronous (or recreate it with Enable Asynchronous Replication = Yes)',
      'pairs.1.mode': '"dr" was created without asynchronous replication; choose synchronous (or recreate it with Enable Asynchronous Replication = Yes)',
    });
    // One mode per target, whichever server is in service.
    const mixed = validateExtend({ ...d, pairs: [d.pairs[0]!, { ...d.pairs[1]!, mode: 'async' }] }, { ...f, cluster: { ...f.cluster, servers: f.cluster.servers.map((s) => ({ ...s, mirrors: s.mirrors.map((m) => ({ ...m, asyncAllowed: true })) })) } });
    expect(mixed).toEqual({ 'pairs.1.mode': 'Tandem replicates to node3 in one mode from whichever server is in service; choose synchronous here too, as for node1' });
    expect(validatePreExtend({ ...d, targetPriority: 10 }, f).targetPriority).toBe('priority 10 is already used by node2 for "dr"; choose an unused one');
    expect(validatePreExtend({ ...d, targetPriority: 1000 }, f).targetPriority).toBe('the Target Priority is a whole number from 1 to 999 (1 = highest)');
  });

  it('the manual\'s errors: tag not in service on the template, target already holding it, too small or ineligible disk', () => {
    const f = facts({ n1: [mirror('dr', 'node1', 'source', { state: 'out of service' })] }, [['node1', 1]]);
    const d = extendDefaults(f, 'node1', 'dr', 'node2');
    expect(validatePreExtend(d, f).tag).toBe('"dr" is not in service on node1 (it is out of service on node1); choose the server where it is in service as the Template Server');
    expect(validatePreExtend({ ...d, templateServer: 'node2' }, f).tag).toContain('"dr" is not in service on node2');
    expect(validatePreExtend({ ...d, targetServer: 'node1' }, f).targetServer).toBe('the Target Server must differ from the Template Server');
    expect(validatePreExtend({ ...d, switchback: 'automatic' }, f).switchback).toContain('Automatic Switchback is not supported');
    expect(validatePreExtend({ ...d, templatePriority: 2, targetPriority: 2 }, f).targetPriority).toBe('priority 2 is the Template Priority; no two servers may share a priority');
    expect(validateExtend({ ...d, targetDisk: '/dev/vdc' }, f).targetDisk).toBe(`/dev/vdc (${GiB / 2} bytes) is smaller than the source disk (${GiB} bytes); the target must be at least as large`);
    const f2 = facts({ n1: [mirror('dr', 'node1', 'source')] }, [['node1', 1]], [disk('/dev/vdb', 2 * GiB, ['mounted at /srv'])]);
    expect(validateExtend({ ...d, targetDisk: '/dev/vdb' }, f2).targetDisk).toBe('/dev/vdb cannot be used: mounted at /srv');
    expect(validateExtend({ ...d, dataKeeperTag: 'other' }, f).dataKeeperTag).toBe('a mirror keeps its tag on every server: dr');
    expect(validateExtend({ ...d, pairs: [] }, f)).toEqual({ 'pairs.node1': 'choose the Replication Path and Type between node2 and node1' });
  });

  it('with a file system: the same mount point and root tag on every server', () => {
    const fs = { tag: 'ext4-data', mountPoint: '/srv/data', fstype: 'ext4', device: '/dev/nbd0', mounted: true, error: '' };
    const f = facts({ n1: [mirror('dr', 'node1', 'source', { fileSystem: fs })] }, [['node1', 1]]);
    const d = extendDefaults(f, 'node1', 'dr', 'node2');
    expect([d.mountPoint, d.rootTag]).toEqual(['/srv/data', 'ext4-data']);
    expect(validateExtend({ ...d, mountPoint: '/mnt', rootTag: '' }, f)).toEqual({ mountPoint: 'Tandem mounts "ext4-data" at the same place on every server: /srv/data', rootTag: 'enter the Root Tag' });
  });

  it('no comm path between a pair: the pair asks for one', () => {
    expect(pathChoices(commPaths, 'node3', 'node1')).toEqual([['10.1.0.3', '10.1.0.1']]);
    const f = facts({ n1: [mirror('dr', 'node1', 'source')] }, [['node1', 1]]);
    const noPaths = { ...f, cluster: { ...f.cluster, commPaths: [] } };
    const d = extendDefaults(noPaths, 'node1', 'dr', 'node2');
    expect(validateExtend(d, noPaths)['pairs.0.addresses']).toContain('there is no comm path between node2 and node1; create one');
  });
});

describe('Unextend, Delete, In Service, Out of Service', () => {
  const c = view([
    server('node1', [mirror('dr', 'node1', 'source', { targets: [target('node2'), target('node3', { status: 'Resyncing', state: 'resyncing', percentSynced: 42.5 })] })]),
    server('node2', [mirror('dr', 'node2', 'target')]),
    server('node3', [mirror('dr', 'node3', 'target', { consistent: false })]),
  ]);
  it('unextend: never where it is in service', () => {
    expect(validateUnextend(c, 'dr', 'node2')).toEqual({});
    expect(validateUnextend(c, 'dr', 'node1').server).toContain('node1 is where "dr" is in service; it cannot be unextended there');
    expect(validateUnextend(view([server('node1', [mirror('dr', 'node1', 'source')]), server('node4', [])]), 'dr', 'node4').server).toBe('"dr" is not extended to node4; its targets: none');
    expect(validateUnextend(c, 'nope', 'node2').tag).toBe('there is no DataKeeper resource "nope" in the cluster');
  });
  it('delete needs the source, and never takes another mirror with it', () => {
    expect(validateDelete(c, 'dr')).toEqual({});
    const db: ResourceDatabase = { version: 1, flags: [], resources: [
      { tag: 'dr', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [] },
      { tag: 'fs', kind: 'filesystem', dependsOn: ['dr'], switchback: 'intelligent', instances: [] },
      { tag: 'dr2', kind: 'datakeeper', dependsOn: ['fs'], switchback: 'intelligent', instances: [] },
    ] };
    expect(validateDelete(c, 'dr', db).tag).toBe('"dr2" (a DataKeeper hierarchy of its own) depends on "dr"; delete that dependency first (Edit → Resource → Delete Dependency)');
    expect(validateDelete(view([server('node2', [mirror('dr', 'node2', 'target')])]), 'dr').tag).toContain('has no source in the cluster');
  });
  it('in service on a target is a switchover, refused while it resyncs with the manual\'s reason', () => {
    expect(inServiceRefusal(c, 'dr', 'node2')).toBe('');
    expect(inServiceRefusal(c, 'dr', 'node3')).toBe('node3 is being resynchronized from node1 (42.5% synced): manual switchover is prevented for DataKeeper resources during resynchronization, to avoid data corruption. Wait until its state is Target');
    expect(inServiceRefusal(c, 'dr', 'node1')).toBe('"dr" is already in service on node1');
    expect(outOfServiceRefusal(c, 'dr', 'node2')).toBe('"dr" is not in service on node2; it is on node1');
    expect(outOfServiceRefusal(c, 'dr', 'node1')).toBe('');
  });
});

describe('Create and Delete Dependency', () => {
  const db: ResourceDatabase = {
    version: 1, flags: [], resources: [
      { tag: 'dr', kind: 'datakeeper', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 2 }] },
      { tag: 'fs', kind: 'filesystem', dependsOn: ['dr'], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 2 }] },
      { tag: 'app', kind: 'generic', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }, { server: 'n2', priority: 2 }] },
      { tag: 'lone', kind: 'generic', dependsOn: [], switchback: 'intelligent', instances: [{ server: 'n1', priority: 1 }] },
    ],
  };
  it('create: exists, not itself, no loop, same servers', () => {
    expect(validateCreateDependency(db, 'app', 'fs')).toEqual({});
    expect(validateCreateDependency(db, 'app', 'app').child).toBe('a resource cannot depend on itself');
    expect(validateCreateDependency(db, 'dr', 'fs').child).toBe('"fs" depends on "dr" already; the dependency would make a loop');
    expect(validateCreateDependency(db, 'fs', 'dr').child).toBe('"fs" already depends on "dr"');
    expect(validateCreateDependency(db, 'app', 'lone').child).toContain('"lone" is defined on n1 but "app" on n1, n2');
    expect(validateCreateDependency(db, 'ghost', '').parent).toBe('there is no resource "ghost"');
  });
  it('delete: only an existing dependency, never the file system from its mirror', () => {
    expect(validateDeleteDependency({ ...db, resources: db.resources.map((r) => (r.tag === 'app' ? { ...r, dependsOn: ['fs'] } : r)) }, 'app', 'fs')).toEqual({});
    expect(validateDeleteDependency(db, 'app', 'fs').child).toBe('"app" does not depend on "fs"; its children: none');
    expect(validateDeleteDependency(db, 'fs', 'dr').child).toBe('"fs" is the file system on "dr"; delete the hierarchy instead');
  });
});

describe('Open Local Lab', () => {
  it('2 to 8 nodes', () => {
    expect(validateLabNodes('3')).toEqual({});
    expect(validateLabNodes('9')).toEqual({ nodes: 'the lab has 2 to 8 nodes, not "9"' });
    expect(validateLabNodes('two').nodes).toBe('the lab has 2 to 8 nodes, not "two"');
  });
});
