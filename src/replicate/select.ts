import { ExitCode, ScrateError } from '../errors.js';
import { shortId } from '../repository/ids.js';
import type { Repository, SealedObject } from '../repository/repository.js';
import { ObjectKind } from '../repository/sealed-object.js';
import { Writers } from '../repository/writers.js';
import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';
import { displayName } from '../tree/node.js';
import { copyMode, sameBlobKeys } from './mode.js';

/** What a snapshot is a copy of, or itself: restic's persistent ID (`original ?? id`). */
export function originOf(e: SnapshotEntry): string {
  return e.snapshot.original ?? e.id;
}

/**
 * restic's test for "already copied": every field but parent and original equal (paths and
 * tags as sets, excludes in order). The tree too, unless `sameTree` is false: a copy keeps it
 * in identity mode only.
 */
export function similar(a: Snapshot, b: Snapshot, sameTree = true): boolean {
  const sameSet = (x: readonly string[], y: readonly string[]) => x.length === y.length && y.every((v) => x.includes(v));
  const ax = a.excludes ?? [];
  const bx = b.excludes ?? [];
  return (
    Date.parse(a.time) === Date.parse(b.time) &&
    (!sameTree || a.tree === b.tree) &&
    a.hostname === b.hostname &&
    a.username === b.username &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    sameSet(a.paths, b.paths) &&
    sameSet(a.tags, b.tags) &&
    a.volume === b.volume &&
    ax.length === bx.length &&
    ax.every((v, i) => v === bx[i])
  );
}

/** Target snapshots by the origin keys they answer to: their origin, and (an identical copy) their own ID. */
export function targetsByOrigin(target: readonly SnapshotEntry[]): Map<string, SnapshotEntry[]> {
  const by = new Map<string, SnapshotEntry[]>();
  const add = (key: string, e: SnapshotEntry) => by.set(key, [...(by.get(key) ?? []), e]);
  for (const e of target) {
    if (e.snapshot.original) add(e.snapshot.original, e);
    add(e.id, e);
  }
  return by;
}

/** The target snapshot a source snapshot was already copied to, if any. */
export function copyOf(source: SnapshotEntry, byOrigin: ReadonlyMap<string, SnapshotEntry[]>, sameTree = true): SnapshotEntry | undefined {
  return byOrigin.get(originOf(source))?.find((t) => similar(t.snapshot, source.snapshot, sameTree));
}

/**
 * What a write-only target key may copy: snapshots of its own host (the only host its
 * snapshots may claim) whose blobs the source names as its writer does. One of the `named`
 * snapshots it may not copy is an error, before anything is copied; the others are left out
 * and counted. A full target key copies them all.
 */
export function copyable(src: Repository, dst: Repository, sources: readonly SnapshotEntry[], named: boolean): { sources: SnapshotEntry[]; left: number } {
  if (dst.canRead) return { sources: [...sources], left: 0 };
  const identity = copyMode(src, dst) === 'identity';
  const host = dst.keys.hostname!;
  // Re-chunked copies take any writer's snapshots of the host; copies as they are only those whose blobs this key names alike.
  const why = (e: SnapshotEntry) =>
    e.snapshot.hostname !== host
      ? `is of host ${displayName(e.snapshot.hostname)}, and this write-only key copies host ${displayName(host)}'s only`
      : !identity || sameBlobKeys(src, e.writer, dst, dst.self)
        ? undefined
        : `was written by writer ${Writers.label(e.writer)}, whose blobs this write-only key does not name alike (only the full writer's)`;
  const kept = sources.filter((e) => why(e) === undefined);
  const refused = named && sources.find((e) => why(e) !== undefined);
  if (refused) throw new ScrateError(`snapshot ${shortId(refused.id)} ${why(refused)!}`, ExitCode.fatal, 'open the target with a full key to copy it');
  return { sources: kept, left: sources.length - kept.length };
}

/**
 * A copy as it is stored: sealed deterministically (FORMAT.md §7.1), so the same copy by the
 * same writer has the same name, and one HEAD finds it when a run lost its record (a new
 * machine) or was killed between storing it and recording it.
 */
export function sealCopy(dst: Repository, copy: Snapshot): SealedObject {
  return dst.sealObject(ObjectKind.snapshot, Buffer.from(JSON.stringify(copy)), true);
}

/** The name of `sealed` if the target already has it. */
export async function storedAs(dst: Repository, sealed: SealedObject): Promise<string | undefined> {
  return (await dst.backend.stat('snapshots', sealed.name)) === null ? undefined : sealed.name;
}
