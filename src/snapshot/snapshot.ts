import { IntegrityError, ScrateError } from '../errors.js';
import { resolvePrefix } from '../repository/ids.js';
import type { Repository } from '../repository/repository.js';
import { ObjectKind } from '../repository/sealed-object.js';

export interface BackupSummary {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirs: number;
  /** Bytes of file content looked at (read, or reused from the parent). */
  bytesProcessed: number;
  /** Bytes of file content actually read this run. */
  bytesRead: number;
  blobsAdded: number;
  /** Plaintext bytes of new blobs. */
  dataAdded: number;
  /** Bytes of new packs in the repository. */
  dataStored: number;
  errors: number;
  start: string;
  end: string;
}

export interface Snapshot {
  time: string;
  /** Hex ID of the root tree blob. */
  tree: string;
  paths: string[];
  hostname: string;
  username: string;
  uid: number;
  gid: number;
  tags: string[];
  parent?: string;
  excludes?: string[];
  programVersion: string;
  summary?: BackupSummary;
}

export interface SnapshotEntry {
  id: string;
  snapshot: Snapshot;
}

export async function saveSnapshot(repo: Repository, sn: Snapshot): Promise<string> {
  return repo.saveObject('snapshots', ObjectKind.snapshot, Buffer.from(JSON.stringify(sn)));
}

export async function loadSnapshot(repo: Repository, id: string): Promise<Snapshot> {
  return JSON.parse((await repo.loadObject('snapshots', ObjectKind.snapshot, id)).toString('utf8')) as Snapshot;
}

/** All snapshots, oldest first. */
/**
 * All snapshots, oldest first. A damaged one is left out (and reported through `onDamaged`),
 * so that it does not stand in the way of listing, choosing a parent or `latest`.
 */
export async function listSnapshots(repo: Repository, onDamaged?: (id: string, err: IntegrityError) => void): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  for (const id of await repo.listNames('snapshots')) {
    try {
      out.push({ id, snapshot: await loadSnapshot(repo, id) });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      onDamaged?.(id, err);
    }
  }
  return out.sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
}

export interface SnapshotFilter {
  host?: string;
  paths?: string[];
  tags?: string[];
}

export function matches(sn: Snapshot, f: SnapshotFilter): boolean {
  if (f.host !== undefined && sn.hostname !== f.host) return false;
  if (f.paths?.length && !f.paths.every((p) => sn.paths.includes(p))) return false;
  if (f.tags?.length && !f.tags.every((t) => sn.tags.includes(t))) return false;
  return true;
}

/** Resolves `latest` (newest matching the filter), a full ID or a unique ID prefix. */
export async function findSnapshot(repo: Repository, spec: string, filter: SnapshotFilter = {}): Promise<SnapshotEntry> {
  if (spec === 'latest') {
    const all = (await listSnapshots(repo)).filter((e) => matches(e.snapshot, filter));
    const last = all.at(-1);
    if (!last) throw new ScrateError('no snapshot matches', 1, 'list them with `scrate snapshots`');
    return last;
  }
  const id = resolvePrefix(await repo.listNames('snapshots'), spec, 'snapshot');
  return { id, snapshot: await loadSnapshot(repo, id) };
}
