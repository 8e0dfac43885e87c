// What a target link needs from the mirror it belongs to.
import type { IntentLog } from '../intent-log/bitmap.js';
import type { BlockStore } from '../storage/block-store.js';
import type { ChunkLocks } from './chunk-locks.js';
import type { Hello, Refusal, Switched, Welcome } from '../replication/wire.js';
import type { LinkState, ReplicationMode, TargetStatus } from '../../common/mirror-status.js';
import type { NodeCredentials } from '../replication/transport.js';

/** Why a link may not sync with its peer, shown in status until it changes. */
export interface LinkBlock {
  state: LinkState;
  message: string;
}

export interface TargetConfig {
  /** The target's node name, as it reports itself. */
  node: string;
  /** The target agent's replication address, host:port (the remote end of the replication path). */
  address: string;
  /** Optional local address to connect from (the local end of the replication path). */
  localAddress?: string;
  mode: ReplicationMode;
  /** This target's slot in the intent log (0–6). */
  slot: number;
  paused: boolean;
}

/** A link to one target as the failover policy sees it (TargetLink is one). */
export interface PolicyLink {
  readonly config: TargetConfig;
  readonly slot: number;
  readonly mirroring: boolean;
  status(): TargetStatus;
  /** Waits until every write sent is acknowledged; false on timeout or a lost connection. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Sends a generation notice in the write stream; its sequence number. */
  sendGeneration(current: string | undefined, consistent: boolean): number;
}

/** The failover rules a mirror follows toward each target (implemented by the daemon). */
export interface MirrorPolicy {
  /** What HELLO says beyond the geometry: our generations, the members, our address. */
  hello(link: PolicyLink): Pick<Hello, 'generations' | 'members' | 'sourceAddress' | 'fileSystem'>;
  /** After WELCOME: decide from both sides' generations; 'go' once the target's bits are merged durably. */
  admit(link: PolicyLink, welcome: Welcome): Promise<'go' | LinkBlock>;
  /** The peer refused because it is a source of this mirror itself. */
  peerIsSource(link: PolicyLink, refusal: Refusal): LinkBlock | null;
  /** End of a resync pass: the generation the target now holds. */
  inSync(link: PolicyLink): string;
  /**
   * A generation notice naming `current` (sent by inSync's pass end or a rotation) was acknowledged (the
   * target holds that generation durably), or its connection closed first (acknowledged false: it may
   * or may not).
   */
  noticeSettled?(link: PolicyLink, current: string, acknowledged: boolean): void;
  /** The link lost its connection. */
  linkDown?(link: PolicyLink): void;
  /** The target asks to take over (switchover). */
  switchover(link: PolicyLink): Promise<Switched>;
  /** A positive switchover answer has left for the target. */
  afterSwitchover?(link: PolicyLink): void;
  /** Before each write: a promise while a new generation is being made durable, else null (cheap). */
  beforeWrite?(): Promise<void> | null;
}

export interface MirrorCore {
  readonly tag: string;
  readonly node: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly log: IntentLog;
  readonly locks: ChunkLocks;
  /** The source disk. */
  readonly local: BlockStore;
  readonly asyncLimit: number;
  /** zlib level offered to targets at each connection (0 = off). */
  readonly compression: number;
  /** Resync bytes per second per target; 0 = unlimited. */
  readonly resyncRate: number;
  /** The next number of the mirror's write sequence (shared by all targets). */
  nextSeq(): number;
  readonly policy: MirrorPolicy;
  /** This node's certificate and the cluster CA for replication connections; null = plain TCP. */
  readonly creds: NodeCredentials | null;
}
