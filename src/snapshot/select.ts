import type { IntegrityError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { findSnapshot, listSnapshots, matches, type SnapshotEntry, type SnapshotFilter } from './snapshot.js';

/**
 * The snapshots a command over several works on, as restic's FindAll picks them: those named
 * (IDs, prefixes, `latest` narrowed by the filter; each once) or else every snapshot the
 * filter lets through, oldest first either way. A named one that is not found stops the command, as restic's.
 */
export async function selectSnapshots(repo: Repository, specs: readonly string[], filter: SnapshotFilter, onSkipped?: (id: string, err: IntegrityError) => void): Promise<SnapshotEntry[]> {
  if (specs.length === 0) return (await listSnapshots(repo, onSkipped)).filter((e) => matches(e.snapshot, filter));
  const found = new Map<string, SnapshotEntry>();
  for (const spec of specs) {
    const e = await findSnapshot(repo, spec, filter);
    found.set(e.id, e);
  }
  return [...found.values()].sort((a, b) => Date.parse(a.snapshot.time) - Date.parse(b.snapshot.time) || a.id.localeCompare(b.id));
}
