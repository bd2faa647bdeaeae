import { Command, Option } from 'commander';
import { spawn } from 'node:child_process';
import type { ReadFn } from '../../archiver/data-pipeline.js';
import type { StreamSource } from '../../archiver/archiver.js';
import type { ChunkerKind } from '../../chunker/chunker.js';
import { ScrateError } from '../../errors.js';
import { backup } from '../../archiver/archiver.js';
import { Excludes } from '../../archiver/excludes.js';
import { ExitCode } from '../../errors.js';
import { checkCompressionLevel } from '../../repository/config.js';
import { withRepository, type Context } from '../context.js';
import { formatBytes, formatDuration } from '../output.js';
import { collect, intOption } from '../parse.js';

interface BackupFlags {
  tag: string[];
  host?: string;
  parent?: string;
  force?: boolean;
  exclude: string[];
  excludeFile: string[];
  oneFileSystem?: boolean;
  dryRun?: boolean;
  compression?: number;
  asDevice?: boolean;
  chunker?: ChunkerKind;
  stdin?: boolean;
  stdinFilename: string;
  stdinFromCommand?: boolean;
}

export function backupCommand(context: (cmd: Command) => Context): Command {
  return new Command('backup')
    .description('save files and directories as a new snapshot')
    .argument('[path...]', 'files, directories or block devices to back up (with --stdin-from-command: the command and its arguments)')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--host <name>', 'record this host name instead of the real one')
    .option('--parent <snapshot>', 'compare against this snapshot instead of the latest of the same paths')
    .option('--force', 're-read every file, even unchanged ones')
    .option('-e, --exclude <pattern>', 'skip matching paths (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect, [])
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
      const excludes = [...flags.exclude, ...Excludes.fromFiles(flags.excludeFile)];
      const stream = streamSource(flags, paths);
      const started = Date.now();
      const result = await withRepository(ctx, flags.dryRun ? 'none' : 'shared', (repo) =>
        backup(repo, {
          paths: stream ? [] : paths,
          stream: stream?.source,
          asDevice: flags.asDevice,
          chunker: flags.chunker,
          tags: flags.tag,
          host: flags.host,
          parent: flags.parent,
          force: flags.force,
          excludes,
          oneFileSystem: flags.oneFileSystem,
          dryRun: flags.dryRun,
          compression: flags.compression,
          signal: ctx.signal,
          onError: (p, m) => out.warn(`${p}: ${m}`),
          onNote: (p, m) => out.detail(`note: ${p}: ${m}`),
          onProgress: out.showsProgress ? (s, p) => out.progress(`${s.filesNew + s.filesChanged + s.filesUnmodified} files, ${formatBytes(s.bytesProcessed)}  ${p}`) : undefined,
        }).finally(() => {
          out.stopProgress();
          stream?.stop();
        }),
        { reads: false },
      );
      const s = result.snapshot.summary!;
      if (out.json) out.result({ snapshotId: result.snapshotId ?? null, parent: result.parentId ?? null, dryRun: !!flags.dryRun, ...s });
      if (result.parentId) out.info(`using parent snapshot ${result.parentId.slice(0, 8)}`);
      out.info(`Files:  ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified`);
      out.info(`Dirs:   ${s.dirs}`);
      out.info(`Added:  ${formatBytes(s.dataAdded)} in ${s.blobsAdded} blobs${flags.dryRun ? ' (dry run: nothing written)' : `, ${formatBytes(s.dataStored)} stored`}`);
      out.info(`processed ${formatBytes(s.bytesProcessed)} in ${formatDuration(Date.now() - started)}`);
      if (result.snapshotId) out.info(`snapshot ${result.snapshotId.slice(0, 8)} saved`);
      if (s.errors > 0) {
        out.warn(`${s.errors} source(s) could not be read; the snapshot is incomplete`);
        process.exitCode = ExitCode.partial;
      }
    });
}

/** --stdin or --stdin-from-command as a stream source, with a way to stop its producer. */
function streamSource(flags: BackupFlags, args: string[]): { source: StreamSource; stop: () => void } | undefined {
  if (flags.stdin && flags.stdinFromCommand) throw new ScrateError('--stdin and --stdin-from-command exclude each other');
  const name = flags.stdinFilename;
  if (name === '' || name.includes('/')) throw new ScrateError(`--stdin-filename ${name}: a plain file name is needed`);
  if (flags.stdin) {
    if (args.length) throw new ScrateError('--stdin takes no paths');
    // Through the stream, not read(2) on fd 0: a pipe handed over non-blocking would give EAGAIN.
    return { source: { name, read: streamReader(process.stdin) }, stop: () => undefined };
  }
  if (!flags.stdinFromCommand) {
    if (args.length === 0) throw new ScrateError('nothing to back up: give at least one path');
    return undefined;
  }
  if (args.length === 0) throw new ScrateError('--stdin-from-command needs a command', ExitCode.fatal, 'e.g. scrate backup --stdin-from-command -- pg_dump mydb');
  const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | string>((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    child.on('close', (code, signal) => resolve(code ?? `killed by ${signal}`));
  });
  const finished = async () => {
    const status = await exited;
    if (status !== 0) throw new ScrateError(`${args[0]} failed (${typeof status === 'number' ? `exit code ${status}` : status}); no snapshot was written`);
  };
  return { source: { name, read: streamReader(child.stdout), finished }, stop: () => child.kill() };
}

/** Adapts a readable stream to the read-into-buffer form the chunker loop uses. */
function streamReader(stream: NodeJS.ReadableStream): ReadFn {
  const chunks = stream[Symbol.asyncIterator]();
  let pending = Buffer.alloc(0);
  return async (buffer, offset, length) => {
    if (pending.length === 0) {
      const next = await chunks.next();
      if (next.done) return 0;
      pending = Buffer.from(next.value as Buffer);
    }
    const n = pending.copy(buffer, offset, 0, Math.min(length, pending.length));
    pending = pending.subarray(n);
    return n;
  };
}
