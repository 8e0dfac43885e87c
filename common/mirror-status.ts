// Status shapes shared by the agent (which computes them), its CLIs and the console.

export type ReplicationMode = 'sync' | 'async';

/** What the link to one target is doing. */
export type LinkState = 'connecting' | 'resyncing' | 'mirroring' | 'paused' | 'split-brain' | 'refused';

/** The rewind log settings (manual: mirror_settings logdir / logmax) and, on a target, the log itself. */
export interface RewindLogStatus {
  dir: string;
  maxBytes: number;
  /** Target: the log is being kept (every write journalled). */
  kept?: boolean;
  entries?: number;
  bytes?: number;
  /** Times (ms since the epoch, with microseconds) a view can be opened between. */
  start?: number | null;
  end?: number | null;
  bookmarks?: number;
  /** Why the log the settings ask for is not kept. */
  error?: string;
  /** The rewound view open now. */
  view?: { time: number; socket: string; mountPoint: string | null } | null;
}

/** The manual's mirror status words (and "Split Brain", its Troubleshooting entry, made visible). */
export type MirrorStatusWord = 'Fully Operational' | 'Paused' | 'Resyncing' | 'Out Of Sync' | 'Split Brain';

export interface TargetStatus {
  node: string;
  address: string;
  mode: ReplicationMode;
  state: LinkState;
  status: MirrorStatusWord;
  /** Share of chunks in sync with the source, 0–100, one decimal. */
  percentSynced: number;
  dirtyChunks: number;
  /** Bytes per second while resyncing, else 0. */
  resyncSpeed: number;
  etaSeconds: number | null;
  /** Messages sent and not yet acknowledged. */
  queueDepth: number;
  /** An asynchronous target whose queue is full: writers wait, the mirror behaves synchronously. */
  throttled: boolean;
  bytesSent: number;
  /** Bytes the target sent back (acknowledgements, checksum replies). */
  bytesReceived: number;
  resyncBytes: number;
  /** Chunks compared by checksum resync so far, and how many matched (were not sent). */
  checksumCompared: number;
  checksumMatched: number;
  /** zlib level agreed with the target on the current connection (0 = none). */
  compression: number;
  /** Data bytes per byte on the wire for writes (1 = no gain). */
  compressionRatio: number;
  /** Why the target is not connected, in words, or ''. */
  lastError: string;
}

export interface MirrorStatus {
  tag: string;
  role: 'source' | 'target';
  node: string;
  disk: string;
  size: number;
  /**
   * Source: 'in service', 'starting' (looking for its targets before serving), 'out of service'.
   * Target: 'target', 'resyncing', 'target (source not connected)', 'out of sync'.
   */
  state: string;
  /** The manual's flags: last_owner (this node is, or was last, the source) and data_corrupt. */
  lastOwner: boolean;
  dataCorrupt: boolean;
  /** The generation id of this node's copy. */
  generation: string;
  /** Target: its data is a usable copy (not in, or interrupted in, a resync). */
  consistent?: boolean;
  /** Target: the node it last knew as source. */
  lastSource?: string | null;
  rewindLog: RewindLogStatus;
  /** The file system resource over the mirror: mounted on the node where it is in service. */
  fileSystem: { tag: string; mountPoint: string; fstype: string; device: string | null; mounted: boolean; error: string } | null;
  /** Path of the NBD socket on the source (the NetRAID device's export). */
  exportSocket: string | null;
  bitmap: { file: string | null; chunkSize: number; chunks: number };
  asyncLimit: number;
  /** Source: whether targets may be asynchronous (the hierarchy's "Enable Asynchronous Replication"). */
  asyncAllowed?: boolean;
  compression: number;
  targets: TargetStatus[];
  /** On a target: the source currently connected, if any. */
  source?: string | null;
}

/** A size in binary units, one decimal ("64.0 KiB"); below 1 KiB, whole bytes with `byteUnit`. */
export function formatSize(bytes: number, byteUnit = 'B'): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} ${byteUnit}`;
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Formats a byte rate the way the manual's mirror_status does ("1573K/sec"). */
export function formatRate(bytesPerSecond: number): string {
  return `${Math.round(bytesPerSecond / 1024)}K/sec`;
}

/**
 * The manual's `mirror_status <tag>` text:
 *   [-] eve -> sophocles
 *    Status: Resynchronizing
 *    [=> ] 11%
 *    Resync Speed: 1573K/sec
 *    Type: Synchronous
 *   Bitmap: 4895 bits (chunks), 4895 dirty (100.0%)
 */
export function formatMirrorStatus(m: MirrorStatus): string {
  const lines: string[] = [];
  for (const t of m.targets) {
    lines.push(`[-] ${m.node} -> ${t.node}`);
    const word = t.status === 'Resyncing' ? 'Resynchronizing' : t.status;
    lines.push(` Status: ${word}`);
    if (t.status === 'Resyncing') {
      const pct = Math.floor(t.percentSynced);
      const width = 20;
      const filled = Math.floor((pct * width) / 100);
      lines.push(` [${'='.repeat(filled)}>${' '.repeat(Math.max(0, width - filled - 1))}] ${pct}%`);
      lines.push(` Resync Speed: ${formatRate(t.resyncSpeed)}`);
    }
    lines.push(` Type: ${t.mode === 'sync' ? 'Synchronous' : 'Asynchronous'}`);
    if (t.compression > 0) lines.push(` Compression: level ${t.compression}, ratio ${t.compressionRatio.toFixed(2)}`);
    if (t.throttled) lines.push(' Queue: full, writes wait (behaving synchronously)');
    if (t.lastError && t.status === 'Out Of Sync') lines.push(` Reason: ${t.lastError}`);
  }
  const dirty = m.targets.reduce((a, t) => Math.max(a, t.dirtyChunks), 0);
  const chunks = m.bitmap.chunks;
  if (m.bitmap.file === null) lines.push(`Bitmap: none (every resync is full), ${chunks} chunks`);
  else lines.push(`Bitmap: ${chunks} bits (chunks), ${dirty} dirty (${chunks ? ((100 * dirty) / chunks).toFixed(1) : '0.0'}%)`);
  return lines.join('\n') + '\n';
}
