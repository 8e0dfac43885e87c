// The manual's three DataKeeper resource types as data: which fields the Create Resource Hierarchy
// wizard asks for, their defaults, and the checks a request must pass before anything is touched.
// Pure: the facts about the node (disks, mounted file systems, tags in use) are passed in. Shared by the
// agent (which checks a request before touching anything) and the wizard (which checks each step).
import { posixBasename, posixIsAbsolute, posixJoin, posixNormalize } from './posix-path.js';
import {
  FILE_SYSTEM_TYPES, HIERARCHY_TYPE_NAMES, HIERARCHY_TYPES, type DiskCandidate, type FieldError, type FileSystemType,
  SYSTEM_MOUNT_POINTS, type HierarchyField, type HierarchyRequest, type HierarchyType, type MountedFileSystemCandidate,
} from './hierarchy.js';

export interface FieldSpec {
  field: HierarchyField;
  /** The manual's label. */
  label: string;
  /** The manual's tip, shortened. */
  tip: string;
}

const FIELDS: Record<HierarchyField, FieldSpec> = {
  switchback: { field: 'switchback', label: 'Switchback Type', tip: 'Must be intelligent: after a failover, an administrator switches the resource back by hand.' },
  server: { field: 'server', label: 'Server', tip: 'The server where the NetRAID device is created (typically the primary server).' },
  type: { field: 'type', label: 'Hierarchy Type', tip: 'Replicate New File System, Replicate Existing File System or DataKeeper Resource.' },
  sourceDisk: { field: 'sourceDisk', label: 'Source Disk or Partition', tip: 'Disks and partitions that are not mounted, not swap, not already protected, and not a system disk.' },
  mountPoint: { field: 'mountPoint', label: 'Mount Point', tip: 'Where the file system on the NetRAID device is mounted.' },
  fileSystemType: { field: 'fileSystemType', label: 'New File System Type', tip: 'The file system made on the NetRAID device.' },
  dataKeeperTag: { field: 'dataKeeperTag', label: 'DataKeeper Resource Tag', tip: 'A unique name for the DataKeeper resource (the mirror).' },
  fileSystemTag: { field: 'fileSystemTag', label: 'File System Resource Tag', tip: 'The name of the file system resource above the DataKeeper resource.' },
  bitmapFile: { field: 'bitmapFile', label: 'Bitmap File', tip: 'The intent log. None: every resynchronization is a full resync.' },
  asyncReplication: { field: 'asyncReplication', label: 'Enable Asynchronous Replication ?', tip: 'Yes if any target may later be extended as asynchronous.' },
};

const COMMON_FIELDS: HierarchyField[] = ['switchback', 'server', 'type'];
const TAIL_FIELDS: HierarchyField[] = ['bitmapFile', 'asyncReplication'];

const specs = (fields: HierarchyField[]): FieldSpec[] => [...COMMON_FIELDS, ...fields, ...TAIL_FIELDS].map((f) => FIELDS[f]);

/** The wizard's fields for each type, in the manual's order. */
export const HIERARCHY_FIELDS: Record<HierarchyType, FieldSpec[]> = {
  new: specs(['sourceDisk', 'mountPoint', 'fileSystemType', 'dataKeeperTag', 'fileSystemTag']),
  existing: specs(['mountPoint', 'dataKeeperTag', 'fileSystemTag']),
  device: specs(['sourceDisk', 'dataKeeperTag']),
};

/** What each type does, in the manual's words, for the wizard's confirmation screen. */
export const HIERARCHY_DESCRIPTIONS: Record<HierarchyType, string> = {
  new: `${HIERARCHY_TYPE_NAMES.new}: creates the NetRAID device on the source disk or partition, formats it and mounts it at the mount point. CAUTION: all data on the disk or partition is deleted.`,
  existing: `${HIERARCHY_TYPE_NAMES.existing}: unmounts the file system mounted at the mount point, creates the NetRAID device on its disk or partition without deleting data, and mounts the mount point on the NetRAID device.`,
  device: `${HIERARCHY_TYPE_NAMES.device}: creates only the NetRAID device, with no file system (for example for a database using a raw device).`,
};

const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Default tags and bitmap file, as in the manual's example: a file system mounted at /sdr as ext3 is
 * `ext3-sdr`, its DataKeeper resource `datarep-ext3-sdr`. A DataKeeper Resource with no file system
 * is named after its disk (`datarep-sdb1`).
 */
export function hierarchyDefaults(req: Pick<HierarchyRequest, 'type' | 'sourceDisk' | 'mountPoint' | 'fileSystemType'>, bitmapDir: string, existingFsType?: string): Pick<HierarchyRequest, 'dataKeeperTag' | 'fileSystemTag' | 'bitmapFile' | 'switchback' | 'asyncReplication'> {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'root';
  let fileSystemTag: string | undefined;
  let dataKeeperTag: string;
  if (req.type === 'device') {
    dataKeeperTag = `datarep-${clean(posixBasename(req.sourceDisk ?? 'disk'))}`;
  } else {
    const fstype = req.type === 'new' ? (req.fileSystemType ?? 'ext4') : (existingFsType ?? 'fs');
    fileSystemTag = `${fstype}-${clean(posixBasename(req.mountPoint ?? '') || 'fs')}`;
    dataKeeperTag = `datarep-${fileSystemTag}`;
  }
  return { switchback: 'intelligent', dataKeeperTag, fileSystemTag, bitmapFile: posixJoin(bitmapDir, `${dataKeeperTag}.bitmap`), asyncReplication: false };
}

/** Facts about the node a request is checked against. */
export interface HierarchyContext {
  /** From eligibleDisks(): every disk and partition, eligible or not. */
  disks: DiskCandidate[];
  /** From replicableFileSystems(). */
  fileSystems: MountedFileSystemCandidate[];
  /** Mount points currently in use on the node. */
  mountPoints: string[];
  /** Tags of resources (mirrors, file system resources) already on the node. */
  tagsInUse: string[];
  /** From availableFileSystemTypes(). */
  fileSystemTypes: FileSystemType[];
  /** This node's name: a hierarchy is created on the server it will be the source of. */
  node: string;
}

/** Every problem with a request, each naming its field; empty when it may be created. */
export function validateHierarchy(req: Partial<HierarchyRequest>, ctx: HierarchyContext): FieldError[] {
  const errors: FieldError[] = [];
  const err = (field: HierarchyField, message: string) => errors.push({ field, message });
  const type = req.type;
  if (!type || !HIERARCHY_TYPES.includes(type)) {
    err('type', `choose a Hierarchy Type: ${HIERARCHY_TYPES.map((t) => `${t} (${HIERARCHY_TYPE_NAMES[t]})`).join(', ')}`);
    return errors;
  }
  if (req.switchback !== 'intelligent') {
    err('switchback', req.switchback === 'automatic'
      ? 'Automatic Switchback is not supported for DataKeeper resources (the manual\'s caution); choose intelligent'
      : 'choose a Switchback Type: intelligent');
  }
  if (!req.server) err('server', 'choose the server where the NetRAID device is created');
  else if (req.server !== ctx.node) err('server', `this is ${ctx.node}; create the hierarchy on ${req.server} itself (its agent)`);

  if (type === 'new' || type === 'device') {
    const d = req.sourceDisk ? ctx.disks.find((c) => c.path === req.sourceDisk) : undefined;
    if (!req.sourceDisk) err('sourceDisk', 'choose a Source Disk or Partition');
    else if (!d) err('sourceDisk', `${req.sourceDisk} is not a disk or partition on ${ctx.node}`);
    else if (!d.eligible) err('sourceDisk', `${d.path} cannot be used: ${d.reasons.join('; ')}`);
  }
  if (type === 'new') {
    const mp = req.mountPoint;
    if (!mp) err('mountPoint', 'enter the New Mount Point (an absolute path such as /srv/data)');
    else if (!posixIsAbsolute(mp)) err('mountPoint', `${mp} is not an absolute path; enter one such as /srv/data`);
    else if (SYSTEM_MOUNT_POINTS.includes(posixNormalize(mp)) || posixNormalize(mp).startsWith('/proc')) err('mountPoint', `${mp} is a system location; choose another mount point`);
    else if (ctx.mountPoints.includes(posixNormalize(mp))) err('mountPoint', `${mp} is already a mount point; choose a free one`);
    if (!req.fileSystemType) err('fileSystemType', `choose a New File System Type: ${ctx.fileSystemTypes.join(', ')}`);
    else if (!FILE_SYSTEM_TYPES.includes(req.fileSystemType)) err('fileSystemType', `${req.fileSystemType} is not supported; choose ${FILE_SYSTEM_TYPES.join(', ')}`);
    else if (!ctx.fileSystemTypes.includes(req.fileSystemType)) err('fileSystemType', `mkfs.${req.fileSystemType} is not installed on ${ctx.node}${req.fileSystemType === 'xfs' ? ' (apt-get install xfsprogs)' : ''}; choose ${ctx.fileSystemTypes.join(', ')}`);
  }
  if (type === 'existing') {
    const mp = req.mountPoint ? posixNormalize(req.mountPoint) : undefined;
    const f = mp ? ctx.fileSystems.find((c) => c.mountPoint === mp) : undefined;
    if (!mp) err('mountPoint', 'choose the Existing Mount Point of the file system to replicate');
    else if (!f) err('mountPoint', `nothing is mounted from a disk at ${mp}; mount the file system there first, or choose Replicate New File System`);
    else if (!f.eligible) err('mountPoint', `${mp} cannot be replicated: ${f.reasons.join('; ')}`);
  }

  const tags: Array<[HierarchyField, string | undefined]> = [['dataKeeperTag', req.dataKeeperTag]];
  if (type !== 'device') tags.push(['fileSystemTag', req.fileSystemTag]);
  for (const [field, tag] of tags) {
    const label = FIELDS[field].label;
    if (!tag) err(field, `enter the ${label}`);
    else if (!TAG_RE.test(tag)) err(field, `${label} "${tag}" may hold only letters, digits, ".", "_" and "-" (at most 64, starting with a letter or digit)`);
    else if (ctx.tagsInUse.includes(tag)) err(field, `${label} "${tag}" is already in use on ${ctx.node}; choose a unique tag`);
  }
  if (type !== 'device' && req.dataKeeperTag && req.dataKeeperTag === req.fileSystemTag) err('fileSystemTag', 'the File System Resource Tag must differ from the DataKeeper Resource Tag');

  if (!req.bitmapFile) err('bitmapFile', 'choose a Bitmap File, or none (every resync is then a full resync)');
  else if (req.bitmapFile !== 'none' && !posixIsAbsolute(req.bitmapFile)) err('bitmapFile', `${req.bitmapFile} is not an absolute path; enter one, or none`);
  if (typeof req.asyncReplication !== 'boolean') err('asyncReplication', 'answer Enable Asynchronous Replication: yes or no');
  return errors;
}
