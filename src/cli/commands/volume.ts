import { Command } from 'commander';
import { ExitCode, ScrateError, type IntegrityError } from '../../errors.js';
import { shortId } from '../../repository/ids.js';
import { Lock } from '../../repository/lock.js';
import type { Repository } from '../../repository/repository.js';
import { displayName } from '../../tree/node.js';
import { createVolume, DEFAULT_BLOCK_SIZE, removeVolume, volumeStatuses } from '../../volume/manage.js';
import { findVolume, type VolumeEntry } from '../../volume/record.js';
import { stateRoot, withRepository, type Context, type Session } from '../context.js';
import { snakeCaseKeys } from '../json/snake-case.js';
import { humanTime } from '../local-time.js';
import { formatBytes } from '../output.js';
import { collectTagList, durationOption, parsedBy, sizeOption } from '../parse.js';
import { serveImage } from '../../volume/fuse-image.js';
import type { BlockExport } from '../../volume/nbd/export.js';
import { serveNbd } from '../../volume/nbd/front-end.js';
import type { Listen } from '../../volume/nbd/server.js';
import { commitHere, commitServed, runVolume, versionExport, type RunVolumeOptions } from '../../volume/serve.js';

const DEFAULT_CACHE_BYTES = 4 * 1024 ** 3;
/** Room for a few segments of the largest blocks (1 MiB). */
const MIN_CACHE_BYTES = 64 * 1024 ** 2;
const DEFAULT_WRITE_DELAY_MS = 2000;
const READ_CACHE_BYTES = 256 * 1024 * 1024;
/** How often uploaded blocks are recorded in a head. SCRATE_TEST_VOLUME_CHECKPOINT_MS shortens it, for tests only (crash tests). */
const CHECKPOINT_MS = Number(process.env['SCRATE_TEST_VOLUME_CHECKPOINT_MS']) > 0 ? Number(process.env['SCRATE_TEST_VOLUME_CHECKPOINT_MS']) : 60_000;

type MakeContext = (cmd: Command) => Context;

/** A session holding a volume's lock; `lockLost` is aborted only by the lock's loss. */
interface VolumeSession extends Session {
  lock: Lock;
  lockLost: AbortSignal;
}

/** `volume` and its subcommands, each made by one function of this file. */
export function volumeCommand(context: MakeContext): Command {
  const volume = new Command('volume').description('volumes: thin, versioned virtual disks stored in the repository (commits are snapshots)');
  for (const make of [createSubcommand, listSubcommand, serveSubcommand, mountSubcommand, commitSubcommand, rmSubcommand]) volume.addCommand(make(context));
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
export async function withVolume<T>(ctx: Context, spec: string, fn: (repo: Repository, volume: VolumeEntry, session: VolumeSession) => Promise<T>, opts: { index?: boolean } = {}): Promise<T> {
  return withRepository(
    ctx,
    'none',
    async (repo, session) => {
      const volume = await findVolume(repo, spec, skippedWarning(ctx));
      const lost = new AbortController();
      const lock = await Lock.acquire(repo, false, (err: ScrateError) => lost.abort(err), { id: volume.record.volume, name: volume.record.name });
      try {
        if (opts.index) await repo.loadIndex((m) => ctx.out.warn(m));
        return await fn(repo, volume, { lock, signal: AbortSignal.any([session.signal, lost.signal]), lockLost: lost.signal });
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

/** Options a writable volume is served with, by `serve` and `mount`. */
function withServeOptions(cmd: Command): Command {
  return cmd
    .option('--read-only', 'serve without writing: the head, or with --at a commit (no cache, no volume lock)')
    .option('--at <snapshot>', 'serve this commit of the volume (needs --read-only)')
    .option('--commit-every <duration>', 'commit on this period when something was written (e.g. 15m, 1h)', durationOption)
    .option('--cache-size <size>', 'the write-back cache\'s limit: writes wait for uploads above 90 % of it', sizeOption, DEFAULT_CACHE_BYTES)
    .option('--cache-dir <dir>', 'where the write-back cache is kept (default: below the cache directory; needed with --no-cache)')
    .option('--write-delay <duration>', 'upload a block once it was not written for this long', durationOption, DEFAULT_WRITE_DELAY_MS)
    .option('--discard-cache', 'drop writes an earlier serve left in this host\'s cache instead of replaying them (they are lost)');
}

interface ServeFlags {
  readOnly?: boolean;
  at?: string;
  commitEvery?: number;
  cacheSize: number;
  cacheDir?: string;
  writeDelay: number;
  discardCache?: boolean;
}

/** Where the write-back cache goes: refused before anything is opened when there is none. */
function cacheRootOf(ctx: Context, flags: Pick<ServeFlags, 'cacheSize' | 'cacheDir'>): string {
  if (flags.cacheSize < MIN_CACHE_BYTES) throw new ScrateError(`--cache-size must be at least ${formatBytes(MIN_CACHE_BYTES)}`);
  const cacheRoot = flags.cacheDir ?? stateRoot(ctx.globals);
  if (!cacheRoot) throw new ScrateError('a volume needs a local cache for its writes', ExitCode.fatal, 'give --cache-dir DIR (--no-cache keeps no cache directory)');
  return cacheRoot;
}

function volumeOptions(ctx: Context, flags: ServeFlags, session: VolumeSession): RunVolumeOptions {
  const cacheRoot = cacheRootOf(ctx, flags);
  return {
    cacheRoot,
    cacheBytes: flags.cacheSize,
    readCacheBytes: READ_CACHE_BYTES,
    writeDelayMs: flags.writeDelay,
    checkpointMs: CHECKPOINT_MS,
    discardCache: !!flags.discardCache,
    commitEveryMs: flags.commitEvery,
    signal: session.signal,
    lockLost: session.lockLost,
    onInfo: (m) => ctx.out.info(m),
    onWarning: (m) => ctx.out.warn(m),
  };
}

/**
 * Serves the volume through `frontEnd`: read-only versions under a plain shared lock, the
 * volume itself under its lock with the write-back cache.
 */
async function serveVolume(ctx: Context, spec: string, flags: ServeFlags, frontEnd: (exported: BlockExport, signal: AbortSignal) => Promise<void>): Promise<void> {
  if (flags.at !== undefined && !flags.readOnly) throw new ScrateError('--at serves a commit, which never changes', ExitCode.fatal, 'add --read-only');
  if (!flags.readOnly) cacheRootOf(ctx, flags);
  if (flags.readOnly) {
    await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const { record } = await findVolume(repo, spec, skippedWarning(ctx));
      await frontEnd(await versionExport(repo, record, flags.at, READ_CACHE_BYTES), signal);
      if (signal.aborted) throw signal.reason;
    });
    return;
  }
  await withVolume(
    ctx,
    spec,
    (repo, entry, session) => runVolume(repo, entry, session.lock, (served, signal) => frontEnd(served.exported, signal), volumeOptions(ctx, flags, session)),
    { index: true },
  );
}

function serveSubcommand(context: MakeContext): Command {
  return withServeOptions(
    new Command('serve')
      .description('serve a volume as an NBD export (nbdfuse, qemu, nbdcopy) in the foreground until stopped; writes are cached locally and uploaded behind')
      .argument('<volume>', 'the volume\'s name or ID prefix')
      .option('--socket <path>', 'listen on this unix socket (mode 0600)')
      .option('--listen <host:port>', 'listen on this TCP address (loopback only: NBD has no encryption here)', parsedBy(parseListen)),
  ).action(async (spec: string, flags: ServeFlags & { socket?: string; listen?: Listen }, cmd: Command) => {
    const ctx = context(cmd);
    if (!!flags.socket === !!flags.listen) throw new ScrateError('give either --socket PATH or --listen HOST:PORT');
    const where: Listen = flags.socket ? { socket: flags.socket } : flags.listen!;
    await serveVolume(ctx, spec, flags, (exported, signal) => serveNbd(exported, where, signal, (m) => ctx.out.info(m), (err) => ctx.out.warn(`NBD: ${(err as Error).message}`)));
  });
}

function mountSubcommand(context: MakeContext): Command {
  return withServeOptions(
    new Command('mount')
      .description('show a volume as one regular file of its size in DIR (FUSE), in the foreground until unmounted: loop-mount any filesystem on it')
      .argument('<volume>', 'the volume\'s name or ID prefix')
      .argument('<dir>', 'an empty directory')
      .option('--allow-other', 'let other users than the one mounting in'),
  ).action(async (spec: string, dir: string, flags: ServeFlags & { allowOther?: boolean }, cmd: Command) => {
    const ctx = context(cmd);
    await serveVolume(ctx, spec, flags, (exported, signal) =>
      serveImage(dir, exported, { allowOther: flags.allowOther, signal, onWarning: (m) => ctx.out.warn(m), onMounted: (file) => ctx.out.info(`serving ${exported.description} as ${file}`) }),
    );
  });
}

function commitSubcommand(context: MakeContext): Command {
  return new Command('commit')
    .description('commit the volume as it is now: a snapshot (restore, mount, copy and forget work on it). Asks the serve on this host, if any')
    .argument('<volume>', 'the volume\'s name or ID prefix')
    .option('--tag <tags>', 'tag the commit with these comma-separated tags (repeatable)', collectTagList, [])
    .option('--cache-dir <dir>', 'where the write-back cache is kept (as given to serve)')
    .action(async (spec: string, flags: { tag: string[][]; cacheDir?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const tags = flags.tag.flat();
      const asked = await withRepository(ctx, 'none', async (repo) => {
        const { record } = await findVolume(repo, spec, skippedWarning(ctx));
        return { record, snapshot: await commitServed(repo, record, tags) };
      }, { index: false });
      const snapshot =
        asked.snapshot ??
        (await withVolume(ctx, spec, (repo, entry, session) => commitHere(repo, entry, session.lock, tags, volumeOptions(ctx, { cacheSize: DEFAULT_CACHE_BYTES, writeDelay: 0, cacheDir: flags.cacheDir }, session)), { index: true }));
      if (ctx.out.json) ctx.out.jsonLine(snakeCaseKeys({ name: asked.record.name, id: asked.record.volume, snapshot }));
      else ctx.out.info(`committed volume ${displayName(asked.record.name)}: snapshot ${shortId(snapshot)}`);
    });
}

/** host:port, loopback only. */
function parseListen(value: string): Listen {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(value);
  if (!m) throw new Error('not HOST:PORT');
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new Error('only a loopback address: NBD carries the disk unencrypted (use a unix socket, or ssh to forward one)');
  return { host, port: Number(m[2]) };
}
