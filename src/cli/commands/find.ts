import { Command, InvalidArgumentError } from 'commander';
import { isTargetRoot, objectVisitor, patternVisitor, resolveObjects, TreeSearch, type FoundObject, type Match, type ObjectKind } from '../../browse/find.js';
import { ExitCode, ScrateError } from '../../errors.js';
import { parseLocalTime } from '../../forget/local-time.js';
import type { Repository } from '../../repository/repository.js';
import type { SnapshotEntry } from '../../snapshot/snapshot.js';
import { selectSnapshots } from '../../snapshot/select.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { FindJsonWriter, foundNodeJson, foundObjectJson } from '../json/find.js';
import { goFileMode } from '../json/node.js';
import { humanTime } from '../local-time.js';
import { collect } from '../parse.js';
import { snapshotFilter, snapshotFilterOptions, type SnapshotFilterFlags } from '../snapshot-filter.js';

interface FindFlags extends SnapshotFilterFlags {
  snapshot: string[];
  oldest?: number;
  newest?: number;
  ignoreCase?: boolean;
  long?: boolean;
  reverse?: boolean;
  blob?: boolean;
  tree?: boolean;
  pack?: boolean;
}

/** restic's --oldest/--newest: a local date, with a time to the minute or second. */
function timeOption(value: string): number {
  const full = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value} 00:00:00` : /^\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}$/.test(value) ? `${value}:00` : value;
  const ms = parseLocalTime(full);
  if (ms === undefined) throw new InvalidArgumentError('expected a local time as "2006-01-02", "2006-01-02 15:04" or "2006-01-02 15:04:05"');
  return ms;
}

/** The snapshots searched, newest first as restic's find goes (--reverse: oldest first). */
async function searched(repo: Repository, flags: FindFlags): Promise<SnapshotEntry[]> {
  const list = await selectSnapshots(repo, flags.snapshot, snapshotFilter(flags));
  return flags.reverse ? list : list.reverse();
}

/** restic's `find --long` line: Go's mode string, owner IDs, size, time, path. */
function longLine(m: Match): string {
  const n = m.node;
  const size = n.type === 'file' || n.image ? n.size : 0;
  const link = n.linkTarget ? ` -> ${displayName(n.linkTarget)}` : '';
  return `${goFileMode(n).permissions} ${String(n.uid).padStart(5)} ${String(n.gid).padStart(5)} ${String(size).padStart(6)} ${humanTime(Number(n.mtimeNs / 1_000_000n))} ${displayName(m.path)}${link}`;
}

export function findCommand(context: (cmd: Command) => Context): Command {
  return snapshotFilterOptions(
    new Command('find')
      .description('find files and directories by name in snapshots, or the snapshots and files that use a blob, tree or pack')
      .argument('<pattern...>', 'restic pattern (a name, "*.conf", "/home/*/.ssh"), or with --blob/--tree/--pack IDs or ID prefixes')
      .option('-s, --snapshot <id>', 'search only this snapshot (repeatable)', collect, [])
      .option('-O, --oldest <time>', 'only entries modified at or after this local time', timeOption)
      .option('-N, --newest <time>', 'only entries modified at or before this local time', timeOption)
      .option('-i, --ignore-case', 'ignore case in patterns')
      .option('-l, --long', 'show mode, owner, size and time')
      .option('-R, --reverse', 'oldest snapshot first (default: newest first)')
      .option('--blob', 'the arguments are data blob IDs')
      .option('--tree', 'the arguments are tree IDs')
      .option('--pack', 'the arguments are pack IDs: find the blobs in them'),
    'only snapshots',
  ).action(async (args: string[], flags: FindFlags, cmd: Command) => {
    const ctx = context(cmd);
    const kinds = (['blob', 'tree', 'pack'] as const).filter((k) => flags[k]);
    if (kinds.length > 1) throw new ScrateError('--blob, --tree and --pack exclude each other');
    if (flags.oldest !== undefined && flags.newest !== undefined && flags.oldest > flags.newest) throw new ScrateError('--oldest must be a time before --newest');
    const kind: ObjectKind | undefined = kinds[0];
    const json = ctx.out.json ? new FindJsonWriter((text) => ctx.out.printJsonText(text)) : undefined;
    let unreadable = 0;
    await withRepository(ctx, 'shared', async (repo, { signal }) => {
      const targets = kind ? resolveObjects(repo, kind, args) : undefined;
      const visitor = targets ? objectVisitor(targets) : patternVisitor(args, { ignoreCase: !!flags.ignoreCase, oldest: flags.oldest, newest: flags.newest });
      let current: SnapshotEntry | undefined;
      const search = new TreeSearch(
        visitor,
        (tree, err) => {
          unreadable++;
          ctx.out.warn(`unable to load tree ${tree.toString('hex').slice(0, 12)} of snapshot ${current!.id.slice(0, 8)}: ${err.message}`);
        },
        signal,
      );
      let first = true;
      for (const e of await searched(repo, flags)) {
        current = e;
        const reader = repo.reader(e.writer);
        const root = Buffer.from(e.snapshot.tree, 'hex');
        const when = humanTime(Date.parse(e.snapshot.time));
        const object = (o: FoundObject, path: Buffer, tree: Buffer) => {
          if (json) return json.object(foundObjectJson(o, path, tree, e));
          ctx.out.print(`Found ${o.kind} ${o.id.toString('hex')}`);
          if (o.kind === 'blob') ctx.out.print(` ... in file ${displayName(path)}\n     (tree ${tree.toString('hex')})`);
          else ctx.out.print(` ... path ${path.length ? displayName(path) : '/'}`);
          ctx.out.print(` ... in snapshot ${e.id.slice(0, 8)} (${when})`);
        };
        if (targets && isTargetRoot(targets, e.writer, root)) object({ kind: 'tree', id: root }, Buffer.alloc(0), root);
        let header = false;
        await search.search(reader, root, (m) => {
          if (m.object) object(m.object, m.path, m.tree);
          else if (json) json.match(e.id, foundNodeJson(m.node, m.path));
          else {
            if (!header) ctx.out.print(`${first ? '' : '\n'}Found matching entries in snapshot ${e.id.slice(0, 8)} from ${when}`);
            header = true;
            first = false;
            ctx.out.print(flags.long ? longLine(m) : displayName(m.path));
          }
          return ctx.out.ready(signal);
        });
      }
      ctx.out.detail(`${search.treesRead} trees read`);
    });
    json?.finish();
    if (unreadable) throw new ScrateError(`${unreadable} tree(s) could not be read: what is below them was not searched`, ExitCode.partial, 'run `scrate check`');
  });
}
