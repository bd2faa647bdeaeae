import { Command, Option } from 'commander';
import { groupHeader, groupSnapshots, parseGroupBy, type GroupBy } from '../../forget/group.js';
import { Writers } from '../../repository/writers.js';
import { listSnapshots, matches, type SnapshotEntry } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { snapshotGroupJson, snapshotJson } from '../json/snapshot.js';
import { humanTime } from '../local-time.js';
import type { Output } from '../output.js';
import { intOption, parsedBy } from '../parse.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface SnapshotsFlags extends SnapshotFilterFlags {
  latest?: number;
  groupBy?: GroupBy;
}

/** An entry with the fields groupSnapshots divides by. */
interface Groupable {
  hostname: string;
  paths: string[];
  tags: string[];
  entry: SnapshotEntry;
}

export function snapshotsCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(new Command('snapshots').description('list snapshots'), 'only snapshots')
    .option('--latest <n>', 'only the newest n snapshots of each host and paths (of each group with --group-by)', intOption)
    .addOption(new Option('-g, --group-by <group>', 'show snapshots in groups with the same host, paths and/or tags, comma-separated').argParser(parsedBy(parseGroupBy)))
    .action(async (flags: SnapshotsFlags, cmd: Command) => {
      const ctx = context(cmd);
      // A write-only key lists what its record says it stored; a full key every snapshot a registered writer signed.
      const list = await withRepository(ctx, 'none', (repo) => listSnapshots(repo, (id, err) => ctx.out.warn(`snapshot ${id.slice(0, 8)} skipped: ${displayName(err.message)}`)), { index: false, reads: false });
      const shown = list.filter((e) => matches(e.snapshot, snapshotFilter(flags))).map((entry): Groupable => ({ ...entry.snapshot, entry }));
      const by = flags.groupBy;
      if (!by || !(by.host || by.paths || by.tags)) {
        // restic's --latest without groups: per host and paths, the list staying one.
        const latest = new Set(groupSnapshots(shown, { host: true, paths: true, tags: false }).flatMap((g) => newest(g.snapshots, flags.latest)));
        const kept = shown.filter((e) => latest.has(e)).map((e) => e.entry);
        if (ctx.out.json) ctx.out.jsonLine(kept.map(snapshotJson));
        else table(ctx.out, kept);
        return;
      }
      const groups = groupSnapshots(shown, by).map(({ key, snapshots }) => ({ key, snapshots: newest(snapshots, flags.latest).map((e) => e.entry) }));
      if (ctx.out.json) {
        ctx.out.jsonLine(groups.map((g) => snapshotGroupJson(g.key, g.snapshots)));
        return;
      }
      for (const [i, g] of groups.entries()) {
        if (i > 0) ctx.out.info('');
        ctx.out.info(groupHeader(g.key)!);
        table(ctx.out, g.snapshots);
      }
    });
}

/** The newest n of a list oldest first (all without --latest, or with 0, as restic's). */
function newest<T>(list: T[], n: number | undefined): T[] {
  return n ? list.slice(-n) : list;
}

function table(out: Output, list: SnapshotEntry[]): void {
  out.table(
    ['ID', 'Time', 'Host', 'Tags', 'Paths', 'Writer'],
    list.map((e) => [e.id.slice(0, 8), humanTime(Date.parse(e.snapshot.time)), displayName(e.snapshot.hostname), e.snapshot.tags.map(displayName).join(','), e.snapshot.paths.map(displayName).join(', '), displayName(Writers.label(e.writer))]),
  );
  out.info(`${list.length} snapshot${list.length === 1 ? '' : 's'}`);
}
