import { Command } from 'commander';
import { Writers } from '../../repository/writers.js';
import { listSnapshots, matches } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { snapshotJson } from '../json/snapshot.js';
import { humanTime } from '../local-time.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

export function snapshotsCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(new Command('snapshots').description('list snapshots'), 'only snapshots')
    .action(async (flags: SnapshotFilterFlags, cmd: Command) => {
      const ctx = context(cmd);
      // A write-only key lists what its record says it stored; a full key every snapshot a registered writer signed.
      const list = await withRepository(ctx, 'none', (repo) => listSnapshots(repo, (id, err) => ctx.out.warn(`snapshot ${id.slice(0, 8)} skipped: ${displayName(err.message)}`)), { index: false, reads: false });
      const shown = list.filter((e) => matches(e.snapshot, snapshotFilter(flags)));
      if (ctx.out.json) {
        ctx.out.jsonLine(shown.map(snapshotJson));
        return;
      }
      ctx.out.table(
        ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Writer'],
        shown.map((e) => [e.id.slice(0, 8), humanTime(Date.parse(e.snapshot.time)), displayName(e.snapshot.hostname), e.snapshot.tags.map(displayName).join(','), e.snapshot.paths.map(displayName).join(', '), displayName(Writers.label(e.writer))]),
      );
      ctx.out.info(`${shown.length} snapshot${shown.length === 1 ? '' : 's'}`);
    });
}
