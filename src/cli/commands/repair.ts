import { Command } from 'commander';
import { repairIndex } from '../../maintenance/repair-index.js';
import { repairPacks } from '../../maintenance/repair-packs.js';
import { repairSnapshots } from '../../maintenance/repair-snapshots.js';
import type { RepairOptions } from '../../maintenance/repair-shared.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { snakeCaseKeys } from '../json/snake-case.js';
import type { Output } from '../output.js';

/** Progress on a terminal, none otherwise (see Output.showsProgress). */
function progress(out: Output, signal: AbortSignal): RepairOptions {
  return { signal, onProgress: out.showsProgress ? (w) => out.progress(w) : undefined };
}

export function repairCommand(context: (cmd: Command) => Context): Command {
  const repair = new Command('repair').description('repair a damaged repository: rebuild the index, salvage packs, write snapshots again without what is lost');

  repair
    .command('index')
    .description('rebuild the index from the packs: each read whole and verified, packs that fail are left out and named')
    .action(async (_: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      const result = await withRepository(ctx, 'exclusive', (repo, session) => repairIndex(repo, progress(out, session.signal)).finally(() => out.stopProgress()));
      if (out.json) {
        out.jsonLine(snakeCaseKeys(result));
        return;
      }
      for (const { pack, why } of result.leftOut) out.warn(`pack ${pack.slice(0, 12)} left out: ${displayName(why)}`);
      out.info(`indexed ${result.packs} packs (${result.blobs} blobs) in ${result.written} index file(s); removed ${result.removed} old index file(s)`);
      if (result.leftOut.length) out.info('`scrate repair packs ID…` keeps what can be read of the packs left out');
    });

  repair
    .command('packs')
    .description('store again what can be read of damaged or missing packs, then drop them from the index and the repository')
    .argument('<pack...>', 'pack IDs or unique prefixes (as `scrate check` names them)')
    .action(async (packs: string[], _: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      const results = await withRepository(ctx, 'exclusive', (repo, session) => repairPacks(repo, packs, progress(out, session.signal)).finally(() => out.stopProgress()));
      if (out.json) {
        out.jsonLine(snakeCaseKeys(results));
        return;
      }
      for (const r of results) {
        if (r.intact) {
          out.info(`pack ${r.pack.slice(0, 12)}: intact, left as it is`);
          continue;
        }
        for (const { blob, type, why } of r.lost) out.warn(`pack ${r.pack.slice(0, 12)}: lost ${type} blob ${blob.slice(0, 12)}: ${displayName(why)}`);
        out.info(`pack ${r.pack.slice(0, 12)}: ${r.saved} blob(s) stored again, ${r.lost.length} lost; the pack is dropped`);
      }
      if (results.some((r) => r.lost.length)) {
        out.info('`scrate check` names the files that need what is lost; `scrate backup` stores again what still exists; `scrate repair snapshots` writes the snapshots again without the rest');
      }
    });

  repair
    .command('snapshots')
    .description('write each snapshot that lost something again without it (a file that lost any blob is left out, a directory that does not load becomes empty), tagged "repaired"')
    .option('--forget', 'remove the damaged snapshots once their repaired ones are stored')
    .option('-n, --dry-run', 'only say what would be done')
    .action(async (flags: { forget?: boolean; dryRun?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      const results = await withRepository(ctx, flags.dryRun ? 'shared' : 'exclusive', (repo, session) =>
        repairSnapshots(repo, { ...flags, ...progress(out, session.signal) }).finally(() => out.stopProgress()),
      );
      if (out.json) {
        out.jsonLine(snakeCaseKeys(results));
        return;
      }
      for (const r of results) {
        const outcome = r.rootLost ? 'its root tree is lost: nothing to keep' : r.repaired ? `written again as ${r.repaired.slice(0, 8)}` : 'would be written again';
        out.info(`snapshot ${r.original.slice(0, 8)}: ${outcome}${r.forgotten ? ', and removed' : ''}`);
        for (const { path, why } of r.lost) out.info(`  without ${displayName(path)}: ${displayName(why)}`);
      }
      out.info(results.length === 0 ? 'no snapshot has lost anything' : `${results.length} snapshot(s) ${flags.dryRun ? 'would be' : 'were'} repaired`);
      if (results.length && !flags.forget && !flags.dryRun) out.info('the damaged snapshots are kept: `--forget` removes them');
    });

  return repair;
}
