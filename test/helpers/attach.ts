// Attaching an NBD export as a block device in tests: the agent's own device-attach (nbdfuse + losetup
// here, where the kernel has no NBD driver).
import path from 'node:path';
import { attachExport as attach, type AttachedDevice } from '../../agent/resources/device-attach.js';

export type Attached = AttachedDevice;

/** Attaches the export `exportName` ('' = the server's default) served on `socket`; the FUSE mount goes under workDir/fuse. */
export function attachExport(socket: string, workDir: string, exportName = ''): Promise<Attached> {
  return attach({ socket, exportName, workDir: path.join(workDir, 'fuse') });
}
