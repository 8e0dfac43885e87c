// A target copy of a mirror on this node, as a state machine (docs/architecture.md, "A copy's states"):
//
//   out of sync ──source connects──▶ resyncing ──generation notice (consistent)──▶ target
//      ▲   (not connected: readable through a read-only view)                        │
//      └──────────── source lost during the resync ◀──── resyncing      target ──source lost──▶ target
//                                                                        (source not connected; a failover here is safe)
//
// The transitions below are the only code that changes its consistency or generation; each that changes
// what is persisted ends in one persist. The view and the rewind log are this copy's I/O.
import { IntentLog, MAX_TARGETS } from '../intent-log/bitmap.js';
import type { BlockStore } from '../storage/block-store.js';
import { ReadOnlyView } from '../storage/read-only-view.js';
import { makeExport } from '../nbd/export.js';
import { NbdServer, SimpleCatalog } from '../nbd/server.js';
import { adopt } from '../mirror/generations.js';
import { TargetRewind } from '../rewind/target-rewind.js';
import type { GenerationNotice, Hello } from '../replication/wire.js';
import type { Logger } from '../log.js';
import { freeSlot, type TargetRecord } from './mirror-record.js';

/** What a target copy needs from the daemon that holds it. */
export interface TargetHost {
  readonly node: string;
  readonly log: Logger;
  persist(): void;
  /** This copy is still the daemon's copy of its tag (not released, not promoted). */
  holds(copy: TargetCopy): boolean;
  exportSocket(tag: string): string;
  readonly runDir: string;
  refuseLogDir(dir: string): string | null;
}

export class TargetCopy {
  log: IntentLog | null = null;
  /** The source replicating into this copy now. */
  connected: string | null = null;
  /** This agent lost its source while holding a usable copy: a failover here is safe (scenario 1). */
  lostSourceInSync = false;
  appliedBytes = 0;
  view: NbdServer | null = null;
  viewChange: Promise<void> = Promise.resolve();
  /** The rewind log and the rewound view being explored. */
  readonly rewind: TargetRewind;
  /** Settling the rewind log to the settings (see syncRewindLog). */
  rewindSync: Promise<void> = Promise.resolve();

  constructor(readonly record: TargetRecord, readonly store: BlockStore, private readonly host: TargetHost) {
    this.rewind = new TargetRewind(record.tag, host.runDir, host.log.child(`[${record.tag} rewind]`));
    if (record.bitmap && record.size > 0) {
      this.log = IntentLog.open(record.bitmap, { chunkSize: record.chunkSize, volumeSize: record.size }, { create: true, asyncLimit: record.asyncLimit });
    }
  }

  get tag(): string {
    return this.record.tag;
  }

  /** The status's state words for this copy. */
  get stateName(): string {
    const r = this.record;
    return this.connected ? (r.consistent ? 'target' : 'resyncing') : r.consistent ? 'target (source not connected)' : 'out of sync';
  }

  // ---- transitions ----------------------------------------------------------------------------

  /**
   * A source says HELLO: this copy learns the geometry (once), the members, the source, the file system,
   * and keeps a bitmap slot for every member. Returns why it cannot, or null. Persists only on a change:
   * a source that reconnects (resume, fullresync) usually changes nothing, so no fsync before WELCOME.
   */
  learnFromHello(hello: Hello, fromAddress: string): string | null {
    const r = this.record;
    if (r.size !== 0 && (r.size !== hello.size || r.chunkSize !== hello.chunkSize)) {
      return `this node's copy of "${r.tag}" is ${r.size} bytes in chunks of ${r.chunkSize}, the source's ${hello.size} in ${hello.chunkSize}; release and accept the target again`;
    }
    const recorded = () => JSON.stringify([r.size, r.chunkSize, r.members, r.source, r.fileSystem, r.slots]);
    const before = recorded();
    if (r.size === 0) {
      r.size = hello.size;
      r.chunkSize = hello.chunkSize;
      try {
        if (r.bitmap) this.log = IntentLog.open(r.bitmap, { chunkSize: r.chunkSize, volumeSize: r.size }, { create: true, asyncLimit: r.asyncLimit });
      } catch (err) {
        r.size = 0;
        return `cannot open the bitmap of this target: ${(err as Error).message}`;
      }
    }
    r.members = hello.members.map((m) => (m.node === hello.source && m.address.startsWith(':') ? { ...m, address: `${fromAddress.includes(':') ? `[${fromAddress}]` : fromAddress}${m.address}` } : m));
    r.source = hello.source;
    r.fileSystem = hello.fileSystem ?? null;
    for (const m of r.members) {
      if (m.node === this.host.node || r.slots[m.node] !== undefined) continue;
      const slot = freeSlot(r.slots, MAX_TARGETS);
      if (slot >= 0) r.slots[m.node] = slot;
    }
    if (recorded() !== before) this.host.persist();
    return null;
  }

  /** A source connected (in memory only): from now on the data changes under any reader. */
  sourceConnected(source: string): void {
    this.connected = source;
    this.lostSourceInSync = false;
    // A rewound view is explored while paused only.
    void this.rewind.closeView().catch((e: Error) => this.host.log.error(`${this.tag}: closing the rewound view: ${e.message}`));
    this.setView(false);
  }

  /** The source went away. Losing it while holding a usable copy is what makes a failover here safe. */
  sourceLost(): void {
    if (this.connected && this.record.consistent) this.lostSourceInSync = true;
    this.connected = null;
    void this.syncRewindLog();
    this.setView(true);
  }

  /** The source's generation notice: this copy now is `notice.current` (when given), consistent or not. */
  noticeApplied(source: string, notice: GenerationNotice): void {
    const r = this.record;
    if (notice.current !== undefined) {
      r.generations = adopt(r.generations, notice.current);
      // We hold the source's data: our bitmap for it (empty while we are a target) starts here.
      r.generations.peers[source] = notice.current;
    }
    r.consistent = notice.consistent;
    this.host.persist();
  }

  // ---- the read-only view and the rewind log ---------------------------------------------------

  /**
   * While no source replicates into a target volume (paused, disconnected, not yet extended), its data
   * is readable through a read-only NBD export; it closes when a source connects, because from then on
   * the data changes under any reader.
   */
  setView(open: boolean): void {
    this.viewChange = this.viewChange.then(async () => {
      if (open && !this.view && this.host.holds(this)) {
        const server = new NbdServer(new SimpleCatalog([makeExport(this.tag, new ReadOnlyView(this.store), `Tandem target ${this.tag} (read-only)`)]), this.host.log.child(`[${this.tag} view]`));
        try {
          await server.listenUnix(this.host.exportSocket(this.tag));
          this.view = server;
        } catch (err) {
          this.host.log.warn(`read-only export of target ${this.tag} not available: ${(err as Error).message}`);
        }
      } else if (!open && this.view) {
        const server = this.view;
        this.view = null;
        await server.close(1_000);
      }
    });
  }

  /**
   * Makes the rewind log what its settings say. Run at start, when the source disconnects (the manual:
   * settings take effect when the mirror is paused and resumed) and when settings change while no
   * source is connected; never while writes are being applied.
   */
  syncRewindLog(): Promise<void> {
    this.rewindSync = this.rewindSync.then(async () => {
      if (this.connected || !this.host.holds(this)) return;
      const r = this.record;
      const kept = await this.rewind.sync({ tag: r.tag, logdir: r.logdir, logmax: r.logmax, rewindLogKept: r.rewindLogKept }, (dir) => this.host.refuseLogDir(dir));
      if ((r.rewindLogKept ?? '') !== kept) {
        if (kept) r.rewindLogKept = kept;
        else delete r.rewindLogKept;
        this.host.persist();
      }
    }).catch((e: Error) => this.host.log.error(`${this.tag}: rewind log: ${e.message}`));
    return this.rewindSync;
  }

  /** Closes everything, the disk included. */
  async close(): Promise<void> {
    this.setView(false);
    await this.viewChange;
    await this.rewindSync;
    await this.rewind.close();
    this.log?.close();
    await this.store.close();
  }

  /** Closes everything but the disk, which becomes the source's disk (promotion). */
  async detach(): Promise<void> {
    this.setView(false);
    await this.viewChange;
    await this.rewindSync;
    await this.rewind.closeView();
    this.log?.close();
  }
}
