import { Command } from 'commander';
import { isUtf8 } from 'node:buffer';
import { checkAborted } from '../../errors.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { displayName, type Node } from '../../tree/node.js';
import { findNode, joinPath, pathComponents, walkTree } from '../../tree/walk.js';
import { withRepository, type Context } from '../context.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

function modeString(n: Node): string {
  const t = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', chardev: 'c', blockdev: 'b' }[n.type];
  const bits = 'rwxrwxrwx'.split('').map((c, i) => (n.mode & (0o400 >> i) ? c : '-'));
  if (n.mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (n.mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (n.mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return t + bits.join('');
}

/**
 * A name in ls --json, as it always was: exact when it is UTF-8 (JSON escapes what needs it),
 * else each byte outside printable ASCII as \xNN.
 */
function jsonName(name: Buffer): string {
  if (isUtf8(name)) return name.toString('utf8');
  let out = '';
  for (const b of name) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
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
      const { snapshot, writer } = await findSnapshot(repo, spec, snapshotFilter(flags));
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
        ctx.out.result(entries.map((e) => ({ path: jsonName(joinPath(e.path)), type: e.node.type, mode: e.node.mode, uid: e.node.uid, gid: e.node.gid, size: e.node.size, mtime: e.node.mtimeNs.toString(), ...(e.node.linkTarget ? { linkTarget: jsonName(e.node.linkTarget) } : {}) })));
        return;
      }
      for (const e of entries) {
        const p = displayName(joinPath(e.path));
        if (!flags.long) ctx.out.info(p);
        else {
          const n = e.node;
          const time = new Date(Number(n.mtimeNs / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
          const link = n.linkTarget ? ` -> ${displayName(n.linkTarget)}` : '';
          ctx.out.info(`${modeString(n)} ${displayName(n.user ?? String(n.uid)).padEnd(8)} ${displayName(n.group ?? String(n.gid)).padEnd(8)} ${String(n.size).padStart(12)} ${time} ${p}${link}`);
        }
      }
    });
  });
}
