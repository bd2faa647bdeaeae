import { Command, InvalidArgumentError } from 'commander';
import { prune, type PruneOptions, type PruneStats } from '../../maintenance/prune.js';
import { withRepository, type Context } from '../context.js';
import { snakeCaseKeys } from '../json/snake-case.js';
import { formatBytes, type Output } from '../output.js';
import { durationOption, sizeOption } from '../parse.js';
import { ProgressMeter } from '../../util/progress.js';

interface PruneFlags {
  maxUnused: PruneOptions['maxUnused'];
  maxRepackSize?: number;
  deleteAfter: number;
  dryRun?: boolean;
}

/** restic's forms: `5%`, a size, or `unlimited`. */
function maxUnusedOption(value: string): PruneOptions['maxUnused'] {
  if (value === 'unlimited') return 'unlimited';
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (percent) {
    const p = Number(percent[1]);
    if (p >= 100) throw new InvalidArgumentError('a share below 100%');
    return { percent: p };
  }
  return { bytes: sizeOption(value) };
}

export function pruneCommand(context: (cmd: Command) => Context): Command {
  return new Command('prune')
    .description('give back the space of data no snapshot needs (beside running backups: in two phases)')
    .option('--max-unused <limit>', 'unused space tolerated in packs kept as they are: a share of the used space (5%), a size, or "unlimited"', maxUnusedOption, PRUNE_DEFAULTS.maxUnused)
    .option('--max-repack-size <size>', 'repack at most this much data in one run', sizeOption)
    .option('--delete-after <duration>', 'beside running backups: how long packs found unused stay marked before a later prune deletes them', durationOption, PRUNE_DEFAULTS.deleteAfterMs)
    .option('-n, --dry-run', 'only say what would be done')
    .action(async (flags: PruneFlags, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      // Packs repacked of the total; the step under way as what is worked on.
      const progress = out.showsProgress ? new ProgressMeter() : undefined;
      const stats = await withRepository(ctx, flags.dryRun ? 'none' : 'maintenance', (repo, session) => {
        out.follow(progress, 'packs');
        return prune(repo, {
          maxUnused: flags.maxUnused,
          maxRepackSize: flags.maxRepackSize,
          deleteAfterMs: flags.deleteAfter,
          dryRun: flags.dryRun,
          lock: session.lock,
          signal: session.signal,
          onProgress: progress ? (w) => (progress.current[0] = w) : undefined,
          onWarning: (m) => out.warn(m),
          progress,
        }).finally(() => out.stopProgress());
      }, { index: false });
      if (out.json) out.jsonLine(snakeCaseKeys(stats));
      else reportPrune(out, stats, !!flags.dryRun);
    });
}

/** What a prune did (or would do), for people. */
export function reportPrune(out: Output, stats: PruneStats, dryRun: boolean): void {
  const { packs, bytes } = stats;
  out.info(`${stats.snapshots} snapshots; ${packs.total} packs, ${formatBytes(bytes.total)}: ${formatBytes(bytes.used)} used, ${formatBytes(bytes.unused)} unused`);
  const verb = dryRun ? 'would be' : 'were';
  out.info(`${packs.deleted} packs ${verb} deleted, ${packs.repacked} repacked (${formatBytes(bytes.repacked)}): ${formatBytes(bytes.freed)} ${verb} freed`);
  if (packs.junk) out.info(`${packs.junk} packs no index lists (left by interrupted runs) ${verb} removed`);
  if (!stats.exclusive) out.info(`backups are running: ${packs.marked} unused packs ${verb} marked for deletion by a later prune; ${stats.waiting} marked earlier still wait`);
  out.info(`unused space left: ${formatBytes(bytes.unusedAfter)}`);
}

/** prune's defaults, for `forget --prune`. */
export const PRUNE_DEFAULTS = { maxUnused: { percent: 5 }, deleteAfterMs: 3_600_000 } as const;
