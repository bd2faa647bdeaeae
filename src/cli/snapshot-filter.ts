import type { Command } from 'commander';
import path from 'node:path';
import type { SnapshotFilter } from '../snapshot/snapshot.js';
import { collect, collectTagList } from './parse.js';

/** The flags as commander names them. */
export interface SnapshotFilterFlags {
  host?: string;
  path: string[];
  tag: string[][];
}

/**
 * --host, --path, --tag: which snapshots a command considers. For commands that take one
 * snapshot they narrow down what "latest" means; `snapshots` lists the matching ones.
 */
export function snapshotFilterOptions(cmd: Command, what = 'for "latest": only snapshots'): Command {
  return cmd
    .option('--host <name>', `${what} of this host`)
    .option('--path <path>', `${what} of this path (repeatable)`, collect, [])
    .option('--tag <tags>', `${what} with all of these comma-separated tags (repeatable: any of the lists)`, collectTagList, []);
}

export function snapshotFilter(flags: SnapshotFilterFlags): SnapshotFilter {
  return { host: flags.host, paths: flags.path.map((p) => path.resolve(p)), tags: flags.tag };
}
