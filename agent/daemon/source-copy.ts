// A source copy of a mirror on this node, as a state machine (docs/architecture.md, "A copy's states"):
//
//   out of service ──open──▶ starting ──a target confirms / no targets──▶ in service
//        ▲                     │  └──no target answered (scenario 3): data_corrupt, stays starting
//        └──take out of service┴──────────────◀──────────────────────────────┤
//                                                    stepping down ◀──switchover┘ (back to in service if it fails)
//
// The phase carries only what that phase has open. The transitions below are the only code that changes
// in service, last_owner or data_corrupt; each one that changes what is persisted ends in one persist.
// Opening the export or the mirror (the I/O) is the daemon's; this module records what happened.
import fs from 'node:fs';
import path from 'node:path';
import type { NbdServer } from '../nbd/server.js';
import type { SourceMirror } from '../mirror/source-mirror.js';
import type { TargetConfig } from '../mirror/target-link.js';
import type { SourcePhaseName } from '../mirror/failover-rules.js';
import { attachExport } from '../resources/device-attach.js';
import { mountFileSystem, unmountFileSystem } from '../resources/filesystem.js';
import type { Logger } from '../log.js';
import type { SourceRecord } from './mirror-record.js';

export type SourcePhase =
  | { name: 'out of service' }
  /** Looking for a target that confirms this copy is the newest, before serving (scenario 3). */
  | { name: 'starting'; mirror: SourceMirror; probeTimer: NodeJS.Timeout | null }
  | { name: 'in service'; mirror: SourceMirror; server: NbdServer }
  /** A switchover: the export is closed, the last writes drain to the new source. */
  | { name: 'stepping down'; mirror: SourceMirror };

export class SourceCopy {
  private current: SourcePhase = { name: 'out of service' };
  /** Callers waiting for a start to end: null when in service, else why not. */
  private startWaiters: Array<(outcome: string | null) => void> = [];
  /** A new generation being made durable before the next write (see the policy's beforeWrite). */
  rotating: Promise<void> | null = null;
  /** The file system resource while mounted here: the NetRAID device and how to take it down. */
  resource: { device: string; takeDown(): Promise<void> } | null = null;
  /** Bringing the file system resource up (attach, mount) after going in service. */
  resourceReady: Promise<void> = Promise.resolve();
  resourceError = '';

  constructor(readonly record: SourceRecord, private readonly persist: () => void, private readonly log: Logger) {}

  get tag(): string {
    return this.record.tag;
  }

  get phase(): SourcePhase {
    return this.current;
  }

  /** The phase as the manual and the status show it (stepping down is out of service already). */
  get phaseName(): SourcePhaseName {
    return this.current.name === 'stepping down' ? 'out of service' : this.current.name;
  }

  get mirror(): SourceMirror | null {
    return this.current.name === 'out of service' ? null : this.current.mirror;
  }

  get server(): NbdServer | null {
    return this.current.name === 'in service' ? this.current.server : null;
  }

  /** The targets as they are now: the open links' (paused or not), else the record's. */
  targets(): TargetConfig[] {
    const m = this.mirror;
    return m ? m.links.map((l) => ({ ...l.config })) : this.record.targets;
  }

  /** The record to persist, its targets as they are now. */
  toRecord(): SourceRecord {
    if (this.mirror) this.record.targets = this.targets();
    return this.record;
  }

  /** The bitmap slots its targets use (one place: the targets' configs). */
  slotsInUse(): Record<string, number> {
    const slots: Record<string, number> = {};
    for (const t of this.targets()) slots[t.node] = t.slot;
    return slots;
  }

  // ---- transitions ----------------------------------------------------------------------------

  /** The mirror is open and looks for its targets before serving. Nothing durable changes. */
  lookForTargets(mirror: SourceMirror): void {
    this.current = { name: 'starting', mirror, probeTimer: null };
  }

  /** The probe's deadline (cleared by any transition out of starting). */
  setProbeTimer(timer: NodeJS.Timeout): void {
    if (this.current.name === 'starting') this.current.probeTimer = timer;
  }

  /** The export is up: in service here, the last owner, data_corrupt cleared. */
  wentInService(mirror: SourceMirror, server: NbdServer): void {
    this.clearProbe();
    this.current = { name: 'in service', mirror, server };
    this.record.inService = true;
    this.record.lastOwner = true;
    if (this.record.dataCorrupt) this.log.info(`${this.tag}: data_corrupt cleared`);
    this.record.dataCorrupt = false;
    this.persist();
    this.finishStart(null);
  }

  /** Scenario 3: no target answered while starting; data_corrupt set, not in service. */
  noTargetAnswered(outcome: string): void {
    this.clearProbe();
    this.record.dataCorrupt = true;
    this.persist();
    this.finishStart(outcome);
  }

  /** Already in service, asked again: an administrator's inservice clears a leftover data_corrupt. */
  confirmedInService(): void {
    if (!this.record.dataCorrupt) return;
    this.record.dataCorrupt = false;
    this.persist();
  }

  /** A switchover: the export closed; the mirror stays open to drain. Nothing durable changes yet. */
  stepDown(): void {
    if (this.current.name === 'out of service') return;
    this.clearProbe();
    this.current = { name: 'stepping down', mirror: this.current.mirror };
  }

  /** The mirror and export are closed (stop, delete, out of service, demotion). Targets kept as they were. */
  closed(): void {
    this.clearProbe();
    if (this.mirror) this.record.targets = this.targets();
    this.current = { name: 'out of service' };
  }

  /** The administrator took it out of service: it stays so across restarts. */
  takenOutOfService(): void {
    this.closed();
    this.record.inService = false;
    this.persist();
    this.finishStart(`${this.tag} was taken out of service`);
  }

  /** This copy became a target of another node: anyone waiting for its start hears why. */
  demoted(why: string): void {
    this.closed();
    this.finishStart(why);
  }

  /** A new target (extend): '' = it never held a copy, its bitmap (just set) says everything it needs. */
  extended(node: string): void {
    this.record.generations.peers[node] = '';
    this.persist();
  }

  /** A target removed (unextend): its label goes with it. */
  unextended(node: string): void {
    delete this.record.generations.peers[node];
    this.persist();
  }

  /** Resolves when the start ends: null once in service, else why not. */
  whenStarted(): Promise<string | null> {
    return new Promise((resolve) => this.startWaiters.push(resolve));
  }

  private finishStart(outcome: string | null): void {
    const w = this.startWaiters;
    this.startWaiters = [];
    for (const f of w) f(outcome);
  }

  private clearProbe(): void {
    if (this.current.name === 'starting' && this.current.probeTimer) clearTimeout(this.current.probeTimer);
    if (this.current.name === 'starting') this.current.probeTimer = null;
  }

  // ---- the file system resource over the mirror ----------------------------------------------

  /** Attaches the export as a block device and mounts the file system resource on it. */
  bringUpFileSystem(exportSocket: string, runDir: string): void {
    const fsr = this.record.fileSystem;
    if (!fsr || this.resource) return;
    const tag = this.tag;
    this.resourceReady = (async () => {
      try {
        const attached = await attachExport({ socket: exportSocket, exportName: tag, workDir: path.join(runDir, 'attach', tag) });
        try {
          fs.mkdirSync(fsr.mountPoint, { recursive: true });
          await mountFileSystem(attached.device, fsr.mountPoint, { fstype: fsr.fstype });
        } catch (err) {
          await attached.detach().catch(() => undefined);
          throw err;
        }
        this.resourceMounted(attached.device, async () => {
          await unmountFileSystem(fsr.mountPoint);
          await attached.detach();
        });
        this.log.info(`${tag}: ${fsr.tag} mounted at ${fsr.mountPoint} (${attached.device})`);
      } catch (err) {
        this.resourceError = `mounting ${fsr.tag} at ${fsr.mountPoint}: ${(err as Error).message}`;
        this.log.error(`${tag}: ${this.resourceError}`);
      }
    })();
  }

  resourceMounted(device: string, takeDown: () => Promise<void>): void {
    this.resource = { device, takeDown };
    this.resourceError = '';
  }

  /** Unmounts the file system resource and detaches the device; throws (nothing changed) while busy. */
  async takeDownFileSystem(): Promise<void> {
    await this.resourceReady;
    if (!this.resource) return;
    await this.resource.takeDown();
    this.resource = null;
  }
}
