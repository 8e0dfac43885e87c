// Resource hierarchy shapes shared by the agent (which checks and creates them) and the console's
// Create Resource Hierarchy wizard (which asks for them). The manual's three DataKeeper resource types.

/** `new`: Replicate New File System; `existing`: Replicate Existing File System; `device`: DataKeeper Resource. */
export type HierarchyType = 'new' | 'existing' | 'device';

export const HIERARCHY_TYPES: readonly HierarchyType[] = ['new', 'existing', 'device'];

/** The manual's names, as the wizard shows them. */
export const HIERARCHY_TYPE_NAMES: Record<HierarchyType, string> = {
  new: 'Replicate New File System',
  existing: 'Replicate Existing File System',
  device: 'DataKeeper Resource',
};

/** The manual: only intelligent switchback is supported for DataKeeper resources. */
export type SwitchbackType = 'intelligent' | 'automatic';

/** File system types Tandem can create or take over ("LifeKeeper supported file system types"). */
export type FileSystemType = 'ext4' | 'ext3' | 'xfs';

export const FILE_SYSTEM_TYPES: readonly FileSystemType[] = ['ext4', 'xfs', 'ext3'];

/** Mount points of the system's own file systems: their disks are never offered (the manual: root, boot, /proc, …). */
export const SYSTEM_MOUNT_POINTS: readonly string[] = ['/', '/boot', '/boot/efi', '/usr', '/var', '/var/log', '/opt', '/tmp'];

/** What the wizard collects; which fields apply depends on `type` (see the agent's hierarchy-types). */
export interface HierarchyRequest {
  type: HierarchyType;
  switchback: SwitchbackType;
  /** The server where the NetRAID device is created (the mirror's source). */
  server: string;
  /** new, device: the source disk or partition (a /dev path). */
  sourceDisk?: string;
  /** new: the New Mount Point; existing: the Existing Mount Point. */
  mountPoint?: string;
  /** new: the New File System Type. */
  fileSystemType?: FileSystemType;
  /** The DataKeeper Resource Tag: the mirror's tag. */
  dataKeeperTag: string;
  /** new, existing: the File System Resource Tag. */
  fileSystemTag?: string;
  /** A path, or 'none' (no intent log: every resync is full). */
  bitmapFile: string;
  /** Enable Asynchronous Replication: whether any target may later be extended as asynchronous. */
  asyncReplication: boolean;
}

export type HierarchyField = keyof HierarchyRequest;

/** One problem with one field, worded for the wizard to show beside it. */
export interface FieldError {
  field: HierarchyField;
  message: string;
}

/** A disk or partition as the Source Disk or Partition list sees it, eligible or not (and why not). */
export interface DiskCandidate {
  path: string;
  name: string;
  /** lsblk's TYPE: disk, part, loop, lvm, crypt, raid1, rom, … */
  kind: string;
  size: number;
  fstype: string | null;
  eligible: boolean;
  /** Empty when eligible; otherwise each reason in words ("mounted at /srv", "in use as swap"). */
  reasons: string[];
}

/** A mounted file system as the Existing Mount Point list sees it. */
export interface MountedFileSystemCandidate {
  mountPoint: string;
  device: string;
  fstype: string;
  eligible: boolean;
  reasons: string[];
}
