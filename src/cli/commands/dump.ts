import { Command, Option } from 'commander';
import type { WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { ARCHIVE_FORMATS, writeArchive, type ArchiveFormat } from '../../archive/archive.js';
import { archivePath, checkLength, contentLayout, type DumpStart } from '../../archive/entries.js';
import { Sink } from '../../archive/sink.js';
import { describeError, ExitCode, ScrateError } from '../../errors.js';
import { readContent } from '../../restorer/content.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { findNode, pathComponents } from '../../tree/walk.js';
import { withRepository, type Context } from '../context.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface DumpFlags extends SnapshotFilterFlags {
  archive?: ArchiveFormat;
  target?: string;
  allowPrivileged?: boolean;
}

export function dumpCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('dump')
      .description('write a file (or disk image) of a snapshot to standard output, or a directory as a tar or zip archive')
      .argument('<snapshot>', 'snapshot ID, prefix, or "latest"')
      .argument('<path>', 'the file or directory inside the snapshot, e.g. /dev/sdb or /home/me/src; "/" for the whole snapshot')
      .addOption(new Option('-a, --archive <format>', 'archive format for a directory (default tar), or to put a single file in an archive').choices(ARCHIVE_FORMATS))
      .option('-t, --target <file>', 'write to this file instead of standard output')
      .option('--allow-privileged', 'keep setuid/setgid bits and device nodes of a snapshot written with a write-only key'),
  ).action(async (spec: string, file: string, flags: DumpFlags, cmd: Command) => {
    const ctx = context(cmd);
    if (!flags.target && process.stdout.isTTY) throw new ScrateError('refusing to dump binary data to a terminal', ExitCode.fatal, 'redirect standard output to a file or a pipe, or use --target');
    await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const { snapshot, writer } = await findSnapshot(repo, spec, snapshotFilter(flags));
      const reader = repo.reader(writer);
      const root = Buffer.from(snapshot.tree, 'hex');
      const path = pathComponents(file);
      const node = path.length === 0 ? null : await findNode(reader, root, file);
      const start: DumpStart = node ? { node, path } : { tree: root };
      // A directory (or the whole snapshot) is an archive, tar unless said otherwise; a file is its content.
      const archive = flags.archive ?? (node === null || node.type === 'dir' ? 'tar' : undefined);
      if (!archive && node!.type !== 'file') throw new ScrateError(`${file} is a ${node!.type}, not a file`, ExitCode.fatal, 'use --archive to dump it in an archive');
      const target = flags.target ? await openTarget(flags.target) : undefined;
      const output = target ?? process.stdout;
      try {
        const sink = new Sink(output, signal);
        if (archive) {
          const unprivileged = writer.access === 'write-only' && !flags.allowPrivileged;
          await writeArchive(archive, reader, start, sink, { unprivileged, onNote: (p, m) => ctx.out.warn(`${displayName(archivePath(p))}: ${m}`) });
        } else {
          const { blobs } = contentLayout(reader, node!);
          let i = 0;
          for await (const { data } of readContent(reader, blobs.map((b) => b.id))) {
            checkLength(blobs[i++]!, data);
            await sink.write(data);
          }
        }
        await sink.flush();
        if (target) {
          target.end();
          await finished(target).catch((err: unknown) => {
            throw new ScrateError(`cannot write ${flags.target}: ${describeError(err)}`);
          });
        }
      } catch (err) {
        // A dump that failed leaves what it wrote (as restic), but no descriptor open to the end.
        target?.destroy();
        throw err;
      }
    });
  });
}

/** The --target file, created or emptied, as restic does. */
async function openTarget(target: string): Promise<WriteStream> {
  const fh = await open(target, 'w').catch((err: unknown) => {
    throw new ScrateError(`cannot dump to ${target}: ${describeError(err)}`);
  });
  return fh.createWriteStream();
}
