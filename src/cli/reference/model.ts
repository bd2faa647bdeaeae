import type { Argument, Command, Option } from 'commander';

/**
 * The command definitions (commander's) reduced to what the man page and the shell completions
 * need, so that each generator reads one plain tree instead of commander's internals.
 */

/** What a value (of an option or an argument) is completed with. */
export type Completion =
  | { kind: 'none' }
  | { kind: 'file' }
  | { kind: 'directory' }
  | { kind: 'words'; words: readonly string[] }
  /** IDs of the snapshots of $SCRATE_REPOSITORY, when it is set and answers quickly. */
  | { kind: 'snapshot' };

export interface OptionSpec {
  short?: string;
  long?: string;
  /** As written in the definition, e.g. `-r, --repo <location>`. */
  flags: string;
  description: string;
  envVar?: string;
  /** The value's placeholder and how to complete it; none for a flag. */
  value?: { name: string; completion: Completion };
  /** Given more than once, each time adds (commander's collect with an array default). */
  repeatable: boolean;
}

export interface ArgumentSpec {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  completion: Completion;
}

export interface CommandSpec {
  /** Names from the program down, e.g. ['key', 'add']; [] for the program itself. */
  path: string[];
  description: string;
  options: OptionSpec[];
  arguments: ArgumentSpec[];
  subcommands: CommandSpec[];
}

/** restic's --group-by values. */
const GROUPINGS = ['host', 'paths', 'tags', 'host,paths', 'host,tags', 'paths,tags', 'host,paths,tags'];

/**
 * Values of options that take any combination of words, which commander's `.choices()` cannot
 * declare: the completions offer these; a test checks that the option accepts each.
 */
export const SUGGESTED_VALUES: Record<string, readonly string[]> = {
  'forget --group-by': GROUPINGS,
  'snapshots --group-by': GROUPINGS,
};

/** Commander adds it to every command itself, outside `options`. */
const HELP: OptionSpec = { short: '-h', long: '--help', flags: '-h, --help', description: 'display help for the command', repeatable: false };

const NO_COMPLETION: Completion = { kind: 'none' };

/**
 * A placeholder's name says what it holds: `<location>` a repository (mostly a directory);
 * `<file>`, `<path>`, and `<dir>` (which may also be an image file or a device: restore
 * --target) any path.
 */
function completionOfPlaceholder(name: string): Completion {
  if (name === 'file' || name === 'path' || name === 'dir') return { kind: 'file' };
  if (name === 'location') return { kind: 'directory' };
  return NO_COMPLETION;
}

function optionSpec(path: string[], o: Option): OptionSpec {
  const placeholder = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  const suggested = o.long ? SUGGESTED_VALUES[[...path, o.long].join(' ')] : undefined;
  const completion: Completion = o.argChoices ? { kind: 'words', words: o.argChoices } : suggested ? { kind: 'words', words: suggested } : completionOfPlaceholder(placeholder ?? '');
  return {
    ...(o.short ? { short: o.short } : {}),
    ...(o.long ? { long: o.long } : {}),
    flags: o.flags,
    description: o.description,
    ...(o.envVar ? { envVar: o.envVar } : {}),
    ...(placeholder ? { value: { name: placeholder, completion } } : {}),
    repeatable: Array.isArray(o.defaultValue),
  };
}

/**
 * A snapshot argument completes with snapshot IDs; a path completes with files, except one
 * that follows a snapshot (a path inside it, which only the repository knows).
 */
function argumentSpec(cmd: Command, a: Argument): ArgumentSpec {
  const inSnapshot = cmd.registeredArguments.some((b) => b.name() === 'snapshot');
  const completion: Completion = a.argChoices
    ? { kind: 'words', words: a.argChoices }
    : a.name() === 'snapshot'
      ? { kind: 'snapshot' }
      : a.name() === 'path' && !inSnapshot
        ? { kind: 'file' }
        : NO_COMPLETION;
  return { name: a.name(), description: a.description, required: a.required, variadic: a.variadic, completion };
}

const visibleCommands = (cmd: Command) => cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);

function commandSpec(cmd: Command, path: string[]): CommandSpec {
  return {
    path,
    description: cmd.description(),
    options: cmd.options.filter((o) => !o.hidden).map((o) => optionSpec(path, o)),
    arguments: cmd.registeredArguments.map((a) => argumentSpec(cmd, a)),
    subcommands: visibleCommands(cmd).map((c) => commandSpec(c, [...path, c.name()])),
  };
}

/** The program's tree; its own options are the global ones, accepted after any command too. */
export function describeProgram(program: Command): CommandSpec {
  const root = commandSpec(program, []);
  return { ...root, options: [...root.options, HELP] };
}

/** Every command below `spec`, depth first, parents before their subcommands. */
export function allCommands(spec: CommandSpec): CommandSpec[] {
  return spec.subcommands.flatMap((c) => [c, ...allCommands(c)]);
}

/** `-r`, `--repo`: every name an option answers to. */
export function flagNames(o: OptionSpec): string[] {
  return [o.short, o.long].filter((f): f is string => !!f);
}
