import { IntegrityError, ScrateError } from '../errors.js';
import { resolvePrefix } from '../repository/ids.js';
import type { Repository } from '../repository/repository.js';
import { ObjectKind } from '../repository/sealed-object.js';
import type { Writer } from '../repository/writers.js';

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
  /** Who signed it: its trees and contents are that writer's blobs. */
  writer: Writer;
}

export async function saveSnapshot(repo: Repository, sn: Snapshot): Promise<string> {
  return repo.saveObject('snapshots', ObjectKind.snapshot, Buffer.from(JSON.stringify(sn)));
}

export async function loadSnapshot(repo: Repository, id: string): Promise<SnapshotEntry> {
  const { payload, writer } = await repo.loadObject('snapshots', ObjectKind.snapshot, id);
  return { id, snapshot: parseSnapshot(payload, id), writer };
}

const HEX_ID = /^[0-9a-f]{64}$/;

/** A snapshot's JSON, checked: a writer may be hostile, and what is used must be what it claims to be. */
export function parseSnapshot(json: Buffer, id: string): Snapshot {
  const bad = (detail: string) => new IntegrityError(`snapshot ${id.slice(0, 8)}`, detail);
  let sn: Snapshot;
  try {
    sn = JSON.parse(json.toString('utf8')) as Snapshot;
  } catch {
    throw bad('not valid JSON');
  }
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (typeof sn !== 'object' || sn === null) throw bad('not an object');
  if (typeof sn.time !== 'string' || !Number.isFinite(Date.parse(sn.time))) throw bad('bad time');
  if (typeof sn.tree !== 'string' || !HEX_ID.test(sn.tree)) throw bad('bad tree ID');
  if (!strings(sn.paths) || !strings(sn.tags) || typeof sn.hostname !== 'string' || typeof sn.username !== 'string') throw bad('malformed');
  if (sn.parent !== undefined && (typeof sn.parent !== 'string' || !HEX_ID.test(sn.parent))) throw bad('bad parent');
  return sn;
}

/**
 * All snapshots this key may see, oldest first. A full key reads every snapshot a registered
 * writer signed; one that is damaged, forged or written by a revoked writer is left out (and
 * reported through `onSkipped`), so it never stands in the way of listing, a parent or
 * `latest`. A write-only key sees only its own, from its record.
 */
export async function listSnapshots(repo: Repository, onSkipped?: (id: string, err: IntegrityError) => void): Promise<SnapshotEntry[]> {
  const out: SnapshotEntry[] = [];
  const names = await repo.listNames('snapshots');
  if (!repo.canRead) {
    for (const { id, json } of (await repo.record?.snapshots(new Set(names))) ?? []) {
      try {
        out.push({ id, snapshot: parseSnapshot(json, id), writer: repo.self });
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        onSkipped?.(id, err);
      }
    }
  } else {
    for (const id of names) {
      try {
        out.push(await loadSnapshot(repo, id));
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        onSkipped?.(id, err);
      }
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
  return loadSnapshot(repo, id);
}
