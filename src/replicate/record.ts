import { BlobType } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import { recordGroup, TreeLog } from '../repository/writer-records.js';
import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';

/*
 * A write-only target's record of the copies it stores, kept as its own backups keep it
 * (FORMAT.md §11): the copy's JSON, which `snapshots` lists, and the trees of the newest copy
 * of a host and paths, so that the host's next backup of those paths takes it as its parent.
 */

/**
 * Every tree of the copied snapshot, for the record; none without a record, or when it holds
 * a newer snapshot of the same host and paths (`recorded`), which stays the parent. `used`
 * marks the source's index entries of the snapshot (computeUsage), whose tree packs that walk
 * just read.
 */
export async function treesToRecord(src: Repository, dst: Repository, source: SnapshotEntry, used: Uint8Array, recorded: readonly SnapshotEntry[]): Promise<TreeLog | undefined> {
  const { snapshot } = source;
  const group = recordGroup(snapshot.hostname, snapshot.paths);
  if (!dst.record || recorded.some((t) => recordGroup(t.snapshot.hostname, t.snapshot.paths) === group && Date.parse(t.snapshot.time) > Date.parse(snapshot.time))) return undefined;
  const trees = new TreeLog();
  const { index } = src;
  for (let n = 0; n < used.length; n++) {
    if (!used[n]) continue;
    const entry = index.entry(n);
    if (index.packs[entry.pack]!.type !== BlobType.tree) continue;
    // The target's writer names blobs as the source's does (select.ts:copyable): the same ID.
    trees.add(dst.prepare(BlobType.tree, await src.loadBlob(BlobType.tree, Buffer.from(entry.id), source.writer)));
  }
  return trees;
}

/** Notes a copy stored in the target in a write-only key's record (nothing for a full key). */
export async function recordCopy(dst: Repository, id: string, copy: Snapshot, trees?: TreeLog): Promise<void> {
  await dst.record?.addSnapshot(id, copy.tree, Buffer.from(JSON.stringify(copy)), recordGroup(copy.hostname, copy.paths), trees);
}
