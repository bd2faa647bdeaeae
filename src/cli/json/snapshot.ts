import type { GroupKey } from '../../forget/group.js';
import { shortId } from '../../repository/ids.js';
import type { BackupSummary, SnapshotEntry } from '../../snapshot/snapshot.js';
import { jsonTimeOfIso } from '../local-time.js';

/**
 * A backup's numbers under restic's names (its snapshot summary, restic 0.17), then scrate's
 * own: shared by the backup's `summary` message and the snapshots' `summary` object.
 */
export function summaryJson(s: BackupSummary): Record<string, number | string | null> {
  return {
    backup_start: jsonTimeOfIso(s.start),
    backup_end: jsonTimeOfIso(s.end),
    files_new: s.filesNew,
    files_changed: s.filesChanged,
    files_unmodified: s.filesUnmodified,
    dirs_new: s.dirsNew,
    dirs_changed: s.dirsChanged,
    dirs_unmodified: s.dirsUnmodified,
    data_blobs: s.dataBlobs,
    tree_blobs: s.treeBlobs,
    data_added: s.dataAdded,
    data_added_packed: s.dataStored,
    total_files_processed: s.filesNew + s.filesChanged + s.filesUnmodified,
    total_bytes_processed: s.bytesProcessed,
    bytes_read: s.bytesRead,
    error_count: s.errors,
  };
}

/**
 * A snapshot as restic's `snapshots --json` prints it (its time local, with the offset), with
 * scrate's additions: the summary of the backup that wrote it and the writer whose blobs it uses.
 * `ls --json`, `forget --json` and `snapshots --json` all print it so.
 */
export function snapshotJson(e: SnapshotEntry): Record<string, unknown> {
  const sn = e.snapshot;
  return {
    time: jsonTimeOfIso(sn.time),
    ...(sn.parent ? { parent: sn.parent } : {}),
    tree: sn.tree,
    paths: sn.paths,
    hostname: sn.hostname,
    username: sn.username,
    uid: sn.uid,
    gid: sn.gid,
    ...(sn.excludes ? { excludes: sn.excludes } : {}),
    tags: sn.tags,
    ...(sn.original ? { original: sn.original } : {}),
    ...(sn.volume ? { volume: sn.volume } : {}),
    program_version: sn.programVersion,
    ...(sn.summary ? { summary: summaryJson(sn.summary) } : {}),
    id: e.id,
    short_id: shortId(e.id),
    writer: { id: e.writer.hex, access: e.writer.access, ...(e.writer.hostname ? { hostname: e.writer.hostname } : {}) },
  };
}

/** A group of `snapshots --group-by`, as restic's: the key's fields in its order and names (its snapshots oldest first, as scrate's list). */
export function snapshotGroupJson(key: GroupKey, list: readonly SnapshotEntry[]): Record<string, unknown> {
  return { group_key: { hostname: key.host, paths: key.paths, tags: key.tags }, snapshots: list.map(snapshotJson) };
}
