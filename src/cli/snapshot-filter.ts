import type { Command } from 'commander';
import { collect } from './parse.js';

export interface SnapshotFilterFlags {
  host?: string;
  paths?: string[];
  tags?: string[];
}

/** The filters that narrow down what "latest" means, shared by every command that takes a snapshot. */
export function snapshotFilterOptions(cmd: Command): Command {
  return cmd
    .option('--host <name>', 'for "latest": only snapshots of this host')
    .option('--path <path>', 'for "latest": only snapshots of this path (repeatable)', (v: string, p: string[] = []) => collect(v, p))
    .option('--tag <tag>', 'for "latest": only snapshots with this tag (repeatable)', (v: string, p: string[] = []) => collect(v, p));
}
