import { checkAborted, ExitCode, ScrateError } from '../errors.js';
import { computeUsage } from '../maintenance/usage.js';
import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { saveSnapshot, type Snapshot, type SnapshotEntry } from '../snapshot/snapshot.js';
import { copyOf, originOf, targetsByOrigin } from './select.js';
import { planReads, transferBlobs } from './transfer.js';

export interface CopyEvents {
  /** A snapshot about to be looked at; `copiedTo` when it is already in the target. */
  onSnapshot(source: SnapshotEntry, copiedTo?: string): void;
  /** A snapshot's blobs are being copied. */
  onStarted(source: SnapshotEntry): void;
  onSaved(source: SnapshotEntry, id: string): void;
  /** A snapshot not copied, and why (damaged, or not supported yet). */
  onError(source: SnapshotEntry, message: string): void;
}

export interface CopyStats {
  copied: number;
  skipped: number;
  failed: number;
  blobs: number;
  bytesRead: number;
  bytesStored: number;
}

/**
 * Refuses what only translate mode or writer mapping could copy: identity mode needs a full
 * target key whose repository took the source's chunker parameters and both key roots
 * (init --from-repo --copy-chunker-params), so a blob has the same ID in both.
 */
export function requireIdentity(src: Repository, dst: Repository): void {
  if (!dst.canRead) throw new ScrateError(`copying into ${dst.backend.location} with a write-only key is not supported yet`, ExitCode.fatal, 'use a full key of the target');
  const a = src.chunking;
  const b = dst.chunking;
  const same = a.chunker.min === b.chunker.min && a.chunker.avg === b.chunker.avg && a.chunker.max === b.chunker.max && a.roots.idRoot.equals(b.roots.idRoot) && a.roots.chunkerRoot.equals(b.roots.chunkerRoot);
  if (!same)
    throw new ScrateError(
      `${dst.backend.location} does not share the chunker parameters of ${src.backend.location}: re-chunking copies are not supported yet`,
      ExitCode.fatal,
      'copy into a repository made with `scrate init --from-repo SRC --copy-chunker-params`',
    );
}

/**
 * Copies source snapshots (oldest first) into the target, each unless already there: the blobs
 * the target lacks go over in source pack order, are flushed as packs then index, and only
 * then is the snapshot written. A kill at any point leaves unindexed packs (junk a prune
 * removes) or indexed blobs the rerun skips; never a snapshot without its blobs.
 */
export async function copySnapshots(src: Repository, dst: Repository, sources: readonly SnapshotEntry[], targets: readonly SnapshotEntry[], events: CopyEvents, signal?: AbortSignal): Promise<CopyStats> {
  requireIdentity(src, dst);
  const stats: CopyStats = { copied: 0, skipped: 0, failed: 0, blobs: 0, bytesRead: 0, bytesStored: 0 };
  const byOrigin = targetsByOrigin(targets);
  const packer = dst.packer;
  for (const source of sources) {
    checkAborted(signal);
    const done = copyOf(source, byOrigin);
    events.onSnapshot(source, done?.id);
    if (done) {
      stats.skipped++;
      continue;
    }
    if (!source.writer.id.equals(dst.self.id)) {
      events.onError(source, `written by writer ${source.writer.hex.slice(0, 8)}: copying other writers' snapshots is not supported yet`);
      stats.failed++;
      continue;
    }
    const { used, lacks } = await computeUsage(src, [source], { signal });
    if (lacks.length) {
      events.onError(source, `damaged, not copied: ${lacks[0]!.path}: ${lacks[0]!.what}`);
      stats.failed++;
      continue;
    }
    events.onStarted(source);
    const wanted = lacking(src, dst, used);
    const moved = await transferBlobs(src, packer, planReads(src, wanted), signal);
    checkAborted(signal);
    await packer.flush();
    stats.blobs += moved.blobs;
    stats.bytesRead += moved.bytesRead;
    const id = await saveSnapshot(dst, copied(source));
    events.onSaved(source, id);
    stats.copied++;
  }
  stats.bytesStored = packer.bytesStored;
  return stats;
}

/** Of the source entries used, those the target's writer has not. */
function lacking(src: Repository, dst: Repository, used: Uint8Array): Uint8Array {
  const { index } = src;
  const wanted = new Uint8Array(used.length);
  for (let n = 0; n < used.length; n++) {
    if (!used[n]) continue;
    const { pack, id } = index.entry(n);
    const type: BlobType = index.packs[pack]!.type;
    if (!dst.index.has(type, id, dst.self.no)) wanted[n] = 1;
  }
  return wanted;
}

/** The copy: the source's fields, its origin recorded, no parent (it means nothing in the target). */
function copied(source: SnapshotEntry): Snapshot {
  const { parent: _parent, ...sn } = source.snapshot;
  return { ...sn, original: originOf(source) };
}
