// The pure parts of resource creation: the manual's disk filters over an lsblk snapshot, mountinfo and
// /proc/swaps parsing, the resource types' defaults and field checks.
import { describe, expect, it } from 'vitest';
import type { DiskCandidate } from '../../common/hierarchy.js';
import { eligibleDisks, parseSwaps, replicableFileSystems, type DiskSnapshot, type LsblkDevice } from '../../agent/resources/eligible-disks.js';
import { parseMountInfo } from '../../agent/resources/filesystem.js';
import { HIERARCHY_FIELDS, hierarchyDefaults, validateHierarchy, type HierarchyContext } from '../../agent/resources/hierarchy-types.js';

const GiB = 1024 ** 3;
const dev = (name: string, type: string, size: number, extra: Partial<LsblkDevice> = {}): LsblkDevice => ({
  name, path: `/dev/${name.replace(/^vg-/, 'mapper/vg-')}`, size, type, mountpoints: [null], fstype: null, ro: false, ...extra,
});

const MOUNTINFO = [
  '22 1 8:1 / /boot rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '23 1 8:3 / /srv/my\\040data rw,relatime shared:2 - ext4 /dev/sda3 rw',
  '24 1 253:0 / /data rw,relatime shared:3 - xfs /dev/mapper/vg-data rw',
  '25 1 0:22 / /proc rw,nosuid - proc proc rw',
  '26 1 8:3 /sub /bind rw,relatime - ext4 /dev/sda3 rw',
  '27 1 8:65 / /old ro,relatime - ext4 /dev/sde1 ro',
  '28 1 8:81 / /fat rw,relatime - vfat /dev/sdf1 rw',
  '29 1 8:97 / /free rw,relatime - ext3 /dev/sdg1 rw',
].join('\n');

const snapshot: DiskSnapshot = {
  blockDevices: [
    dev('sda', 'disk', 100 * GiB, {
      children: [
        dev('sda1', 'part', GiB, { mountpoints: ['/boot'], fstype: 'ext4', pkname: 'sda' }),
        dev('sda2', 'part', 10 * GiB, { fstype: 'ext4', pkname: 'sda' }),
        dev('sda3', 'part', 20 * GiB, { mountpoints: ['/srv/my data', '/bind'], fstype: 'ext4', pkname: 'sda' }),
        dev('sda4', 'part', 4 * GiB, { fstype: 'swap', pkname: 'sda' }),
      ],
    }),
    dev('sdb', 'disk', 5 * GiB, { ro: true }),
    dev('sdc', 'disk', 50 * GiB, { fstype: 'LVM2_member', children: [dev('vg-data', 'lvm', 50 * GiB, { mountpoints: ['/data'], fstype: 'xfs', pkname: 'sdc' })] }),
    dev('sdd', 'disk', 8 * GiB),
    dev('sr0', 'rom', 1024),
    dev('zram0', 'disk', 0),
    dev('loop7', 'loop', 2 * GiB),
  ],
  swaps: parseSwaps('Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda4                               partition\t4194300\t\t0\t\t-2\n'),
  mounts: parseMountInfo(MOUNTINFO),
};

const byPath = (list: DiskCandidate[]) => new Map(list.map((c) => [c.path, c]));

describe('eligibleDisks', () => {
  const list = byPath(eligibleDisks(snapshot, { protectedDevices: new Set(['/dev/loop7']) }));

  it('offers only free partitions and whole disks without partitions', () => {
    expect([...list.values()].filter((c) => c.eligible).map((c) => c.path)).toEqual(['/dev/sda2', '/dev/sdd']);
    expect(list.get('/dev/sda2')).toEqual({ path: '/dev/sda2', name: 'sda2', kind: 'part', size: 10 * GiB, fstype: 'ext4', eligible: true, reasons: [] });
  });

  it('says why every other device is missing', () => {
    expect(list.get('/dev/sda')!.reasons).toEqual([
      "holds the system's /boot",
      '/dev/sda3 (on it) is mounted at /srv/my data, /bind',
      '/dev/sda4 (on it) is in use as swap',
      'has partitions: choose one of /dev/sda1, /dev/sda2, /dev/sda3, /dev/sda4',
    ]);
    expect(list.get('/dev/sda1')!.reasons).toEqual(["holds the system's /boot"]);
    expect(list.get('/dev/sda3')!.reasons).toEqual(['mounted at /srv/my data', 'mounted at /bind']);
    expect(list.get('/dev/sda4')!.reasons).toEqual(['in use as swap']);
    expect(list.get('/dev/sdb')!.reasons).toEqual(['read-only']);
    expect(list.get('/dev/sdc')!.reasons).toEqual(['/dev/mapper/vg-data (on it) is mounted at /data', 'in use by /dev/mapper/vg-data (lvm)']);
    expect(list.get('/dev/mapper/vg-data')!.reasons).toEqual(['mounted at /data']);
    expect(list.get('/dev/sr0')!.reasons).toEqual(['a CD/DVD drive']);
    expect(list.get('/dev/zram0')!.reasons).toEqual(['a compressed RAM device (zram), gone at reboot', 'empty (size 0)']);
    expect(list.get('/dev/loop7')!.reasons).toEqual(['already protected by Tandem (a mirror, target or NetRAID device)']);
  });

  it('a device whose contents could not be probed (blkid hung) is listed, not offered, and does not spoil the list', () => {
    const hung = { blockDevices: [dev('loop6', 'loop', GiB, { probeError: 'blkid -p … /dev/loop6 did not finish within 15 s' }), dev('loop5', 'loop', GiB)], swaps: [], mounts: [] };
    const l = byPath(eligibleDisks(hung, { protectedDevices: new Set() }));
    expect(l.get('/dev/loop6')!.reasons).toEqual(['its contents could not be read (blkid -p … /dev/loop6 did not finish within 15 s); check the device before using it']);
    expect(l.get('/dev/loop5')!.eligible).toBe(true);
  });

  it('for a target, leaves out devices smaller than the source', () => {
    const t = byPath(eligibleDisks(snapshot, { protectedDevices: new Set(), minSize: 9 * GiB }));
    expect(t.get('/dev/sdd')!.reasons).toEqual([`smaller than the source (${8 * GiB} < ${9 * GiB} bytes)`]);
    expect(t.get('/dev/sda2')!.eligible).toBe(true);
  });
});

describe('replicableFileSystems', () => {
  it('lists mounted file systems on disks, eligible or with reasons', () => {
    const fsList = replicableFileSystems({ ...snapshot, blockDevices: [...snapshot.blockDevices, dev('sde', 'disk', GiB, { children: [dev('sde1', 'part', GiB)] })] }, { protectedDevices: new Set(['/dev/sdg1']) });
    expect(fsList).toEqual([
      { mountPoint: '/boot', device: '/dev/sda1', fstype: 'ext4', eligible: false, reasons: ['a system file system (/boot)'] },
      { mountPoint: '/srv/my data', device: '/dev/sda3', fstype: 'ext4', eligible: false, reasons: ['its device is also mounted at /bind'] },
      { mountPoint: '/data', device: '/dev/mapper/vg-data', fstype: 'xfs', eligible: true, reasons: [] },
      { mountPoint: '/bind', device: '/dev/sda3', fstype: 'ext4', eligible: false, reasons: ['a bind mount of /sub', 'its device is also mounted at /srv/my data'] },
      { mountPoint: '/old', device: '/dev/sde1', fstype: 'ext4', eligible: false, reasons: ['read-only'] },
      { mountPoint: '/fat', device: '/dev/sdf1', fstype: 'vfat', eligible: false, reasons: ['file system type vfat is not supported (ext4, ext3, ext2, xfs)'] },
      { mountPoint: '/free', device: '/dev/sdg1', fstype: 'ext3', eligible: false, reasons: ['/dev/sdg1 is already protected by Tandem'] },
    ]);
  });
});

describe('resource types', () => {
  it('have the manual\'s fields in its order', () => {
    expect(HIERARCHY_FIELDS.new.map((f) => f.label)).toEqual([
      'Switchback Type', 'Server', 'Hierarchy Type', 'Source Disk or Partition', 'Mount Point', 'New File System Type',
      'DataKeeper Resource Tag', 'File System Resource Tag', 'Bitmap File', 'Enable Asynchronous Replication ?',
    ]);
    expect(HIERARCHY_FIELDS.existing.map((f) => f.field)).toEqual(['switchback', 'server', 'type', 'mountPoint', 'dataKeeperTag', 'fileSystemTag', 'bitmapFile', 'asyncReplication']);
    expect(HIERARCHY_FIELDS.device.map((f) => f.field)).toEqual(['switchback', 'server', 'type', 'sourceDisk', 'dataKeeperTag', 'bitmapFile', 'asyncReplication']);
  });

  it('default tags follow the manual\'s example (ext3 at /sdr: ext3-sdr under datarep-ext3-sdr)', () => {
    expect(hierarchyDefaults({ type: 'new', mountPoint: '/sdr', fileSystemType: 'ext3', sourceDisk: '/dev/sdr1' }, '/var/lib/tandem/bitmaps')).toEqual({
      switchback: 'intelligent', fileSystemTag: 'ext3-sdr', dataKeeperTag: 'datarep-ext3-sdr', bitmapFile: '/var/lib/tandem/bitmaps/datarep-ext3-sdr.bitmap', asyncReplication: false,
    });
    expect(hierarchyDefaults({ type: 'existing', mountPoint: '/srv/my data' }, '/b', 'xfs').dataKeeperTag).toBe('datarep-xfs-my-data');
    expect(hierarchyDefaults({ type: 'device', sourceDisk: '/dev/sdb1' }, '/b')).toMatchObject({ dataKeeperTag: 'datarep-sdb1', fileSystemTag: undefined });
  });

  const ctx: HierarchyContext = {
    disks: eligibleDisks(snapshot, { protectedDevices: new Set() }),
    fileSystems: replicableFileSystems(snapshot, { protectedDevices: new Set() }),
    mountPoints: snapshot.mounts.map((m) => m.mountPoint),
    tagsInUse: ['datarep-old'],
    fileSystemTypes: ['ext4', 'ext3'],
    node: 'adam',
  };

  it('accepts a complete request of each type', () => {
    const base = { switchback: 'intelligent', server: 'adam', bitmapFile: 'none', asyncReplication: true } as const;
    expect(validateHierarchy({ ...base, type: 'new', sourceDisk: '/dev/sda2', mountPoint: '/srv/new', fileSystemType: 'ext4', dataKeeperTag: 'datarep-ext4-new', fileSystemTag: 'ext4-new' }, ctx)).toEqual([]);
    expect(validateHierarchy({ ...base, type: 'existing', mountPoint: '/data', dataKeeperTag: 'datarep-xfs-data', fileSystemTag: 'xfs-data' }, ctx)).toEqual([]);
    expect(validateHierarchy({ ...base, type: 'device', sourceDisk: '/dev/sdd', dataKeeperTag: 'datarep-sdd', bitmapFile: '/var/lib/tandem/bitmaps/x' }, ctx)).toEqual([]);
  });

  it('names each wrong field and what to do', () => {
    expect(validateHierarchy({ type: 'new', switchback: 'automatic', server: 'eve', sourceDisk: '/dev/sda3', mountPoint: '/boot', fileSystemType: 'xfs', dataKeeperTag: 'datarep-old', fileSystemTag: 'bad tag', bitmapFile: 'rel/path' }, ctx)).toEqual([
      { field: 'switchback', message: "Automatic Switchback is not supported for DataKeeper resources (the manual's caution); choose intelligent" },
      { field: 'server', message: 'this is adam; create the hierarchy on eve itself (its agent)' },
      { field: 'sourceDisk', message: '/dev/sda3 cannot be used: mounted at /srv/my data; mounted at /bind' },
      { field: 'mountPoint', message: '/boot is a system location; choose another mount point' },
      { field: 'fileSystemType', message: 'mkfs.xfs is not installed on adam (apt-get install xfsprogs); choose ext4, ext3' },
      { field: 'dataKeeperTag', message: 'DataKeeper Resource Tag "datarep-old" is already in use on adam; choose a unique tag' },
      { field: 'fileSystemTag', message: 'File System Resource Tag "bad tag" may hold only letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)' },
      { field: 'bitmapFile', message: 'rel/path is not an absolute path; enter one, or none' },
      { field: 'asyncReplication', message: 'answer Enable Asynchronous Replication: yes or no' },
    ]);
    expect(validateHierarchy({ type: 'existing', switchback: 'intelligent', server: 'adam', mountPoint: '/boot', dataKeeperTag: 'a', fileSystemTag: 'a', bitmapFile: 'none', asyncReplication: false }, ctx)).toEqual([
      { field: 'mountPoint', message: '/boot cannot be replicated: a system file system (/boot)' },
      { field: 'fileSystemTag', message: 'the File System Resource Tag must differ from the DataKeeper Resource Tag' },
    ]);
    expect(validateHierarchy({ type: 'existing', switchback: 'intelligent', server: 'adam', mountPoint: '/nothing', dataKeeperTag: 'a', fileSystemTag: 'b', bitmapFile: 'none', asyncReplication: false }, ctx)).toEqual([
      { field: 'mountPoint', message: 'nothing is mounted from a disk at /nothing; mount the file system there first, or choose Replicate New File System' },
    ]);
    expect(validateHierarchy({ type: 'device', switchback: 'intelligent', server: 'adam', sourceDisk: '/dev/sdz', dataKeeperTag: 'x', bitmapFile: 'none', asyncReplication: false }, ctx)).toEqual([
      { field: 'sourceDisk', message: '/dev/sdz is not a disk or partition on adam' },
    ]);
    expect(validateHierarchy({}, ctx)).toEqual([{ field: 'type', message: 'choose a Hierarchy Type: new (Replicate New File System), existing (Replicate Existing File System), device (DataKeeper Resource)' }]);
  });
});
