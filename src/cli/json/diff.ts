import type { Change, DiffResult, DiffStat } from '../../browse/diff.js';
import { jsonName } from './node.js';

/** restic's `change` message of `diff --json`: a directory's path ends in '/'. */
export function changeJson(c: Change): Record<string, unknown> {
  return { message_type: 'change', path: jsonName(c.path) + (c.dir ? '/' : ''), modifier: c.modifier };
}

function statJson(s: DiffStat): Record<string, number> {
  return { files: s.files, dirs: s.dirs, others: s.others, data_blobs: s.dataBlobs, tree_blobs: s.treeBlobs, bytes: s.bytes };
}

/** restic's `statistics` message, which ends `diff --json`; the snapshots as they were given. */
export function statisticsJson(source: string, target: string, r: DiffResult): Record<string, unknown> {
  return { message_type: 'statistics', source_snapshot: source, target_snapshot: target, changed_files: r.changedFiles, added: statJson(r.added), removed: statJson(r.removed) };
}
