import { Command } from 'commander';
import { stat } from 'node:fs/promises';
import type { BlobReader } from '../../repository/repository.js';
import { RestoreFilter } from '../../filter/restore-filter.js';
import { findImage, restoreImage } from '../../restorer/image.js';
import { restore } from '../../restorer/restorer.js';
import { displayName, type Node } from '../../tree/node.js';
import { ExitCode, ScrateError } from '../../errors.js';
import { Writers } from '../../repository/writers.js';
import { findSnapshot, type Snapshot } from '../../snapshot/snapshot.js';
import { withRepository, type Context } from '../context.js';
import { errorMessage, writeExitError } from '../json/messages.js';
import { RestoreJson } from '../json/restore.js';
import { formatBytes, formatDuration } from '../output.js';
import { collect } from '../parse.js';
import { ProgressMeter } from '../../util/progress.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface RestoreFlags extends SnapshotFilterFlags {
  target?: string;
  include: string[];
  iinclude: string[];
  exclude: string[];
  iexclude: string[];
  overwrite?: boolean;
  numericOwner?: boolean;
  allowPrivileged?: boolean;
  verify?: boolean;
}

/** "ID:sub/path" names a part of a snapshot; the ID part never contains a colon. */
function splitSpec(spec: string): { id: string; subpath?: string } {
  const at = spec.indexOf(':');
  return at < 0 ? { id: spec } : { id: spec.slice(0, at), subpath: spec.slice(at + 1) || '/' };
}

export function restoreCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('restore')
      .description('write the files of a snapshot into a directory')
      .argument('<snapshot>', 'snapshot ID, prefix or "latest", optionally followed by :path inside it')
      .option('-t, --target <dir>', 'directory to restore into; for a disk image, a block device or a file (required)')
      .option('-i, --include <pattern>', 'restore only paths matching the pattern, and the directories above them (repeatable; see PATTERNS)', collect, [])
      .option('--iinclude <pattern>', 'as --include, ignoring case (repeatable)', collect, [])
      .option('-e, --exclude <pattern>', 'leave out paths matching the pattern (repeatable; not with --include)', collect, [])
      .option('--iexclude <pattern>', 'as --exclude, ignoring case (repeatable)', collect, [])
      .option('--overwrite', 'replace files that already exist in the target')
      .option('--numeric-owner', 'restore the stored uid/gid, not the user and group names')
      .option('--allow-privileged', 'restore setuid/setgid bits and device nodes of a snapshot written with a write-only key')
      .option('--verify', 'disk images: read the written image back and check it against the snapshot'),
  ).action(async (spec: string, flags: RestoreFlags, cmd: Command) => {
    const ctx = context(cmd);
    if (!flags.target) throw new ScrateError('no target given', ExitCode.fatal, 'use --target DIR (or a device or file for a disk image)');
    const target = flags.target;
    const filter = new RestoreFilter(flags);
    const { id, subpath } = splitSpec(spec);
    await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const found = await findSnapshot(repo, id, snapshotFilter(flags));
      ctx.out.info(`restoring snapshot ${found.id.slice(0, 8)} of ${found.snapshot.paths.map(displayName).join(', ')}, written by ${displayName(Writers.label(found.writer))}, to ${displayName(target)}`);
      const reader = repo.reader(found.writer);
      const image = await findImage(reader, found.snapshot, subpath);
      const targetIsDir = (await stat(target).catch(() => null))?.isDirectory() ?? false;
      if (image && !targetIsDir) await restoreDisk(ctx, signal, reader, image, target, flags);
      else await restoreFiles(ctx, signal, reader, found.snapshot, subpath, filter, flags);
    });
  });
}

async function restoreFiles(ctx: Context, signal: AbortSignal, reader: BlobReader, snapshot: Snapshot, subpath: string | undefined, filter: RestoreFilter, flags: RestoreFlags): Promise<void> {
  const { out } = ctx;
  const started = Date.now();
  const json = out.json ? new RestoreJson(out) : undefined;
  const progress = out.showsProgress ? new ProgressMeter() : undefined;
  out.follow(progress);
  const stats = await restore(reader, snapshot, {
    target: flags.target!,
    subpath,
    filter,
    overwrite: flags.overwrite,
    numericOwner: flags.numericOwner,
    allowPrivileged: flags.allowPrivileged,
    signal,
    onError: json ? (p, m) => out.jsonLine(errorMessage(p, m, 'restore'), process.stderr) : (p, m) => out.warn(`${p}: ${m}`),
    onNote: (p, m) => out.warn(`${p}: ${m}`),
    onProgress: json ? (s) => json.progress(s) : undefined,
    progress,
  }).finally(() => {
    out.stopProgress();
    json?.stop();
  });
  json?.finish(stats, { dirs_restored: stats.dirs, others_restored: stats.others, error_count: stats.errors });
  out.info(`restored ${stats.files} files, ${stats.dirs} directories, ${stats.others} others, ${formatBytes(stats.bytes)} in ${formatDuration(Date.now() - started)}`);
  if (stats.errors > 0) {
    // Everything else is restored exactly: as a backup that could not read some sources.
    const warning = `${stats.errors} item(s) could not be restored; everything else was`;
    if (json) writeExitError(true, ExitCode.partial, `warning: ${warning}`);
    else out.warn(warning);
    process.exitCode = ExitCode.partial;
  }
}

async function restoreDisk(ctx: Context, signal: AbortSignal, reader: BlobReader, image: Node, target: string, flags: RestoreFlags): Promise<void> {
  const { out } = ctx;
  const started = Date.now();
  const json = out.json ? new RestoreJson(out) : undefined;
  const stats = await restoreImage(reader, image, target, {
    overwrite: flags.overwrite,
    verify: flags.verify,
    signal,
    onProgress: json
      ? (done, total) => json.progress({ files: 0, bytes: done, totalFiles: 1, totalBytes: total })
      : out.showsProgress
        ? (done, total) => out.progress(`${formatBytes(done)} of ${formatBytes(total)}`)
        : undefined,
  }).finally(() => {
    out.stopProgress();
    json?.stop();
  });
  json?.finish({ files: 1, bytes: stats.bytes, totalFiles: 1, totalBytes: stats.bytes }, { bytes_written: stats.written, verified: stats.verified });
  out.info(`restored a ${formatBytes(stats.bytes)} image (${formatBytes(stats.written)} written) in ${formatDuration(Date.now() - started)}${stats.verified ? ', verified' : ''}`);
}
