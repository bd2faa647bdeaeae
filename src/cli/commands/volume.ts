import { Command } from 'commander';
import type { IntegrityError, ScrateError } from '../../errors.js';
import { shortId } from '../../repository/ids.js';
import { Lock } from '../../repository/lock.js';
import type { Repository } from '../../repository/repository.js';
import { displayName } from '../../tree/node.js';
import { createVolume, DEFAULT_BLOCK_SIZE, removeVolume, volumeStatuses } from '../../volume/manage.js';
import { findVolume, type VolumeEntry } from '../../volume/record.js';
import { withRepository, type Context, type Session } from '../context.js';
import { snakeCaseKeys } from '../json/snake-case.js';
import { humanTime } from '../local-time.js';
import { formatBytes } from '../output.js';
import { sizeOption } from '../parse.js';

type MakeContext = (cmd: Command) => Context;

/** `volume` and its subcommands, each made by one function of this file. */
export function volumeCommand(context: MakeContext): Command {
  const volume = new Command('volume').description('volumes: thin, versioned virtual disks stored in the repository (commits are snapshots)');
  for (const make of [createSubcommand, listSubcommand, rmSubcommand]) volume.addCommand(make(context));
  return volume;
}

/** How a skipped record is said. */
function skippedWarning(ctx: Context): (name: string, err: IntegrityError) => void {
  return (name, err) => ctx.out.warn(`volume record ${shortId(name)} skipped: ${displayName(err.message)}`);
}

/**
 * Runs `fn` on the volume `spec` names while holding its lock (a shared repository lock that
 * also excludes every other holder of the volume), with the index loaded when `index`.
 */
export async function withVolume<T>(ctx: Context, spec: string, fn: (repo: Repository, volume: VolumeEntry, session: Session) => Promise<T>, opts: { index?: boolean } = {}): Promise<T> {
  return withRepository(
    ctx,
    'none',
    async (repo, session) => {
      const volume = await findVolume(repo, spec, skippedWarning(ctx));
      const lost = new AbortController();
      const lock = await Lock.acquire(repo, false, (err: ScrateError) => lost.abort(err), { id: volume.record.volume, name: volume.record.name });
      try {
        if (opts.index) await repo.loadIndex((m) => ctx.out.warn(m));
        return await fn(repo, volume, { lock, signal: AbortSignal.any([session.signal, lost.signal]) });
      } finally {
        await lock.release();
      }
    },
    { index: false },
  );
}

function createSubcommand(context: MakeContext): Command {
  return new Command('create')
    .description('create a volume of a fixed size; nothing is stored for its blocks until they are written (commit 0 is its empty state)')
    .argument('<name>', 'the volume\'s name (also the name of its image file in snapshots)')
    .requiredOption('--size <size>', 'the volume\'s size: bytes or with a K/M/G/T suffix, a multiple of 512', sizeOption)
    .option('--block-size <size>', 'the unit stored and deduplicated: a power of two from 4K to 1M', sizeOption, DEFAULT_BLOCK_SIZE)
    .action(async (name: string, flags: { size: number; blockSize: number }, cmd: Command) => {
      const ctx = context(cmd);
      const { record, name: recordName } = await withRepository(ctx, 'shared', (repo) => createVolume(repo, { name, size: flags.size, blockSize: flags.blockSize, onSkipped: skippedWarning(ctx) }));
      if (ctx.out.json) ctx.out.jsonLine(snakeCaseKeys({ ...record, id: record.volume, record: recordName }));
      else ctx.out.info(`created volume ${displayName(name)} (ID ${shortId(record.volume)}, ${formatBytes(record.size)} in blocks of ${formatBytes(record.blockSize)}), commit ${shortId(record.commit!)}`);
    });
}

function listSubcommand(context: MakeContext): Command {
  return new Command('list').description('list volumes: size, block size, bytes allocated, last commit and who serves each').action(async (_: unknown, cmd: Command) => {
    const ctx = context(cmd);
    const statuses = await withRepository(ctx, 'none', (repo) => volumeStatuses(repo, skippedWarning(ctx)));
    if (ctx.out.json) {
      ctx.out.jsonLine(
        statuses.map(({ entry: { record }, allocated, error, servedBy }) =>
          snakeCaseKeys({ name: record.name, id: record.volume, size: record.size, blockSize: record.blockSize, allocated, lastCommit: record.commit, seq: record.seq, created: record.created, time: record.time, servedBy: servedBy ?? null, ...(error && { error }) }),
        ),
      );
      return;
    }
    for (const s of statuses) if (s.error) ctx.out.warn(`volume ${displayName(s.entry.record.name)}: ${displayName(s.error)}`);
    ctx.out.table(
      ['Name', 'ID', 'Size', 'Block size', 'Allocated', 'Last commit', 'Served by'],
      statuses.map(({ entry: { record }, allocated, servedBy }) => [
        displayName(record.name),
        shortId(record.volume),
        formatBytes(record.size),
        formatBytes(record.blockSize),
        allocated === null ? '?' : formatBytes(allocated),
        record.commit ? shortId(record.commit) : '',
        servedBy ? `${servedBy.holder} since ${humanTime(Date.parse(servedBy.since))}` : '',
      ]),
    );
  });
}

function rmSubcommand(context: MakeContext): Command {
  return new Command('rm')
    .description('remove a volume: its records (its head); its commits stay unless --forget-commits. A prune then gives back the space')
    .argument('<volume>', 'the volume\'s name or ID prefix')
    .option('--forget-commits', 'also remove the volume\'s commits (its snapshots)')
    .action(async (spec: string, flags: { forgetCommits?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const { volume, removed } = await withVolume(ctx, spec, async (repo, volume) => ({ volume, removed: await removeVolume(repo, volume, !!flags.forgetCommits) }));
      const { record } = volume;
      if (ctx.out.json) ctx.out.jsonLine(snakeCaseKeys({ name: record.name, id: record.volume, recordsRemoved: removed.records, commitsRemoved: removed.commits }));
      else ctx.out.info(`removed volume ${displayName(record.name)} (ID ${shortId(record.volume)}): ${removed.records} record(s)${flags.forgetCommits ? `, ${removed.commits} commit(s)` : ''}`);
    });
}
