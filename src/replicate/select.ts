import type { Snapshot, SnapshotEntry } from '../snapshot/snapshot.js';

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
