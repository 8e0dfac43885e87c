// Creating a resource hierarchy on the source node, around the daemon's own mirror creation:
//
//   const ctx = await gatherHierarchyContext({ node, tagsInUse, protectedDevices });
//   const plan = await planResource(request, ctx);      // checks every field; for `existing`, unmounts
//   try { create the mirror: tag plan.tag, disk plan.disk, bitmap plan.bitmapFile … }
//   catch (e) { await plan.undo(); throw e; }           // `existing`: mounts the disk back where it was
//   const up = await bringUpResource(plan, { socket, workDir });  // attach; mkfs (new); mount
//
// The steps are separate so the daemon keeps the mirror's own bookkeeping and its error handling.
import type { FieldError, HierarchyRequest } from '../../common/hierarchy.js';
import { attachExport, type AttachedDevice } from './device-attach.js';
import { listDisks } from './eligible-disks.js';
import { availableFileSystemTypes, makeFileSystem, mountFileSystem, readMounts, takeOverExisting, unmountFileSystem } from './filesystem.js';
import { validateHierarchy, type HierarchyContext } from './hierarchy-types.js';

/** A request that failed its checks: `errors` name the fields, for the wizard to show beside them. */
export class HierarchyValidationError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
  }
}

/** The facts validateHierarchy needs, read from this machine. */
export async function gatherHierarchyContext(known: { node: string; tagsInUse: string[]; protectedDevices: ReadonlySet<string> }): Promise<HierarchyContext> {
  const { disks, fileSystems } = await listDisks({ protectedDevices: known.protectedDevices });
  return {
    disks, fileSystems, node: known.node, tagsInUse: known.tagsInUse,
    mountPoints: readMounts().map((m) => m.mountPoint),
    fileSystemTypes: availableFileSystemTypes(),
  };
}

export interface ResourcePlan {
  request: HierarchyRequest;
  tag: string;
  /** The disk or partition the mirror is created on. */
  disk: string;
  /** `none` or a path, as the daemon's mirror.create takes it. */
  bitmapFile: string;
  /** Where the file system goes on the NetRAID device (new, existing), and its type. */
  mountPoint: string | null;
  fstype: string | null;
  /** Puts back what planResource changed (remounts an existing file system on its disk). */
  undo(): Promise<void>;
}

/** Checks the request; for Replicate Existing File System also unmounts the file system (refusing while busy). */
export async function planResource(request: HierarchyRequest, ctx: HierarchyContext): Promise<ResourcePlan> {
  const errors = validateHierarchy(request, ctx);
  if (errors.length > 0) throw new HierarchyValidationError(errors);
  const base = { request, tag: request.dataKeeperTag, bitmapFile: request.bitmapFile, undo: async () => undefined };
  switch (request.type) {
    case 'device':
      return { ...base, disk: request.sourceDisk!, mountPoint: null, fstype: null };
    case 'new':
      return { ...base, disk: request.sourceDisk!, mountPoint: request.mountPoint!, fstype: request.fileSystemType! };
    case 'existing': {
      const existing = await takeOverExisting(request.mountPoint!);
      return {
        ...base, disk: existing.device, mountPoint: existing.mountPoint, fstype: existing.fstype,
        undo: () => mountFileSystem(existing.device, existing.mountPoint, { fstype: existing.fstype }),
      };
    }
  }
}

export interface ResourceUp {
  attached: AttachedDevice;
  /** The NetRAID device: mkfs and mount use this, never the disk. */
  device: string;
  mountPoint: string | null;
  /** Unmounts (if mounted) and detaches: taking the resource out of service on this node. */
  takeDown(): Promise<void>;
}

/**
 * After the mirror exists: attaches its export as a block device, makes the file system (new: every
 * byte of the disk is lost, the caller confirmed) and mounts it (new, existing).
 */
export async function bringUpResource(plan: ResourcePlan, where: { socket: string; workDir: string }): Promise<ResourceUp> {
  const attached = await attachExport({ socket: where.socket, exportName: plan.tag, workDir: where.workDir });
  const takeDown = async () => {
    if (plan.mountPoint) await unmountFileSystem(plan.mountPoint);
    await attached.detach();
  };
  try {
    if (plan.request.type === 'new') await makeFileSystem(attached.device, plan.request.fileSystemType!);
    if (plan.mountPoint) await mountFileSystem(attached.device, plan.mountPoint, { fstype: plan.fstype ?? undefined });
  } catch (err) {
    await attached.detach().catch(() => undefined);
    throw err;
  }
  return { attached, device: attached.device, mountPoint: plan.mountPoint, takeDown };
}
