import { Command, InvalidArgumentError, Option } from 'commander';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { ReadFn } from '../../archiver/data-pipeline.js';
import type { BackupOptions, BackupResult, StreamSource, TargetResult } from '../../archiver/archiver.js';
import type { ChunkerKind } from '../../chunker/chunker.js';
import { describeError, ScrateError } from '../../errors.js';
import { backupTo } from '../../archiver/archiver.js';
import { keyClasses } from '../../archiver/targets.js';
import { BackupFilter } from '../../filter/backup-filter.js';
import { filesFrom } from '../../filter/files-from.js';
import { ExitCode } from '../../errors.js';
import { checkCompressionLevel } from '../../repository/config.js';
import { parseLocalTime } from '../../forget/local-time.js';
import { flattenTagLists } from '../../snapshot/tags.js';
import { displayName } from '../../tree/node.js';
import { withTargets, type Context } from '../context.js';
import { BackupJson } from '../json/backup.js';
import { writeExitError } from '../json/messages.js';
import { formatBytes, formatDuration } from '../output.js';
import { collect, collectTagList, intOption, sizeOption } from '../parse.js';
import { ProgressMeter } from '../../util/progress.js';

interface BackupFlags {
  tag: string[][];
  host?: string;
  parent?: string;
  force?: boolean;
  exclude: string[];
  iexclude: string[];
  excludeFile: string[];
  iexcludeFile: string[];
  excludeIfPresent: string[];
  excludeCaches?: boolean;
  excludeLargerThan?: number;
  filesFrom: string[];
  filesFromVerbatim: string[];
  filesFromRaw: string[];
  oneFileSystem?: boolean;
  dryRun?: boolean;
  compression?: number;
  asDevice?: boolean;
  chunker?: ChunkerKind;
  stdin?: boolean;
  stdinFilename: string;
  stdinFromCommand?: boolean;
  time?: Date;
}

/** restic's `--time`: a local time, a DST change's skipped or repeated hour taken as restic takes it. */
function timeOption(value: string): Date {
  const ms = parseLocalTime(value);
  if (ms === undefined) throw new InvalidArgumentError('expected a local time as "2006-01-02 15:04:05"');
  return new Date(ms);
}

export function backupCommand(context: (cmd: Command) => Context): Command {
  return new Command('backup')
    .description('save files and directories as a new snapshot')
    .argument('[path...]', 'files, directories or block devices to back up (with --stdin-from-command: the command and its arguments)')
    .option('--tag <tags>', 'tag the snapshot with these comma-separated tags (repeatable)', collectTagList, [])
    .option('--host <name>', 'record this host name instead of the real one')
    .option('--time <time>', 'the snapshot\'s time, local, as "2012-11-01 22:08:41" (default: now)', timeOption)
    .option('--parent <snapshot>', 'compare against this snapshot instead of the latest of the same paths')
    .option('--force', 're-read every file, even unchanged ones')
    .option('-e, --exclude <pattern>', 'leave out paths matching the pattern (repeatable; see PATTERNS)', collect, [])
    .option('--iexclude <pattern>', 'as --exclude, ignoring case (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file, one a line (repeatable)', collect, [])
    .option('--iexclude-file <file>', 'as --exclude-file, ignoring case (repeatable)', collect, [])
    .option('--exclude-if-present <name[:header]>', 'leave out the contents of directories holding this file (starting with header) but the file (repeatable)', collect, [])
    .option('--exclude-caches', 'leave out the contents of directories holding a CACHEDIR.TAG with its signature')
    .option('--exclude-larger-than <size>', 'leave out files larger than size (k, m, g, t: KiB, MiB, GiB, TiB)', sizeOption)
    .option('--files-from <file>', 'back up the paths or globs listed in file, one a line, # comments (repeatable; - for stdin)', collect, [])
    .option('--files-from-verbatim <file>', 'back up the paths listed in file, one a line, as they are (repeatable)', collect, [])
    .option('--files-from-raw <file>', 'back up the paths listed in file, each ended by a NUL byte (repeatable)', collect, [])
    .option('-x, --one-file-system', 'do not cross filesystem boundaries')
    .option('-n, --dry-run', 'show what would be stored without writing anything')
    .option('--compression <level>', 'zstd level for new data (0 = off)', intOption)
    .option('--as-device', 'back up regular files among the paths as disk images, like block devices')
    .addOption(new Option('--chunker <kind>', 'chunking of block devices and disk images: fixed (block-aligned) or cdc').choices(['fixed', 'cdc']))
    .option('--stdin', 'back up standard input as one file')
    .option('--stdin-filename <name>', 'the name of that file in the snapshot', 'stdin')
    .option('--stdin-from-command', 'run the command given after -- and back up its output; no snapshot if it fails')
    .action(async (paths: string[], flags: BackupFlags, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      if (flags.compression !== undefined) checkCompressionLevel(flags.compression);
      const filter = new BackupFilter(flags, (m) => out.warn(m));
      const listed = filesFrom(flags, (m) => out.warn(m));
      if (listed.length && (flags.stdin || flags.stdinFromCommand)) throw new ScrateError('--files-from and its variants cannot be used with --stdin or --stdin-from-command');
      const stream = await streamSource(flags, [...listed, ...paths]);
      const started = Date.now();
      const progress = out.showsProgress || out.json ? new ProgressMeter() : undefined;
      const json = out.json ? new BackupJson(out, progress!) : undefined;
      const options: BackupOptions = {
        paths: stream ? [] : [...listed, ...paths],
        stream: stream?.source,
        asDevice: flags.asDevice,
        chunker: flags.chunker,
        tags: flattenTagLists(flags.tag),
        host: flags.host,
        time: flags.time,
        parent: flags.parent,
        force: flags.force,
        filter,
        oneFileSystem: flags.oneFileSystem,
        dryRun: flags.dryRun,
        compression: flags.compression,
        signal: ctx.signal,
        onError: json?.error ?? ((p, m) => out.warn(`${p}: ${m}`)),
        onNote: (p, m) => out.detail(`note: ${p}: ${m}`),
        onItem: json?.item ?? (out.listsFiles
            ? (item) => {
                if (item.type === 'file') out.listing(`${item.action.padEnd(9)} ${item.path}`);
              }
            : undefined),
        progress,
      };
      const several = (ctx.globals.repo?.length ?? 0) > 1;
      if (several && flags.parent) throw new ScrateError('--parent names one repository\'s snapshot: not with several -r/--repo');
      const results = await withTargets(ctx, flags.dryRun ? 'none' : 'shared', async (targets, unopened) => {
        const classes = keyClasses(targets);
        if (classes.length > 1 && stream) throw new ScrateError('--stdin and --stdin-from-command read their input once: the repositories given cut data differently', ExitCode.fatal, 'make them alike with init --from-repo --copy-chunker-params, or back up to each in turn');
        if (!json) out.follow(progress);
        const done: TargetResult[] = [];
        try {
          for (const [i, group] of classes.entries()) {
            // Costly and avoidable: said even under --json (on stderr).
            if (i > 0) out.warn(`${group.map((t) => t.location).join(', ')}: other chunker than ${classes[0]![0]!.location}; the sources are read again for it (see init --from-repo --copy-chunker-params)`);
            done.push(...(await backupTo(group, options)));
          }
        } finally {
          out.stopProgress();
        }
        return [...unopened, ...done.map((r) => ({ ...r, location: r.target.location }))];
      }).finally(() => {
        stream?.stop();
        json?.stop();
      });
      const failed = results.filter((r) => r.failure !== undefined);
      // One repository: its failure is the command's, as it always was.
      if (!several && failed.length > 0) throw failed[0]!.failure;
      const saved = results.filter((r): r is BackupResult & TargetResult & { location: string } => 'snapshot' in r && r.snapshot !== undefined && r.failure === undefined);
      const s = saved[0]?.snapshot?.summary;
      const prefix = (r: { location: string }) => (several ? `${r.location}: ` : '');
      for (const r of saved) {
        json?.finish(r, !!flags.dryRun, r.location);
        if (r.parentId) out.info(`${prefix(r)}using parent snapshot ${r.parentId.slice(0, 8)}`);
      }
      if (s) {
        out.info(`Files:  ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified`);
        out.info(`Dirs:   ${s.dirsNew} new, ${s.dirsChanged} changed, ${s.dirsUnmodified} unmodified`);
      }
      for (const r of saved) {
        const t = r.snapshot!.summary!;
        out.info(`${prefix(r)}Added:  ${formatBytes(t.dataAdded)} in ${t.dataBlobs + t.treeBlobs} blobs${flags.dryRun ? ' (dry run: nothing written)' : `, ${formatBytes(t.dataStored)} stored`}`);
      }
      if (s) out.info(`processed ${formatBytes(s.bytesProcessed)} in ${formatDuration(Date.now() - started)}`);
      for (const r of saved) if (r.snapshotId) out.info(`${prefix(r)}snapshot ${r.snapshotId.slice(0, 8)} saved`);
      for (const r of failed) out.warn(`target ${r.location} failed: ${failureText(r.failure)}`);
      if (failed.length === results.length) {
        throw new ScrateError(`every repository failed (${failed.map((r) => r.location).join(', ')})`);
      }
      if (failed.length > 0) {
        const message = `${failed.length} of ${results.length} repositories failed (${failed.map((r) => r.location).join(', ')}); the others hold complete snapshots`;
        if (json) writeExitError(true, ExitCode.partial, message);
        process.exitCode = ExitCode.partial;
      }
      if (s && s.errors > 0) {
        const warning = `${s.errors} source(s) could not be read; the snapshot is incomplete`;
        if (json) writeExitError(true, ExitCode.partial, `warning: ${warning}`);
        else out.warn(warning);
        process.exitCode = ExitCode.partial;
      }
    });
}

/** A target's failure in one line. */
function failureText(err: unknown): string {
  if (err instanceof ScrateError) return `${displayName(err.message)}${err.hint ? ` (${err.hint})` : ''}`;
  return displayName(describeError(err));
}

/** --stdin or --stdin-from-command as a stream source, with a way to stop its producer. */
async function streamSource(flags: BackupFlags, args: string[]): Promise<{ source: StreamSource; stop: () => void } | undefined> {
  if (flags.stdin && flags.stdinFromCommand) throw new ScrateError('--stdin and --stdin-from-command exclude each other');
  const name = flags.stdinFilename;
  if (name === '' || name.includes('/')) throw new ScrateError(`--stdin-filename ${name}: a plain file name is needed`);
  if (flags.stdin) {
    if (args.length) throw new ScrateError('--stdin takes no paths');
    // Listened to from the first read on, after the password prompt, which reads a terminal on
    // stdin itself. Through the stream, not read(2) on fd 0: a pipe handed over non-blocking
    // would give EAGAIN.
    let read: ReadFn | undefined;
    return { source: { name, read: (buffer, offset, length) => (read ??= streamReader(process.stdin))(buffer, offset, length) }, stop: () => undefined };
  }
  if (!flags.stdinFromCommand) {
    if (args.length === 0) throw new ScrateError('nothing to back up: give at least one path');
    return undefined;
  }
  if (args.length === 0) throw new ScrateError('--stdin-from-command needs a command', ExitCode.fatal, 'e.g. scrate backup --stdin-from-command -- pg_dump mydb');
  return commandSource(name, args);
}

/**
 * Starts the producer of --stdin-from-command, before the repository is opened (which takes the
 * key derivation's half second), and listens to its output from the start: Node drains and drops
 * the output of a child that exits while nobody listens (child_process' flushStdio), so a
 * producer done before the backup first read gave a snapshot of an empty file. Until then what
 * it wrote waits in the pipe and the stream's buffer (its high-water mark), and the producer
 * waits for them to empty, as restic's does on its pipe: memory stays bounded.
 */
async function commandSource(name: string, [command, ...args]: string[]): Promise<{ source: StreamSource; stop: () => void }> {
  const child = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'], env: withoutScrateVariables(process.env) });
  const read = streamReader(child.stdout);
  const exited = new Promise<string | undefined>((resolve) => {
    child.on('exit', (code, signal) => resolve(code === 0 ? undefined : code !== null ? `exit code ${code}` : `killed by ${signal}`));
    child.on('error', (err: NodeJS.ErrnoException) => resolve(describeError(err)));
  });
  try {
    await once(child, 'spawn');
  } catch (err) {
    throw new ScrateError(`cannot run ${displayName(command!)}: ${describeError(err)}`);
  }
  const finished = async () => {
    const failure = await exited;
    if (failure) throw new ScrateError(`${displayName(command!)} failed (${failure}); no snapshot was written`);
  };
  return { source: { name, read, finished }, stop: () => child.kill() };
}

/** The producer's environment: scrate's own variables, the password among them, are none of its business. */
function withoutScrateVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('SCRATE_')));
}

/**
 * Adapts a readable stream to the read-into-buffer form the chunker loop uses, listening from
 * its creation on. A 'readable' listener, not 'data': the stream reads ahead only up to its
 * high-water mark, so a fast producer waits for the backup.
 */
function streamReader(stream: Readable): ReadFn {
  let pending: Buffer = Buffer.alloc(0);
  let ended = false;
  let failure: Error | undefined;
  let wake: () => void = () => undefined;
  stream.on('readable', () => wake());
  stream.on('end', () => {
    ended = true;
    wake();
  });
  stream.on('error', (err) => {
    failure = err;
    wake();
  });
  return async (buffer, offset, length) => {
    while (pending.length === 0) {
      const chunk = stream.read() as Buffer | null;
      if (chunk) pending = chunk;
      else if (failure) throw failure;
      else if (ended) return 0;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
    const n = pending.copy(buffer, offset, 0, Math.min(length, pending.length));
    pending = pending.subarray(n);
    return n;
  };
}
