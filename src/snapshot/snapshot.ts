import { IntegrityError, RefusedError, ScrateError } from '../errors.js';
import { resolvePrefix } from '../repository/ids.js';
import type { Repository } from '../repository/repository.js';
import { ObjectKind } from '../repository/sealed-object.js';
import { hasAnyTagList } from './tags.js';
import type { Writer } from '../repository/writers.js';

export interface BackupSummary {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  /** Directories by their tree: none in the parent, another tree than the parent's, the parent's tree. */
  dirsNew: number;
  dirsChanged: number;
  dirsUnmodified: number;
  /** Bytes of file content looked at (read, or reused from the parent). */
  bytesProcessed: number;
  /** Bytes of file content actually read this run. */
  bytesRead: number;
  /** New blobs of file content, and of directories. */
  dataBlobs: number;
  treeBlobs: number;
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
  /**
   * The writer whose blobs its trees and contents are (32 hex), when that is not its signer: a
   * snapshot a full key rewrote (`repair snapshots`) of another writer's. Only full keys may.
   */
  writer?: string;
  /** The snapshot this one was rewritten from (`repair snapshots`). */
  original?: string;
  /** A volume's commit: the volume's ID (32 hex). */
  volume?: string;
}

export interface SnapshotEntry {
  id: string;
  snapshot: Snapshot;
  /** Whose blobs its trees and contents are: its signer, or the writer a full key's snapshot names. */
  writer: Writer;
}

export async function saveSnapshot(repo: Repository, sn: Snapshot): Promise<string> {
  return repo.saveObject('snapshots', ObjectKind.snapshot, Buffer.from(JSON.stringify(sn)));
}

export async function loadSnapshot(repo: Repository, id: string): Promise<SnapshotEntry> {
  const { payload, writer: signer } = await repo.loadObject('snapshots', ObjectKind.snapshot, id);
  let snapshot: Snapshot;
  try {
    snapshot = parseSnapshot(payload, id);
  } catch (err) {
    // Signed, so not damage: its writer wrote it so.
    if (err instanceof IntegrityError) throw new RefusedError(`snapshot ${id.slice(0, 8)}`, err.message.replace(/^snapshot \w+: /, ''));
    throw err;
  }
  return { id, snapshot, writer: blobWriter(repo, id, snapshot, signer) };
}

/**
 * Whose blobs a snapshot refers to: its signer's, or the writer it names, which only a full
 * key's snapshot may (a write-only writer naming another would reach blobs it cannot name).
 */
function blobWriter(repo: Repository, id: string, sn: Snapshot, signer: Writer): Writer {
  if (sn.writer === undefined) return signer;
  const refused = (detail: string) => new RefusedError(`snapshot ${id.slice(0, 8)}`, detail);
  if (signer.access !== 'full') throw refused(`names writer ${sn.writer.slice(0, 8)}, which only a full key may`);
  const named = repo.writers.get(Buffer.from(sn.writer, 'hex'));
  if (!named) throw refused(`names an unknown writer ${sn.writer.slice(0, 8)}`);
  return named;
}

const HEX_ID = /^[0-9a-f]{64}$/;
const HEX_32 = /^[0-9a-f]{32}$/;
/** As toISOString() writes times: any other form (which Date.parse might take) is refused. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const SUMMARY_NUMBERS = ['filesNew', 'filesChanged', 'filesUnmodified', 'dirsNew', 'dirsChanged', 'dirsUnmodified', 'bytesProcessed', 'bytesRead', 'dataBlobs', 'treeBlobs', 'dataAdded', 'dataStored', 'errors'] as const;
/** How far in the future a write-only writer's snapshot may be dated (clocks drift); later ones are refused. */
const FUTURE_SLACK_MS = 24 * 3600 * 1000;

/** A stored object's JSON body, which must be an object; `bad` makes the error for what it is not. */
export function jsonObject(json: Buffer, bad: (detail: string) => Error): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(json.toString('utf8'));
  } catch {
    throw bad('not valid JSON');
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw bad('not an object');
  return j as Record<string, unknown>;
}

/** A time as toISOString() writes it (any other form, which Date.parse might take, is not). */
export function isIsoTime(t: unknown): t is string {
  return typeof t === 'string' && ISO_TIME.test(t) && Number.isFinite(Date.parse(t));
}

/**
 * A snapshot's JSON, checked and rebuilt from its known fields only: a writer may be hostile,
 * and what is used (or printed, or sorted on) must be what it claims to be.
 */
export function parseSnapshot(json: Buffer, id: string): Snapshot {
  const bad = (detail: string) => new IntegrityError(`snapshot ${id.slice(0, 8)}`, detail);
  const j = jsonObject(json, bad);
  const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const { time, tree, paths, hostname, username, uid, gid, tags, parent, excludes, programVersion, summary, writer, original, volume } = j;
  if (!isIsoTime(time)) throw bad('bad time');
  if (typeof tree !== 'string' || !HEX_ID.test(tree)) throw bad('bad tree ID');
  if (!strings(paths) || !strings(tags) || typeof hostname !== 'string' || typeof username !== 'string') throw bad('malformed');
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw bad('bad owner');
  if (parent !== undefined && (typeof parent !== 'string' || !HEX_ID.test(parent))) throw bad('bad parent');
  if (excludes !== undefined && !strings(excludes)) throw bad('bad excludes');
  if (writer !== undefined && (typeof writer !== 'string' || !HEX_32.test(writer))) throw bad('bad writer');
  if (original !== undefined && (typeof original !== 'string' || !HEX_ID.test(original))) throw bad('bad original');
  if (volume !== undefined && (typeof volume !== 'string' || !HEX_32.test(volume))) throw bad('bad volume');
  const sn: Snapshot = { time, tree, paths, hostname, username, uid: uid as number, gid: gid as number, tags, programVersion: typeof programVersion === 'string' ? programVersion : '' };
  if (parent !== undefined) sn.parent = parent;
  if (excludes !== undefined) sn.excludes = excludes;
  if (typeof summary === 'object' && summary !== null) {
    const from = summary as Record<string, unknown>;
    const kept = { start: String(from['start'] ?? ''), end: String(from['end'] ?? '') } as BackupSummary;
    for (const k of SUMMARY_NUMBERS) kept[k] = Number.isFinite(from[k]) ? (from[k] as number) : 0;
    sn.summary = kept;
  }
  if (writer !== undefined) sn.writer = writer;
  if (original !== undefined) sn.original = original;
  if (volume !== undefined) sn.volume = volume;
  return sn;
}

/**
 * A write-only writer speaks for its own host only, and not from the future: a snapshot that
 * claims another host, or a time over a day ahead, would become `latest` of someone else.
 */
function checkClaims(e: SnapshotEntry): void {
  const { writer, snapshot } = e;
  if (writer.access !== 'write-only') return;
  if (writer.hostname !== undefined && snapshot.hostname !== writer.hostname) {
    throw new RefusedError(`snapshot ${e.id.slice(0, 8)}`, `claims host ${snapshot.hostname}, but its writer backs up ${writer.hostname}`);
  }
  if (Date.parse(snapshot.time) > Date.now() + FUTURE_SLACK_MS) throw new RefusedError(`snapshot ${e.id.slice(0, 8)}`, `dated ${snapshot.time}, in the future`);
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
        const entry = await loadSnapshot(repo, id);
        checkClaims(entry);
        out.push(entry);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        onSkipped?.(id, err);
      }
    }
  }
  return out.sort((a, b) => Date.parse(a.snapshot.time) - Date.parse(b.snapshot.time) || a.id.localeCompare(b.id));
}

export interface SnapshotFilter {
  host?: string;
  paths?: string[];
  /** restic's tag lists: a snapshot with all the tags of any one of them. */
  tags?: string[][];
}

export function matches(sn: Snapshot, f: SnapshotFilter): boolean {
  if (f.host !== undefined && sn.hostname !== f.host) return false;
  if (f.paths?.length && !f.paths.every((p) => sn.paths.includes(p))) return false;
  if (f.tags && !hasAnyTagList(sn.tags, f.tags)) return false;
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
  const entry = await loadSnapshot(repo, id);
  checkClaims(entry);
  return entry;
}
