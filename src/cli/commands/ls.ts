import { Command } from 'commander';
import { checkAborted } from '../../errors.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { displayName, type Node } from '../../tree/node.js';
import { findNode, joinPath, pathComponents, walkTree } from '../../tree/walk.js';
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
      const entries: { path: Buffer[]; node: Node }[] = [];
      if (node) entries.push({ path: start, node });
      if (!node || node.type === 'dir') {
        for await (const e of walkTree(reader, node ? node.subtree! : root, start)) {
          checkAborted(signal);
          entries.push(e);
        }
      }
      if (ctx.out.json) {
        // restic's JSON lines: the snapshot, then one node per line.
        ctx.out.jsonLine({ ...snapshotJson(found), struct_type: 'snapshot' });
        for (const e of entries) ctx.out.jsonLine(nodeJson(e.node, joinPath(e.path)));
        return;
      }
      for (const e of entries) {
        const p = displayName(joinPath(e.path));
        if (!flags.long) ctx.out.info(p);
        else {
          const n = e.node;
          const time = humanTime(Number(n.mtimeNs / 1_000_000n));
          const link = n.linkTarget ? ` -> ${displayName(n.linkTarget)}` : '';
          ctx.out.info(`${modeString(n)} ${displayName(n.user ?? String(n.uid)).padEnd(8)} ${displayName(n.group ?? String(n.gid)).padEnd(8)} ${String(n.size).padStart(12)} ${time} ${p}${link}`);
        }
      }
    });
  });
}
