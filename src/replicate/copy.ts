import { checkAborted } from '../errors.js';
import { WriterPackers } from '../maintenance/repair-shared.js';
import { computeUsage } from '../maintenance/usage.js';
import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';
import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';
import { requireIdentity, targetWriter } from './mode.js';
import { recordCopy, treesToRecord } from './record.js';
import { copyOf, originOf, sealCopy, storedAs, targetsByOrigin } from './select.js';
import { planReads, transferBlobs } from './transfer.js';

export interface CopyEvents {
  /** A snapshot about to be looked at; `copiedTo` when it is already in the target. */
  onSnapshot(source: SnapshotEntry, copiedTo?: string): void;
  /** A snapshot's blobs are being copied. */
  onStarted(source: SnapshotEntry): void;
  onSaved(source: SnapshotEntry, id: string): void;
  /** A snapshot not copied, and why (damaged). */
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
 * Copies source snapshots (oldest first) into the target, each unless already there, as the
 * same writer's: the blobs the target lacks go over in source pack order, are flushed as packs
 * then index, and only then is the snapshot written. A kill at any point leaves unindexed packs (junk a prune
 * removes) or indexed blobs the rerun skips; never a snapshot without its blobs.
 */
export async function copySnapshots(src: Repository, dst: Repository, sources: readonly SnapshotEntry[], targets: readonly SnapshotEntry[], events: CopyEvents, signal?: AbortSignal): Promise<CopyStats> {
  requireIdentity(src, dst);
  const stats: CopyStats = { copied: 0, skipped: 0, failed: 0, blobs: 0, bytesRead: 0, bytesStored: 0 };
  const byOrigin = targetsByOrigin(targets);
  const packers = new WriterPackers(dst);
  for (const source of sources) {
    checkAborted(signal);
    const writer = await targetWriter(dst, source.writer);
    const copy = copied(source, writer, dst);
    const sealed = sealCopy(dst, copy);
    const listed = copyOf(source, byOrigin)?.id;
    const found = listed ? undefined : await storedAs(dst, sealed);
    events.onSnapshot(source, listed ?? found);
    if (listed || found) {
      // Stored by a run that lost its write-only record, or was killed before writing to it.
      if (found) await recordCopy(dst, found, copy);
      stats.skipped++;
      continue;
    }
    const { used, lacks } = await computeUsage(src, [source], { signal });
    if (lacks.length) {
      events.onError(source, `damaged, not copied: ${lacks[0]!.path}: ${lacks[0]!.what}`);
      stats.failed++;
      continue;
    }
    events.onStarted(source);
    const wanted = lacking(src, dst, writer, used);
    const moved = await transferBlobs(src, packers.of(writer), planReads(src, wanted), signal);
    checkAborted(signal);
    await packers.flush();
    stats.blobs += moved.blobs;
    stats.bytesRead += moved.bytesRead;
    const trees = await treesToRecord(src, dst, source, used, targets);
    checkAborted(signal);
    await dst.storeObject('snapshots', sealed);
    await recordCopy(dst, sealed.name, copy, trees);
    events.onSaved(source, sealed.name);
    stats.copied++;
  }
  stats.bytesStored = packers.bytesStored;
  return stats;
}

/** Of the source entries used, those the target's writer has not. */
function lacking(src: Repository, dst: Repository, writer: Writer, used: Uint8Array): Uint8Array {
  const { index } = src;
  const wanted = new Uint8Array(used.length);
  for (let n = 0; n < used.length; n++) {
    if (!used[n]) continue;
    const { pack, id } = index.entry(n);
    const type: BlobType = index.packs[pack]!.type;
    if (!dst.index.has(type, id, writer.no)) wanted[n] = 1;
  }
  return wanted;
}

/**
 * The copy: the source's fields, its origin recorded, no parent (it means nothing in the
 * target); signed by the full writer, it names the writer whose blobs it refers to unless that is the full writer.
 */
function copied(source: SnapshotEntry, writer: Writer, dst: Repository): Snapshot {
  const { parent: _parent, writer: _named, ...sn } = source.snapshot;
  return { ...sn, ...(writer.no === dst.self.no ? {} : { writer: writer.hex }), original: originOf(source) };
}
