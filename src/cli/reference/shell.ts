import { allCommands, flagNames, type CommandSpec } from './model.js';

/** What the three completions share: the snapshot query, and the tables their command-line walkers read. */

/**
 * Short IDs of the snapshots of $SCRATE_REPOSITORY, one a line, for completions: a POSIX pipeline
 * that bash, zsh and fish all run as it is. Never a prompt (stdin is not the terminal), never a
 * message, at most 3 s. The JSON is searched for 64-digit "id" values, which only snapshots have,
 * so it does not depend on how the JSON is laid out.
 */
export const SNAPSHOT_IDS = `timeout 3 scrate snapshots --json -q </dev/null 2>/dev/null | grep -o '"id": *"[0-9a-f]\\{64\\}"' | cut -d'"' -f4 | cut -c1-8`;

/** Every command of the program, the program itself first, with its path as the completions name it ("key add"). */
export function commandPaths(root: CommandSpec): { key: string; spec: CommandSpec }[] {
  return [root, ...allCommands(root)].map((spec) => ({ key: spec.path.join(' '), spec }));
}

/** The flags of a command's own options (the program's: the global ones). */
export function ownFlags(spec: CommandSpec, valued = false): string[] {
  return spec.options.filter((o) => !valued || o.value).flatMap(flagNames);
}

/** The flags a command accepts that take a value, the global ones too: a walker of the command line skips the word after them. */
export function valuedFlags(root: CommandSpec, spec: CommandSpec): string[] {
  return [...new Set([...ownFlags(spec, true), ...ownFlags(root, true)])];
}

/** Quoted for bash and zsh: in single quotes, with a quote itself ended, escaped and reopened (fish quotes otherwise). */
export function singleQuoted(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
