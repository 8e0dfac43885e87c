// The rewind side of one target copy: its journal (opened, kept or dropped as the settings say) and
// the rewound view the administrator explores (NBD export, and for a file-system resource a read-only
// mount), never more than one at a time.
import fs from 'node:fs';
import path from 'node:path';
import type { BlockStore } from '../storage/block-store.js';
import { makeExport } from '../nbd/export.js';
import { NbdServer, SimpleCatalog } from '../nbd/server.js';
import { attachExport } from '../resources/device-attach.js';
import { findMount, mountFileSystem, unmountFileSystem } from '../resources/filesystem.js';
import type { Logger } from '../log.js';
import { isoMicro, RewindJournal } from './journal.js';
import { RewoundView, ScratchLayer } from './rewound-view.js';

export interface RewindSettings {
  tag: string;
  logdir: string;
  logmax: number;
  /** The journal folder kept continuously so far ('' or absent: none). */
  rewindLogKept?: string;
}

export interface ViewInfo {
  time: number;
  socket: string;
  exportName: string;
  changedBlocks: number;
  device: string | null;
  mountPoint: string | null;
}

interface OpenView extends ViewInfo {
  view: RewoundView;
  server: NbdServer;
  takeDown: (() => Promise<void>) | null;
}

export class RewindError extends Error {}

export const journalDir = (logdir: string, tag: string): string => path.join(logdir, `${tag}.rewind`);

export class TargetRewind {
  journal: RewindJournal | null = null;
  /** Why the log the settings ask for is not kept, or ''. */
  error = '';
  private open: OpenView | null = null;

  constructor(private readonly tag: string, private readonly runDir: string, private readonly log: Logger) {}

  get view(): ViewInfo | null {
    if (!this.open) return null;
    const { time, socket, exportName, changedBlocks, device, mountPoint } = this.open;
    return { time, socket, exportName, changedBlocks, device, mountPoint };
  }

  /**
   * Makes the journal match the settings (at start and at each connection of a source: the manual's
   * "takes effect when the mirror is paused and resumed"). A log that was not kept continuously — a
   * new folder, or one disabled meanwhile — starts empty. `refuse` says why a folder may not be used.
   * Returns the folder now kept ('' for none), for the record.
   */
  async sync(s: RewindSettings, refuse: (dir: string) => string | null): Promise<string> {
    const want = s.logdir ? journalDir(s.logdir, s.tag) : '';
    if (this.journal && this.journal.dir === want) {
      this.journal.maxBytes = s.logmax;
      return want;
    }
    if (this.journal) {
      await this.closeView();
      const old = this.journal;
      this.journal = null;
      await old.remove(); // its history stops here: it could never be continued
    }
    this.error = '';
    if (!want) return '';
    const why = refuse(s.logdir);
    if (why) {
      this.error = why;
      this.log.error(`${s.tag}: rewind log not kept: ${why}`);
      return '';
    }
    try {
      this.journal = RewindJournal.open(want, { maxBytes: s.logmax, fresh: s.rewindLogKept !== want, log: this.log });
    } catch (err) {
      this.error = `the rewind log in ${want} cannot be opened: ${(err as Error).message}`;
      this.log.error(`${s.tag}: ${this.error}`);
      return '';
    }
    return want;
  }

  requireJournal(): RewindJournal {
    if (this.journal) return this.journal;
    throw new RewindError(this.error
      ? `this target keeps no rewind log for "${this.tag}": ${this.error}`
      : `this target keeps no rewind log for "${this.tag}"; set one with: mirror_settings ${this.tag} logdir DIR, then pause and resume the mirror`);
  }

  /** The time `t`, checked against what the log holds. */
  checkTime(t: number): void {
    const j = this.requireJournal();
    if (!Number.isFinite(t)) throw new RewindError('the rewind time is not a number');
    if (t < j.startTime) {
      throw new RewindError(`the rewind log of "${this.tag}" begins at ${isoMicro(j.startTime)}; ${isoMicro(t)} is before it. Choose a time from ${isoMicro(j.startTime)} to ${isoMicro(j.endTime)} (tandem bookmarks ${this.tag})`);
    }
  }

  /** Opens the view at `time` (closing one already open); mounts it read-only for a file-system resource. */
  async openView(time: number, store: BlockStore, fileSystem: { mountPoint: string; fstype: string } | null): Promise<ViewInfo> {
    this.checkTime(time);
    await this.closeView();
    const journal = this.requireJournal();
    const view = new RewoundView(store, journal, journal.overlayAt(time), time, store.size);
    const socket = path.join(this.runDir, `${this.tag}.rewind.nbd.sock`);
    // The export users get is read-only. A file system that must replay its own journal to mount
    // (ext4 does, even read-only) gets a second export with a throw-away write layer in memory.
    const scratchName = `${this.tag}.scratch`;
    const server = new NbdServer(new SimpleCatalog([
      makeExport(this.tag, view, `Tandem target ${this.tag} rewound to ${isoMicro(time)} (read-only)`),
      makeExport(scratchName, new ScratchLayer(view), `Tandem target ${this.tag} rewound to ${isoMicro(time)}, for mounting (writes discarded)`),
    ]), this.log.child(`[${this.tag} rewind view]`));
    try {
      await server.listenUnix(socket);
    } catch (err) {
      await view.close();
      throw err;
    }
    const open: OpenView = { time, socket, exportName: this.tag, changedBlocks: view.changedBlocks, device: null, mountPoint: null, view, server, takeDown: null };
    this.open = open;
    if (fileSystem) {
      try {
        const attached = await attachExport({ socket, exportName: scratchName, workDir: path.join(this.runDir, 'attach', `${this.tag}.rewind`) });
        // The manual mounts it at the normal mount point; where that is taken (the source on the
        // same machine, in tests and labs), under the agent's run folder.
        const mp = findMount(fileSystem.mountPoint) ? path.join(this.runDir, 'rewind', this.tag) : fileSystem.mountPoint;
        try {
          fs.mkdirSync(mp, { recursive: true });
          await mountFileSystem(attached.device, mp, { fstype: fileSystem.fstype, readOnly: true, extraOptions: fileSystem.fstype === 'xfs' ? ['nouuid'] : [] });
        } catch (err) {
          await attached.detach().catch(() => undefined);
          throw err;
        }
        open.device = attached.device;
        open.mountPoint = mp;
        open.takeDown = async () => {
          await unmountFileSystem(mp);
          await attached.detach();
        };
      } catch (err) {
        await this.closeView();
        throw new RewindError(`the view at ${isoMicro(time)} is exported, but mounting it read-only failed: ${(err as Error).message}`);
      }
    }
    this.log.info(`${this.tag}: rewound view at ${isoMicro(time)} open (${view.changedBlocks} blocks from the log)${open.mountPoint ? `, mounted read-only at ${open.mountPoint}` : ''}`);
    return this.view as ViewInfo;
  }

  /** Unmounts, detaches and closes the view; throws (view kept) while its mount is busy. */
  async closeView(): Promise<void> {
    const o = this.open;
    if (!o) return;
    if (o.takeDown) {
      await o.takeDown();
      o.takeDown = null;
    }
    this.open = null;
    await o.server.close(1_000);
    await o.view.close();
  }

  async close(): Promise<void> {
    await this.closeView().catch((e: Error) => this.log.error(`${this.tag}: closing the rewound view: ${e.message}`));
    await this.journal?.close();
    this.journal = null;
  }

  /** Closes and deletes the log (the copy stops being a target, or is released). */
  async remove(): Promise<void> {
    await this.closeView().catch((e: Error) => this.log.error(`${this.tag}: closing the rewound view: ${e.message}`));
    await this.journal?.remove();
    this.journal = null;
  }
}
