import { Command } from 'commander';
import { diffTrees, type DiffSide } from '../../browse/diff.js';
import { ScrateError } from '../../errors.js';
import type { Repository } from '../../repository/repository.js';
import { findSnapshot, type SnapshotEntry } from '../../snapshot/snapshot.js';
import { displayName } from '../../tree/node.js';
import { findNode } from '../../tree/walk.js';
import { withRepository, type Context } from '../context.js';
import { changeJson, statisticsJson } from '../json/diff.js';
import { formatBytes } from '../output.js';

/** restic's "ID:subfolder": a snapshot, or a directory in it. */
async function side(repo: Repository, spec: string): Promise<{ entry: SnapshotEntry; side: DiffSide }> {
  const colon = spec.indexOf(':');
  const entry = await findSnapshot(repo, colon < 0 ? spec : spec.slice(0, colon));
  const reader = repo.reader(entry.writer);
  const root = Buffer.from(entry.snapshot.tree, 'hex');
  const sub = colon < 0 ? '' : spec.slice(colon + 1);
  const node = sub ? await findNode(reader, root, sub) : null;
  if (node && node.type !== 'dir') throw new ScrateError(`${sub} in snapshot ${entry.id.slice(0, 8)} is not a directory`);
  return { entry, side: { reader, tree: node ? node.subtree! : root } };
}

const pad = (n: number) => String(n).padStart(5);

export function diffCommand(context: (cmd: Command) => Context): Command {
  return new Command('diff')
    .description('show the differences between two snapshots, from the first to the second')
    .argument('<snapshot1>', 'snapshot ID, prefix, or "latest"; "ID:/dir" compares a directory of it')
    .argument('<snapshot2>', 'snapshot ID, prefix, or "latest"; "ID:/dir" compares a directory of it')
    .option('--metadata', 'also show entries whose metadata alone changed (U)')
    .addHelpText('after', '\nModifiers: + added, - removed, M content modified, T type changed, U metadata changed (with --metadata),\n? content changed while all metadata stayed the same (bit rot?).')
    .action(async (spec1: string, spec2: string, flags: { metadata?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      await withRepository(ctx, 'shared', async (repo, { signal }) => {
        const [a, b] = [await side(repo, spec1), await side(repo, spec2)];
        ctx.out.info(`comparing snapshot ${a.entry.id.slice(0, 8)} to ${b.entry.id.slice(0, 8)}:\n`);
        const result = await diffTrees(a.side, b.side, {
          metadata: !!flags.metadata,
          signal,
          onChange: (c) => {
            if (ctx.out.json) {
              if (!ctx.out.quiet) ctx.out.printJson(changeJson(c));
            } else ctx.out.print(`${c.modifier.padEnd(5)}${displayName(c.dir ? Buffer.concat([c.path, Buffer.from('/')]) : c.path)}`);
            return ctx.out.ready(signal);
          },
          onWarning: (m) => ctx.out.warn(m),
        });
        if (ctx.out.json) {
          ctx.out.jsonLine(statisticsJson(spec1, spec2, result));
          return;
        }
        const { added, removed } = result;
        ctx.out.info('');
        ctx.out.info(`Files:       ${pad(added.files)} new, ${pad(removed.files)} removed, ${pad(result.changedFiles)} changed`);
        ctx.out.info(`Dirs:        ${pad(added.dirs)} new, ${pad(removed.dirs)} removed`);
        ctx.out.info(`Others:      ${pad(added.others)} new, ${pad(removed.others)} removed`);
        ctx.out.info(`Data Blobs:  ${pad(added.dataBlobs)} new, ${pad(removed.dataBlobs)} removed`);
        ctx.out.info(`Tree Blobs:  ${pad(added.treeBlobs)} new, ${pad(removed.treeBlobs)} removed`);
        ctx.out.info(`  Added:   ${formatBytes(added.bytes)}`);
        ctx.out.info(`  Removed: ${formatBytes(removed.bytes)}`);
      });
    });
}
