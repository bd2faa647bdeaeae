import { Command } from 'commander';
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
}

export function backupCommand(context: (cmd: Command) => Context): Command {
  return new Command('backup')
    .description('save files and directories as a new snapshot')
    .argument('<path...>', 'files or directories to back up')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--host <name>', 'record this host name instead of the real one')
    .option('--parent <snapshot>', 'compare against this snapshot instead of the latest of the same paths')
    .option('--force', 're-read every file, even unchanged ones')
    .option('-e, --exclude <pattern>', 'skip matching paths (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect, [])
    .option('-x, --one-file-system', 'do not cross filesystem boundaries')
    .option('-n, --dry-run', 'show what would be stored without writing anything')
    .option('--compression <level>', 'zstd level for new data (0 = off)', intOption)
    .action(async (paths: string[], flags: BackupFlags, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      if (flags.compression !== undefined) checkCompressionLevel(flags.compression);
      const excludes = [...flags.exclude, ...Excludes.fromFiles(flags.excludeFile)];
      const started = Date.now();
      const result = await withRepository(ctx, flags.dryRun ? 'none' : 'shared', (repo) =>
        backup(repo, {
          paths,
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
          onProgress: (s, p) => out.progress(`${s.filesNew + s.filesChanged + s.filesUnmodified} files, ${formatBytes(s.bytesProcessed)}  ${p}`),
        }).finally(() => out.stopProgress()),
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
