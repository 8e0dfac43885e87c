// What `tandem status` and the console show of each copy on this node (common/mirror-status.ts's shape).
import type { MirrorStatus, RewindLogStatus } from '../../common/mirror-status.js';
import type { AgentPaths } from './home.js';
import type { SourceCopy } from './source-copy.js';
import type { TargetCopy } from './target-copy.js';

export function sourceStatus(s: SourceCopy, node: string, paths: AgentPaths): MirrorStatus {
  const r = s.record;
  const m = s.mirror;
  return {
    tag: r.tag, role: 'source', node, disk: r.disk, size: r.size,
    state: s.phaseName, lastOwner: r.lastOwner, dataCorrupt: r.dataCorrupt, generation: r.generations.current,
    exportSocket: s.server ? paths.exportSocket(r.tag) : null,
    bitmap: { file: r.bitmap, chunkSize: r.chunkSize, chunks: Math.ceil(r.size / r.chunkSize) },
    asyncLimit: m?.asyncLimit ?? r.asyncLimit, compression: m?.compression ?? r.compression,
    rewindLog: { dir: r.logdir, maxBytes: r.logmax },
    fileSystem: r.fileSystem ? { ...r.fileSystem, device: s.resource?.device ?? null, mounted: s.resource !== null, error: s.resourceError } : null,
    targets: m ? m.links.map((l) => l.status()) : [],
    asyncAllowed: r.asyncAllowed !== false,
  };
}

export function targetStatus(t: TargetCopy, node: string, paths: AgentPaths): MirrorStatus {
  const r = t.record;
  return {
    tag: r.tag, role: 'target', node, disk: r.disk, size: t.store.size,
    state: t.stateName, lastOwner: false, dataCorrupt: false, generation: r.generations.current, consistent: r.consistent,
    exportSocket: t.view ? paths.targetExportSocket(r.tag) : null,
    bitmap: { file: r.bitmap, chunkSize: r.chunkSize, chunks: r.size ? Math.ceil(r.size / r.chunkSize) : 0 },
    asyncLimit: r.asyncLimit, compression: r.compression, rewindLog: rewindStatus(t),
    fileSystem: r.fileSystem ? { ...r.fileSystem, device: null, mounted: false, error: '' } : null,
    targets: [], source: t.connected, lastSource: r.source,
  };
}

function rewindStatus(t: TargetCopy): RewindLogStatus {
  const j = t.rewind.journal;
  const v = t.rewind.view;
  return {
    dir: t.record.logdir, maxBytes: t.record.logmax, kept: j !== null, entries: j?.entries ?? 0, bytes: j?.totalBytes ?? 0,
    start: j?.startTime ?? null, end: j?.endTime ?? null, bookmarks: j?.bookmarks().length ?? 0, error: t.rewind.error,
    view: v ? { time: v.time, socket: v.socket, mountPoint: v.mountPoint } : null,
  };
}
