import type { Retagged } from '../../snapshot/retag.js';

/** restic's `tag --json` line for each snapshot written again. */
export function changedJson(r: Retagged): object {
  return { message_type: 'changed', old_snapshot_id: r.old, new_snapshot_id: r.new };
}

/** restic's `tag --json` summary. */
export function tagSummaryJson(changed: number): object {
  return { message_type: 'summary', changed_snapshots: changed };
}
