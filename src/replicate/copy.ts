import { checkAborted, IntegrityError } from '../errors.js';
import { WriterPackers } from '../maintenance/repair-shared.js';
import { computeUsage } from '../maintenance/usage.js';
import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';
import type { TreeLog } from '../repository/writer-records.js';
import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';
import { copyMode, targetWriter, type CopyMode } from './mode.js';
import { recordCopy, treesToRecord } from './record.js';
import { copyOf, originOf, sealCopy, storedAs, targetsByOrigin } from './select.js';
import { planReads, transferBlobs } from './transfer.js';
import { RECHUNK_NOTE, Translation } from './translate.js';

export interface CopyEvents {
  /** A snapshot about to be looked at; `copiedTo` when it is already in the target. */
  onSnapshot(source: SnapshotEntry, copiedTo?: string): void;
  /** A snapshot's blobs are being copied. */
  onStarted(source: SnapshotEntry): void;
  onSaved(source: SnapshotEntry, id: string): void;
  /** A snapshot not copied, and why (damaged). */
  onError(source: SnapshotEntry, message: string): void;
  /** Said once: how the copy goes (that it re-chunks). */
  onNote(message: string): void;
  /** What loading an index found wrong (a damaged index file skipped, missing packs). */
  onWarning(message: string): void;
}

export interface CopyStats {
  mode: CopyMode;
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
 * removes) or indexed blobs the rerun skips; never a snapshot without its blobs. Into a target
 * whose chunker differs, each snapshot is translated (see Translation) instead.
 */
export async function copySnapshots(src: Repository, dst: Repository, sources: readonly SnapshotEntry[], targets: readonly SnapshotEntry[], events: CopyEvents, signal?: AbortSignal): Promise<CopyStats> {
  const mode = copyMode(src, dst);
  const stats: CopyStats = { mode, copied: 0, skipped: 0, failed: 0, blobs: 0, bytesRead: 0, bytesStored: 0 };
  const byOrigin = targetsByOrigin(targets);
  const packers = new WriterPackers(dst);
  // Both indexes are loaded once something is to be copied: a copy with nothing new (the
  // nightly rerun) decides that from the snapshot lists and reads no index.
  let indexed: Promise<void> | undefined;
  const loadIndexes = () => (indexed ??= Promise.all([src.loadIndex(events.onWarning), dst.loadIndex(events.onWarning)]).then(() => undefined));
  if (mode === 'translate') await loadIndexes();
  const translation = mode === 'translate' ? new Translation(src, dst, packers, targets, signal) : undefined;
  if (translation) events.onNote(RECHUNK_NOTE);
  try {
    for (const source of sources) {
      checkAborted(signal);
      const writer = await targetWriter(dst, source.writer);
      // Identity: the copy is known before its blobs go over, so a copy stored by a run that lost
      // its write-only record, or was killed before writing to it, is found by name (one HEAD).
      const identical = translation ? undefined : copied(source, writer, dst, source.snapshot.tree);
      // A translated copy has a tree of its own.
      const listed = copyOf(source, byOrigin, !translation)?.id;
      const early = identical && !listed ? sealCopy(dst, identical) : undefined;
      const found = listed || !early ? undefined : await storedAs(dst, early);
      events.onSnapshot(source, listed ?? found);
      if (listed || found) {
        if (found) {
          await loadIndexes();
          await recordCopy(dst, found, identical!);
        }
        stats.skipped++;
        continue;
      }
      let tree = source.snapshot.tree;
      let trees: TreeLog | undefined;
      if (translation) {
        events.onStarted(source);
        try {
          tree = await translation.tree(source, writer);
        } catch (err) {
          if (!(err instanceof IntegrityError)) throw err;
          events.onError(source, `damaged, not copied: ${err.message}`);
          stats.failed++;
          continue;
        }
      } else {
        await loadIndexes();
        const { used, lacks } = await computeUsage(src, [source], { signal });
        if (lacks.length) {
          events.onError(source, `damaged, not copied: ${lacks[0]!.path}: ${lacks[0]!.what}`);
          stats.failed++;
          continue;
        }
        events.onStarted(source);
        const wanted = lacking(src, dst, writer, used);
        const moved = await transferBlobs(src, packers.of(writer), planReads(src, wanted), signal);
        stats.blobs += moved.blobs;
        stats.bytesRead += moved.bytesRead;
        trees = await treesToRecord(src, dst, source, used, targets);
      }
      checkAborted(signal);
      await packers.flush();
      checkAborted(signal);
      const snapshot = identical ?? copied(source, writer, dst, tree);
      // Sealed deterministically: storing a translated copy again writes the same object.
      const sealed = early ?? sealCopy(dst, snapshot);
      await dst.storeObject('snapshots', sealed);
      await recordCopy(dst, sealed.name, snapshot, trees);
      translation?.saved({ id: sealed.name, snapshot, writer });
      events.onSaved(source, sealed.name);
      stats.copied++;
    }
  } finally {
    await translation?.close();
  }
  if (translation) Object.assign(stats, translation.stats);
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
function copied(source: SnapshotEntry, writer: Writer, dst: Repository, tree: string): Snapshot {
  const { parent: _parent, writer: _named, ...sn } = source.snapshot;
  return { ...sn, tree, ...(writer.no === dst.self.no ? {} : { writer: writer.hex }), original: originOf(source) };
}
