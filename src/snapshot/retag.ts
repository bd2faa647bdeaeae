import { checkAborted, ExitCode, ScrateError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { rewrittenSnapshot } from './rewrite.js';
import { saveSnapshot, type SnapshotEntry } from './snapshot.js';

/** What `tag` does to each snapshot's tags, as restic's --set, --add and --remove (each already flattened). */
export interface TagChange {
  /** Replace the tags with these (none: clear them); excludes add and remove. */
  set?: string[];
  add: string[];
  remove: string[];
}

/** restic's rules: something to do, and --set not with --add or --remove. */
export function checkTagChange(c: TagChange): void {
  if (c.set === undefined && c.add.length === 0 && c.remove.length === 0) throw new ScrateError('nothing to do!', ExitCode.fatal, 'give --add, --remove or --set');
  if (c.set !== undefined && (c.add.length || c.remove.length)) throw new ScrateError('--set and --add/--remove cannot be given at the same time');
}

/**
 * A snapshot's tags after the change, or undefined when they stay as they are. Added tags go
 * at the end unless present; removal keeps the others' order (restic's swaps the last one in).
 */
export function changedTags(tags: readonly string[], c: TagChange): string[] | undefined {
  const next = c.set !== undefined ? [...new Set(c.set)] : [...tags, ...c.add.filter((t, i) => !tags.includes(t) && c.add.indexOf(t) === i)].filter((t) => !c.remove.includes(t));
  return next.length === tags.length && next.every((t, i) => t === tags[i]) ? undefined : next;
}

export interface Retagged {
  old: string;
  new: string;
}

/**
 * Writes each snapshot whose tags change again as a new snapshot object (rewrittenSnapshot:
 * time, host, paths, tree, parent, summary and writer kept, `original` recorded) and removes
 * the old one only once the new is stored. A crash in between leaves both, the same backup
 * twice with different tags (restic has the same window); `forget ID` removes either.
 * Snapshots whose tags stay as they are are not written again.
 */
export async function retagSnapshots(repo: Repository, entries: readonly SnapshotEntry[], change: TagChange, onChanged: (r: Retagged) => void, signal?: AbortSignal): Promise<number> {
  let count = 0;
  for (const entry of entries) {
    checkAborted(signal);
    const tags = changedTags(entry.snapshot.tags, change);
    if (!tags) continue;
    const id = await saveSnapshot(repo, rewrittenSnapshot(repo, entry, { tags }));
    await repo.backend.remove('snapshots', entry.id);
    onChanged({ old: entry.id, new: id });
    count++;
  }
  return count;
}
