// What a target link needs from the mirror it belongs to.
import type { IntentLog } from '../intent-log/bitmap.js';
import type { BlockStore } from '../storage/block-store.js';
import type { ChunkLocks } from './chunk-locks.js';
import type { Hello, Refusal, Switched, Welcome } from '../replication/wire.js';
import type { LinkState } from '../../common/mirror-status.js';
import type { TargetLink } from './target-link.js';
import type { NodeCredentials } from '../replication/transport.js';

/** Why a link may not sync with its peer, shown in status until it changes. */
export interface LinkBlock {
  state: LinkState;
  message: string;
}

/** The failover rules a mirror follows toward each target (implemented by the daemon). */
export interface MirrorPolicy {
  /** What HELLO says beyond the geometry: our generations, the members, our address. */
  hello(link: TargetLink): Pick<Hello, 'generations' | 'members' | 'sourceAddress' | 'fileSystem'>;
  /** After WELCOME: decide from both sides' generations; 'go' once the target's bits are merged durably. */
  admit(link: TargetLink, welcome: Welcome): Promise<'go' | LinkBlock>;
  /** The peer refused because it is a source of this mirror itself. */
  peerIsSource(link: TargetLink, refusal: Refusal): LinkBlock | null;
  /** End of a resync pass: the generation the target now holds. */
  inSync(link: TargetLink): string;
  /**
   * A generation notice naming `current` (sent by inSync's pass end or a rotation) was acknowledged (the
   * target holds that generation durably), or its connection closed first (acknowledged false: it may
   * or may not).
   */
  noticeSettled?(link: TargetLink, current: string, acknowledged: boolean): void;
  /** The link lost its connection. */
  linkDown?(link: TargetLink): void;
  /** The target asks to take over (switchover). */
  switchover(link: TargetLink): Promise<Switched>;
  /** A positive switchover answer has left for the target. */
  afterSwitchover?(link: TargetLink): void;
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
