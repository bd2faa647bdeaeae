import { Command } from 'commander';
import { once } from 'node:events';
import { checkAborted, ExitCode, ScrateError } from '../../errors.js';
import { readContent } from '../../restorer/content.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { findNode } from '../../tree/walk.js';
import { withRepository, type Context } from '../context.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

export function dumpCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('dump')
      .description('write the content of one file (or disk image) of a snapshot to standard output')
      .argument('<snapshot>', 'snapshot ID, prefix, or "latest"')
      .argument('<path>', 'the file inside the snapshot, e.g. /dev/sdb or /home/me/notes.txt'),
  ).action(async (spec: string, file: string, flags: SnapshotFilterFlags, cmd: Command) => {
    const ctx = context(cmd);
    if (process.stdout.isTTY) throw new ScrateError('refusing to dump binary data to a terminal', ExitCode.fatal, 'redirect standard output to a file or a pipe');
    await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const { snapshot, writer } = await findSnapshot(repo, spec, snapshotFilter(flags));
      const reader = repo.reader(writer);
      const node = await findNode(reader, Buffer.from(snapshot.tree, 'hex'), file);
      if (!node) throw new ScrateError(`${file} is not in the snapshot`);
      if (node.type !== 'file') throw new ScrateError(`${file} is a ${node.type}, not a file`, ExitCode.fatal, node.type === 'dir' ? 'use `scrate restore` for directories' : undefined);
      for await (const { data } of readContent(reader, node.content ?? [])) {
        checkAborted(signal);
        // Stopped while a slow reader has not taken the last chunk: the stop is the reason, not the wait.
        if (!process.stdout.write(data)) await once(process.stdout, 'drain', { signal }).catch((err: unknown) => {
          checkAborted(signal);
          throw err;
        });
      }
    });
  });
}
