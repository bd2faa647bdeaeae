import { Command } from 'commander';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { displayName, type Node } from '../../tree/node.js';
import { findNode, joinPath, pathComponents, walkTree, type WalkEntry } from '../../tree/walk.js';
import { withRepository, type Context } from '../context.js';
import { nodeJson } from '../json/node.js';
import { snapshotJson } from '../json/snapshot.js';
import { humanTime } from '../local-time.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

function modeString(n: Node): string {
  const t = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b' }[n.type];
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (n.mode & (0o400 >> i) ? c : '-'));
  if (n.mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (n.mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (n.mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return t + bits.join('');
}

/** `ls -l`: restic's columns, with the owner's and group's names where stored. */
function longLine(e: WalkEntry): string {
  const n = e.node;
  const time = humanTime(Number(n.mtimeNs / 1_000_000n));
  const link = n.linkTarget ? ` -> ${displayName(n.linkTarget)}` : '';
  return `${modeString(n)} ${displayName(n.user ?? String(n.uid)).padEnd(8)} ${displayName(n.group ?? String(n.gid)).padEnd(8)} ${String(n.size).padStart(12)} ${time} ${displayName(joinPath(e.path))}${link}`;
}

export function lsCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('ls')
      .description('list the files in a snapshot')
      .argument('<snapshot>', 'snapshot ID, prefix, or "latest"')
      .argument('[path]', 'directory or file inside the snapshot', '/')
      .option('-l, --long', 'show mode, owner, size and time'),
  ).action(async (spec: string, dir: string, flags: SnapshotFilterFlags & { long?: boolean }, cmd: Command) => {
    const ctx = context(cmd);
    await withRepository(ctx, 'none', async (repo, { signal }) => {
      const found = await findSnapshot(repo, spec, snapshotFilter(flags));
      const { snapshot, writer } = found;
      const reader = repo.reader(writer);
      const root = Buffer.from(snapshot.tree, 'hex');
      const start = pathComponents(dir);
      const node = start.length ? await findNode(reader, root, dir) : null;
      const print = ctx.out.json ? (e: WalkEntry) => ctx.out.printJson(nodeJson(e.node, joinPath(e.path))) : (e: WalkEntry) => ctx.out.print(flags.long ? longLine(e) : displayName(joinPath(e.path)));
      // restic's JSON lines: the snapshot, then one node per line.
      if (ctx.out.json) ctx.out.printJson({ ...snapshotJson(found), struct_type: 'snapshot' });
      if (node) print({ path: start, node });
      if (node && node.type !== 'dir') return;
      for await (const e of walkTree(reader, node ? node.subtree! : root, start)) {
        print(e);
        await ctx.out.ready(signal);
      }
    });
  });
}
