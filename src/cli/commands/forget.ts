import { Command, Option } from 'commander';
import { ExitCode, ScrateError } from '../../errors.js';
import { parseDuration, type Duration } from '../../forget/duration.js';
import { groupHeader, groupSnapshots, parseGroupBy, type GroupBy, type GroupKey } from '../../forget/group.js';
import { applyPolicy, isEmptyPolicy, type KeepReason, type Policy } from '../../forget/policy.js';
import { shortId } from '../../repository/ids.js';
import type { Repository } from '../../repository/repository.js';
import { Writers } from '../../repository/writers.js';
import { findSnapshot, listSnapshots, matches, type SnapshotEntry } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { prune } from '../../maintenance/prune.js';
import { withRepository, type Context } from '../context.js';
import { snapshotJson } from '../json/snapshot.js';
import { humanTime } from '../local-time.js';
import { PRUNE_DEFAULTS, reportPrune } from './prune.js';
import type { Output } from '../output.js';
import { collectTagList, intOption, parsedBy } from '../parse.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface ForgetFlags extends SnapshotFilterFlags {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: Duration;
  keepWithinHourly?: Duration;
  keepWithinDaily?: Duration;
  keepWithinWeekly?: Duration;
  keepWithinMonthly?: Duration;
  keepWithinYearly?: Duration;
  keepTag: string[][];
  groupBy: GroupBy;
  dryRun?: boolean;
  prune?: boolean;
}

/** One group's decision, as restic's `forget --json` prints it. */
interface GroupDecision {
  key: GroupKey;
  keep: SnapshotEntry[];
  remove: SnapshotEntry[];
  reasons: KeepReason<SnapshotEntry>[];
}

const durationOption = parsedBy(parseDuration);

export function forgetCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(new Command('forget').description('remove snapshots by a retention policy (as restic\'s) or by ID; their data stays until a prune'), 'only snapshots')
    .argument('[snapshot...]', 'remove these snapshots (IDs, prefixes or latest) instead of applying a policy')
    .option('-l, --keep-last <n>', 'keep the newest n snapshots', intOption)
    .option('-H, --keep-hourly <n>', 'keep the newest snapshot of each of the newest n hours that have one', intOption)
    .option('-d, --keep-daily <n>', 'likewise for days', intOption)
    .option('-w, --keep-weekly <n>', 'likewise for ISO weeks', intOption)
    .option('-m, --keep-monthly <n>', 'likewise for months', intOption)
    .option('-y, --keep-yearly <n>', 'likewise for years', intOption)
    .option('--keep-within <duration>', 'keep snapshots newer than duration (e.g. 1y5m7d2h) before the newest snapshot', durationOption)
    .option('--keep-within-hourly <duration>', 'keep the newest snapshot of each hour within duration of the newest snapshot', durationOption)
    .option('--keep-within-daily <duration>', 'likewise for days', durationOption)
    .option('--keep-within-weekly <duration>', 'likewise for ISO weeks', durationOption)
    .option('--keep-within-monthly <duration>', 'likewise for months', durationOption)
    .option('--keep-within-yearly <duration>', 'likewise for years', durationOption)
    .option('--keep-tag <taglist>', 'keep snapshots with all of these comma-separated tags (repeatable: any of the lists)', collectTagList, [])
    .addOption(
      new Option('-g, --group-by <group>', 'apply the policy to each group of snapshots with the same host, paths and/or tags, comma-separated (\'\' for one group)')
        .argParser(parsedBy(parseGroupBy))
        .default(parseGroupBy('host,paths'), 'host,paths'),
    )
    .option('-n, --dry-run', 'show what would be removed, remove nothing')
    .option('--prune', 'then give back the space of what no snapshot needs any more (prune, with its defaults)')
    .action(async (ids: string[], flags: ForgetFlags, cmd: Command) => {
      const ctx = context(cmd);
      const policy = policyOf(flags);
      if (ids.length === 0 && isEmptyPolicy(policy)) throw new ScrateError('no policy was specified, no snapshots will be removed', ExitCode.fatal, 'give --keep-* options or snapshot IDs');
      // As restic: forget takes an exclusive lock, on a dry run too.
      await withRepository(
        ctx,
        'exclusive',
        async (repo, session) => {
          if (ids.length && !isEmptyPolicy(policy)) ctx.out.warn('snapshot IDs are given: no policy is applied');
          const groups = ids.length ? [] : await decide(repo, flags, policy, ctx.out);
          const removed = ids.length ? await namedSnapshots(repo, ids, flags, ctx.out) : groups.flatMap((g) => g.remove);
          if (!flags.dryRun) {
            // Only now, with every decision made. A version 2 repository takes no writes: `keys` refuses.
            void repo.keys;
            for (const e of removed) await repo.backend.remove('snapshots', e.id);
          }
          report(ctx.out, groups, removed, !!flags.dryRun);
          if (flags.prune && !flags.dryRun) {
            const stats = await prune(repo, { ...PRUNE_DEFAULTS, lock: session.lock, signal: session.signal, onWarning: (m) => ctx.out.warn(m) });
            if (!ctx.out.json) reportPrune(ctx.out, stats, false);
          }
        },
        { index: false },
      );
    });
}

function policyOf(f: ForgetFlags): Policy {
  return {
    last: f.keepLast,
    hourly: f.keepHourly,
    daily: f.keepDaily,
    weekly: f.keepWeekly,
    monthly: f.keepMonthly,
    yearly: f.keepYearly,
    within: f.keepWithin,
    withinHourly: f.keepWithinHourly,
    withinDaily: f.keepWithinDaily,
    withinWeekly: f.keepWithinWeekly,
    withinMonthly: f.keepWithinMonthly,
    withinYearly: f.keepWithinYearly,
    tags: f.keepTag,
  };
}

/** The policy applied to each group of the snapshots the filter flags let through. */
async function decide(repo: Repository, flags: ForgetFlags, policy: Policy, out: Output): Promise<GroupDecision[]> {
  const all = await listSnapshots(repo, (id, err) => out.warn(`snapshot ${shortId(id)} skipped: ${displayName(err.message)}`));
  const filter = snapshotFilter(flags);
  const candidates = all.filter((e) => matches(e.snapshot, filter)).map((entry) => ({ ...entry.snapshot, id: entry.id, time: Date.parse(entry.snapshot.time), entry }));
  const entries = (list: typeof candidates) => list.map((c) => c.entry);
  const now = Date.now();
  return groupSnapshots(candidates, flags.groupBy).map(({ key, snapshots }) => {
    const d = applyPolicy(snapshots, policy, now);
    return { key, keep: entries(d.keep), remove: entries(d.remove), reasons: d.reasons.map((r) => ({ ...r, snapshot: r.snapshot.entry })) };
  });
}

/**
 * The snapshots named on the command line, as restic finds them: `latest` narrowed by the
 * filter flags, the others by ID alone; one that is not found, or does not load, is skipped
 * with a warning.
 */
async function namedSnapshots(repo: Repository, ids: string[], flags: ForgetFlags, out: Output): Promise<SnapshotEntry[]> {
  const filter = snapshotFilter(flags);
  if (!ids.includes('latest') && (filter.host !== undefined || filter.paths?.length || filter.tags?.length)) out.warn('--host, --path and --tag are ignored: snapshot IDs are given');
  const found = new Map<string, SnapshotEntry>();
  for (const spec of ids) {
    try {
      const e = await findSnapshot(repo, spec, filter);
      found.set(e.id, e);
    } catch (err) {
      if (!(err instanceof ScrateError)) throw err;
      out.warn(`ignoring ${displayName(spec)}: ${displayName(err.message)}`);
    }
  }
  return [...found.values()];
}

function report(out: Output, groups: GroupDecision[], removed: SnapshotEntry[], dryRun: boolean): void {
  if (out.json) {
    out.jsonLine(
      groups.map((g) => ({
        ...g.key,
        keep: g.keep.map(snapshotJson),
        remove: g.remove.map(snapshotJson),
        reasons: g.reasons.map((r) => ({ snapshot: snapshotJson(r.snapshot), matches: r.matches, counters: r.counters })),
      })),
    );
    return;
  }
  for (const g of groups) {
    const header = groupHeader(g.key);
    if (header) out.info(header);
    if (g.keep.length) table(out, `keep ${g.keep.length} snapshots:`, g.keep, new Map(g.reasons.map((r) => [r.snapshot.id, r.matches])));
    if (g.remove.length) table(out, `remove ${g.remove.length} snapshots:`, g.remove);
  }
  if (removed.length === 0) return;
  const names = removed.map((e) => shortId(e.id)).sort();
  if (dryRun) out.info(`Would have removed the following snapshots:\n{${names.join(' ')}}\n`);
  else out.info(`removed ${removed.length} snapshot${removed.length === 1 ? '' : 's'}`);
}

/** Oldest first, as restic prints them, in the columns of `scrate snapshots` with the reasons beside the kept ones. */
function table(out: Output, title: string, list: SnapshotEntry[], reasons?: Map<string, string[]>): void {
  out.info(title);
  const rows = [...list].reverse().map((e) => {
    const sn = e.snapshot;
    const cells = [shortId(e.id), humanTime(Date.parse(sn.time)), displayName(sn.hostname), sn.tags.map(displayName).join(',')];
    if (reasons) cells.push(reasons.get(e.id)!.join(', '));
    return [...cells, sn.paths.map(displayName).join(', '), displayName(Writers.label(e.writer))];
  });
  out.table(['ID', 'Time', 'Host', 'Tags', ...(reasons ? ['Reasons'] : []), 'Paths', 'Writer'], rows);
  out.info(`${list.length} snapshots\n`);
}
