import { Command, InvalidArgumentError, Option } from 'commander';
import { check, type CheckErrorKind, type CheckResult } from '../../checker/checker.js';
import { MAX_GROUPS, type ReadSubset } from '../../checker/subset.js';
import { ExitCode } from '../../errors.js';
import { shortId } from '../../repository/ids.js';
import type { Repository } from '../../repository/repository.js';
import { compareRepositories, type CompareResult } from '../../replicate/compare.js';
import { listSnapshots } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { addFromAccessOptions, withFromRepository, type FromRepoOptions } from '../from-repo.js';
import type { Output } from '../output.js';
import { sizeOption } from '../parse.js';
import { ProgressMeter } from '../../util/progress.js';

interface CheckFlags extends Omit<FromRepoOptions, 'fromRepo'> {
  readData?: boolean;
  readDataSubset?: ReadSubset;
  compare?: string;
}

/** restic's three forms: `n/t` (group n of t, by pack ID), `x%` (at random), or a size (at random). */
function readDataSubsetOption(value: string): ReadSubset {
  const group = /^(\d+)\/(\d+)$/.exec(value.trim());
  if (group) {
    const [part, of] = [Number(group[1]), Number(group[2])];
    if (part < 1 || part > of || of > MAX_GROUPS) throw new InvalidArgumentError(`n/t with 1 <= n <= t <= ${MAX_GROUPS}`);
    return { part, of };
  }
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(value.trim());
  if (percent) {
    const p = Number(percent[1]);
    if (p <= 0 || p > 100) throw new InvalidArgumentError('a share above 0% and at most 100%');
    return { percent: p };
  }
  const bytes = sizeOption(value);
  if (bytes <= 0) throw new InvalidArgumentError('a size above 0');
  return { bytes };
}

export function checkCommand(context: (cmd: Command) => Context): Command {
  const cmd = new Command('check')
    .description('verify the repository (snapshots, trees, index, packs) and name the files of each snapshot that a problem costs')
    .option('--read-data', 'also download every pack and verify every blob in it')
    .addOption(
      new Option('--read-data-subset <subset>', 'read only some packs: "n/t" (group n of t, by pack ID: t runs read every pack once), "x%" or a size such as 500M (packs at random)')
        .argParser(readDataSubsetOption)
        .conflicts('readData'),
    )
    .option('--compare <location>', 'also compare this repository\'s snapshots with their sources in another (copy --from-repo): the same snapshots, trees and, with --read-data, file contents');
  return addFromAccessOptions(cmd, '--compare').action(async (flags: CheckFlags, cmd: Command) => {
    const ctx = context(cmd);
    const { out } = ctx;
    const readData = flags.readDataSubset ?? flags.readData;
    // Reading data, packs done of the total; else the step under way.
    const progress = readData && out.showsProgress ? new ProgressMeter() : undefined;
    const onProgress = out.showsProgress && !progress ? (w: string) => out.progress(`checking ${w}`) : undefined;
    let compared: CompareResult | undefined;
    // With --compare the source is opened (and locked) first; the comparison runs under the
    // target's lock, after its check: equal IDs prove equal bytes only where the target holds them.
    const checked = (src?: Repository, signal?: AbortSignal) =>
      withRepository(
        ctx,
        'shared',
        async (repo, session) => {
          out.follow(progress, 'packs');
          const both = AbortSignal.any([session.signal, ...(signal ? [signal] : [])]);
          const result = await check(repo, { readData, signal: both, onProgress, progress }).finally(() => out.stopProgress());
          if (src) compared = await compareWith(ctx, src, repo, !!flags.readData, both);
          return result;
        },
        { index: false },
      );
    const result = flags.compare ? await withFromRepository(ctx, { ...flags, fromRepo: flags.compare }, (src, signal) => checked(src, signal)) : await checked();
    if (out.json) out.jsonLine({ ...checkSummaryJson(result), ...(compared && { compare: compareJson(compared) }) });
    else {
      report(out, result, !!readData);
      if (compared) reportComparison(out, compared, flags.compare!);
    }
    if (result.errors.length || compared?.differences.length) process.exitCode = ExitCode.fatal;
  });
}

async function compareWith(ctx: Context, src: Repository, dst: Repository, readData: boolean, signal: AbortSignal): Promise<CompareResult> {
  const { out } = ctx;
  const skipped = (id: string) => out.warn(`snapshot ${shortId(id)} of ${src.backend.location} skipped: it does not load`);
  const onProgress = out.showsProgress ? (w: string) => out.progress(`comparing ${w}`) : undefined;
  return compareRepositories(src, dst, await listSnapshots(src, skipped), await listSnapshots(dst), { readData, signal, onProgress });
}

function reportComparison(out: Output, c: CompareResult, location: string): void {
  for (const s of c.uncopied) out.info(`snapshot ${shortId(s.id)} of ${location} has no copy here`);
  for (const t of c.unmatched) out.info(`snapshot ${shortId(t.id)} has no source in ${location}`);
  for (const d of c.differences) out.warn(`snapshot ${shortId(d.target)} (copy of ${shortId(d.source)}): ${displayName(d.path)}: ${d.what}`);
  const read = c.filesRead ? `, ${c.filesRead} file(s) read from both` : '';
  out.info(`compared ${c.pairs} snapshot(s) with ${location}: ${c.sameRoot} equal by their root tree${read}; ${c.differences.length} difference(s)`);
}

function compareJson(c: CompareResult): object {
  return {
    pairs: c.pairs,
    same_root: c.sameRoot,
    files_read: c.filesRead,
    uncopied: c.uncopied.map((s) => s.id),
    unmatched: c.unmatched.map((t) => t.id),
    differences: c.differences.map((d) => ({ source: d.source, target: d.target, path: displayName(d.path), what: d.what, unreadable: d.unreadable })),
  };
}

function report(out: Output, result: CheckResult, readData: boolean): void {
  const lost = new Set<string>();
  const hurt = new Set<string>();
  for (const e of result.errors) {
    // The checker's messages name files of the repository's trees as they are.
    out.warn(displayName(e.message));
    for (const d of e.dependents) {
      out.warn(`  needed by snapshot ${d.snapshot.slice(0, 8)}: ${displayName(d.path)}`);
      lost.add(`${d.snapshot}\0${d.path}`);
      hurt.add(d.snapshot);
    }
  }
  out.info(`${result.snapshots} snapshots, ${result.trees} trees, ${result.packs} packs${readData ? ` (${result.packsRead} read)` : ''}; ${result.errors.length} error(s)`);
  if (lost.size) out.info(`${lost.size} file(s) or directories in ${hurt.size} snapshot(s) are damaged or lost`);
  if (brokenPacks(result).length) out.info('`scrate repair packs ID…` keeps what can be read of those packs and drops them from the index');
  if (suggestsRepairIndex(result)) out.info('`scrate repair index` rebuilds the index from the packs');
  if (lost.size) out.info('`scrate backup` stores again what still exists; `scrate repair snapshots` rewrites the snapshots without what is lost');
  if (result.unreferencedPacks) out.info(`note: ${result.unreferencedPacks} pack(s) are not in any index (left by interrupted runs; \`scrate prune\` removes them)`);
}

const PACK_PROBLEMS = new Set<CheckErrorKind>(['pack-missing', 'pack-damaged', 'pack-size']);

/** The packs `repair packs` is for (restic's broken_packs). */
function brokenPacks(result: CheckResult): string[] {
  return [...new Set(result.errors.filter((e) => PACK_PROBLEMS.has(e.kind)).map((e) => e.object))];
}

function suggestsRepairIndex(result: CheckResult): boolean {
  return result.errors.some((e) => e.kind === 'index' || (e.kind === 'blob-missing' && result.unreferencedPacks > 0));
}

/** restic's check summary (restic 0.17), then scrate's counts and each problem with what it costs. */
function checkSummaryJson(result: CheckResult): object {
  return {
    message_type: 'summary',
    num_errors: result.errors.length,
    broken_packs: brokenPacks(result),
    suggest_repair_index: suggestsRepairIndex(result),
    suggest_prune: result.unreferencedPacks > 0,
    snapshots: result.snapshots,
    trees: result.trees,
    packs: result.packs,
    packs_read: result.packsRead,
    unreferenced_packs: result.unreferencedPacks,
    errors: result.errors,
  };
}
