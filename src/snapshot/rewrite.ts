import type { Repository } from '../repository/repository.js';
import type { Snapshot, SnapshotEntry } from './snapshot.js';

/**
 * A snapshot written again by this full key with some fields changed (`repair snapshots`, `tag`):
 * every other field kept, `original` naming the snapshot a backup wrote (kept over any number of
 * rewrites, as restic's), and `writer` naming whose blobs its trees are when that is not this
 * key's writer, since the new snapshot is this key's signature and not its writer's.
 */
export function rewrittenSnapshot(repo: Repository, { id, snapshot, writer }: SnapshotEntry, change: Partial<Pick<Snapshot, 'tree' | 'tags'>>): Snapshot {
  const sn: Snapshot = { ...snapshot, ...change, original: snapshot.original ?? id };
  if (writer === repo.self) delete sn.writer;
  else sn.writer = writer.hex;
  return sn;
}
