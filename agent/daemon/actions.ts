// The daemon as the control handlers see it: the copies to read, and the actions that change them. The
// handlers check parameters and call these; only the daemon and the copies' transitions change state.
import type { AgentPaths } from './home.js';
import type { MirrorStatus } from '../../common/mirror-status.js';
import type { ResourceDbStore } from './resource-db-store.js';
import type { SourceRecord, TargetRecord } from './mirror-record.js';
import type { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';
import type { ClusterManager } from '../cluster/manager.js';

export interface AgentInfo {
  node: string;
  version: string;
  replication: string;
  resourceDatabaseVersion: number;
  bitmapDir: string;
}

export interface DaemonActions {
  readonly node: string;
  readonly paths: AgentPaths;
  readonly resourceDb: ResourceDbStore;
  /** The cluster manager (null until started). */
  readonly cluster: ClusterManager | null;
  readonly heartbeatPort: number;
  info(): AgentInfo;
  status(tag?: string): MirrorStatus[];

  sourceCopy(tag: string): SourceCopy | undefined;
  targetCopy(tag: string): TargetCopy | undefined;
  /** Every copy on this node, sources first. */
  copies(): Array<SourceCopy | TargetCopy>;
  /** Why `disk` cannot be a new mirror's disk (already protected by …), or null. */
  diskInUse(disk: string): string | null;
  /** Why `logdir` cannot hold a rewind log, or null. */
  refuseLogDir(logdir: string): string | null;

  /** A new mirror with this node as its source, in service. */
  createSource(record: SourceRecord): Promise<SourceCopy>;
  /** A new target volume waiting for a source. */
  acceptTarget(record: TargetRecord): TargetCopy;
  /** Removes a target copy (its rewind log and bitmap with it). */
  releaseTarget(copy: TargetCopy): Promise<void>;
  /** Removes a source copy (its bitmap with it). */
  deleteSource(copy: SourceCopy): Promise<void>;
  /** Saves settings changed in place (targets paused or resumed, mirror_settings). */
  persist(): void;

  inService(tag: string, force: boolean, rewindTo?: number): Promise<string>;
  outOfService(tag: string): Promise<string>;
  resolve(tag: string, survivor: string): Promise<string>;
}
