import { Command, Option } from 'commander';
import { collectStats, STATS_MODES, type StatsMode } from '../../browse/stats.js';
import { shortId } from '../../repository/ids.js';
import { selectSnapshots } from '../../snapshot/select.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { statsJson } from '../json/stats.js';
import { formatBytes } from '../output.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

export function statsCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('stats')
      .description('count the files and sizes of snapshots (all that match the filters unless some are named), from trees and the index, as restic\'s modes')
      .argument('[snapshot...]', 'snapshot IDs, prefixes or "latest"')
      .addOption(
        new Option('--mode <mode>', 'restore-size: what a restore writes; files-by-contents: each content once; raw-data: the blobs stored; blobs-per-file: each content\'s blobs once per path')
          .choices(STATS_MODES)
          .default('restore-size'),
      ),
    'without snapshot IDs: only snapshots',
  ).action(async (specs: string[], flags: SnapshotFilterFlags & { mode: StatsMode }, cmd: Command) => {
    const ctx = context(cmd);
    const { out } = ctx;
    const stats = await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const snapshots = await selectSnapshots(repo, specs, snapshotFilter(flags), (id, err) => out.warn(`snapshot ${shortId(id)} skipped: ${displayName(err.message)}`));
      return collectStats(repo, snapshots, flags.mode, signal);
    });
    if (out.json) {
      out.jsonLine(statsJson(stats));
      return;
    }
    // restic's lines, those of what the mode does not count left out.
    const line = (label: string, value: string) => out.info(`${label.padStart(24)}:  ${value}`);
    out.info(`Stats in ${flags.mode} mode:`);
    line('Snapshots processed', String(stats.snapshotsCount));
    if (stats.totalBlobCount) line('Total Blob Count', String(stats.totalBlobCount));
    if (stats.totalFileCount) line('Total File Count', String(stats.totalFileCount));
    if (stats.totalUncompressedSize) line('Total Uncompressed Size', formatBytes(stats.totalUncompressedSize));
    line('Total Size', formatBytes(stats.totalSize));
    if (stats.compressionProgress) line('Compression Progress', `${stats.compressionProgress.toFixed(2)}%`);
    if (stats.compressionRatio) line('Compression Ratio', `${stats.compressionRatio.toFixed(2)}x`);
    if (stats.compressionSpaceSaving) line('Compression Space Saving', `${stats.compressionSpaceSaving.toFixed(2)}%`);
  });
}
