import { Command } from 'commander';
import { shortId } from '../../repository/ids.js';
import { checkTagChange, retagSnapshots, type TagChange } from '../../snapshot/retag.js';
import { selectSnapshots } from '../../snapshot/select.js';
import { flattenTagLists } from '../../snapshot/tags.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { changedJson, tagSummaryJson } from '../json/tag.js';
import { collectTagList } from '../parse.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface TagFlags extends SnapshotFilterFlags {
  set: string[][];
  add: string[][];
  remove: string[][];
}

export function tagCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('tag')
      .description('change the tags of snapshots (all that match the filters unless some are named): each changed one is stored again as a new snapshot, then the old one removed')
      .argument('[snapshot...]', 'snapshot IDs, prefixes or "latest"')
      .option('--set <tags>', 'replace the tags with these comma-separated tags (repeatable; \'\' for none)', collectTagList, [])
      .option('--add <tags>', 'add these comma-separated tags (repeatable)', collectTagList, [])
      .option('--remove <tags>', 'remove these comma-separated tags (repeatable)', collectTagList, []),
    'without snapshot IDs: only snapshots',
  ).action(async (specs: string[], flags: TagFlags, cmd: Command) => {
    const ctx = context(cmd);
    const { out } = ctx;
    const change: TagChange = { set: flags.set.length ? flattenTagLists(flags.set) : undefined, add: flattenTagLists(flags.add), remove: flattenTagLists(flags.remove) };
    checkTagChange(change);
    // Exclusive, as restic's and as forget's: it removes snapshot objects, and a prune beside backups
    // (docs/FORMAT.md §9.2) lists the snapshots once, so it must not run between a save and a removal.
    const count = await withRepository(
      ctx,
      'exclusive',
      async (repo, { signal }) => {
        const snapshots = await selectSnapshots(repo, specs, snapshotFilter(flags), (id, err) => out.warn(`snapshot ${shortId(id)} skipped: ${displayName(err.message)}`));
        return retagSnapshots(
          repo,
          snapshots,
          change,
          (r) => {
            if (out.json) out.jsonLine(changedJson(r));
            else out.detail(`old snapshot ID: ${r.old} -> new snapshot ID: ${r.new}`);
          },
          signal,
        );
      },
      { index: false },
    );
    if (out.json) out.jsonLine(tagSummaryJson(count));
    else out.info(count === 0 ? 'no snapshots were modified' : `modified ${count} snapshots`);
  });
}
