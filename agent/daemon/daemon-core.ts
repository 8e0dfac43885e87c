// What the daemon's parts (role changes, service actions, the source policy) need from the daemon that
// holds the copies. Types only: the parts import this, the daemon implements it, and nothing imports
// the daemon but its entry point.
import type { BlockStore } from '../storage/block-store.js';
import type { SourceMirror } from '../mirror/source-mirror.js';
import type { Switched } from '../replication/wire.js';
import type { AgentPaths } from './home.js';
import type { SourceRecord, TargetRecord } from './mirror-record.js';
import type { SourceCopy } from './source-copy.js';
import type { TargetCopy, TargetHost } from './target-copy.js';
import type { PolicyHost } from './source-policy.js';

export interface DaemonCore extends PolicyHost, TargetHost {
  readonly paths: AgentPaths;
  sourceCopy(tag: string): SourceCopy | undefined;
  targetCopy(tag: string): TargetCopy | undefined;
  /**
   * Holds a source copy: opens its mirror unless out of service, runs `prepare` on it (a rewind's
   * rollback), then goes in service (asked to, or no targets) or looks for its targets.
   */
  openSource(record: SourceRecord, phase: 'in service' | 'starting' | 'out of service', store?: BlockStore, prepare?: (mirror: SourceMirror) => Promise<void>): Promise<SourceCopy>;
  openMirror(copy: SourceCopy, store?: BlockStore): Promise<SourceMirror>;
  /** Looks for the targets before going in service (scenario 3's probe). */
  startProbe(copy: SourceCopy, mirror: SourceMirror): void;
  /** Closes the export, the file system resource and the mirror. */
  closeSource(copy: SourceCopy): Promise<void>;
  /** Holds a target copy (on `store`: the disk a source copy had). */
  openTarget(record: TargetRecord, store?: BlockStore): TargetCopy;
  /** Lets go of a source copy that became a target (its disk stays open for the target). */
  forgetSource(copy: SourceCopy): void;
  /** Lets go of a target copy that becomes the source, its disk kept open. */
  detachTarget(copy: TargetCopy): Promise<void>;
  requestSwitchover(tag: string): Promise<Switched>;
  promote(t: TargetCopy, why: string, rewindTo?: number, rolledBack?: { blocks: number; bytes: number }): Promise<SourceCopy>;
}
