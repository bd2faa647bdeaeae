import type { CommandSpec, Completion, OptionSpec } from './model.js';
import { commandPaths, SNAPSHOT_IDS, valuedFlags } from './shell.js';

/** In fish's single quotes a backslash escapes a quote and itself. */
const quoted = (text: string) => `'${text.replace(/[\\']/g, '\\$&')}'`;

/** `complete` arguments for a value: files (-F), or no files (-x) and these candidates. */
function candidates(c: Completion): string {
  switch (c.kind) {
    case 'file':
      return '-r -F';
    case 'directory':
      return `-x -a '(__fish_complete_directories (commandline -ct))'`;
    case 'words':
      return `-x -a ${quoted(c.words.join(' '))}`;
    case 'snapshot':
      return `-x -a '(__scrate_snapshot_ids)'`;
    case 'none':
      return '-x';
  }
}

function optionLine(o: OptionSpec, condition: string): string {
  const names = [o.short && `-s ${o.short.slice(1)}`, o.long && `-l ${o.long.slice(2)}`].filter(Boolean).join(' ');
  return `complete -c scrate${condition} ${names}${o.value ? ` ${candidates(o.value.completion)}` : ''} -d ${quoted(o.description)}`;
}

function commandLines(spec: CommandSpec): string[] {
  const at = (position?: string) => ` -n ${quoted(`__scrate_at ${quoted(spec.path.join(' '))}${position ? ` ${position}` : ''}`)}`;
  return [
    ...spec.subcommands.map((s) => `complete -c scrate${at('0')} -a ${quoted(s.path.at(-1)!)} -d ${quoted(s.description)}`),
    ...spec.options.map((o) => optionLine(o, at())),
    ...spec.arguments.flatMap((a, i) => (a.completion.kind === 'none' ? [] : [`complete -c scrate${at(a.variadic ? `${i}+` : String(i))} ${candidates(a.completion)}`])),
  ];
}

export function fishCompletion(program: CommandSpec): string {
  const table = (pick: (spec: CommandSpec) => string[]) =>
    commandPaths(program)
      .map(({ key, spec }) => `        case ${quoted(key)}\n            printf '%s\\n' ${pick(spec).join(' ')}`)
      .join('\n');
  return `# fish completion for scrate: generated from its command definitions by \`npm run reference\`
# (also printed by \`scrate completion fish\`); do not edit.

function __scrate_subcommands --argument-names path
    switch $path
${table((spec) => spec.subcommands.map((s) => s.path.at(-1)!))}
    end
end

# The options of the command at path that take a value (the global ones too).
function __scrate_valued --argument-names path
    switch $path
${table((spec) => valuedFlags(program, spec))}
    end
end

# Prints the path of the command being completed ("key add") and how many arguments it has.
function __scrate_walk
    set -l path
    set -l args 0
    set -l skip 0
    set -l ended 0
    for word in (commandline -opc)[2..-1]
        if test $skip = 1
            set skip 0
        else if test $ended = 1
            set args (math $args + 1)
        else if test $word = --
            set ended 1
        else if string match -q -- '--*=*' $word
            continue
        else if string match -q -- '-?*' $word
            contains -- $word (__scrate_valued "$path"); and set skip 1
        else if test $args = 0; and contains -- $word (__scrate_subcommands "$path")
            set -a path $word
        else
            set args (math $args + 1)
        end
    end
    echo "$path"
    echo $args
end

# Whether the command at path is being completed, and at argument number position (from 0; n+: n or later).
function __scrate_at --argument-names path position
    set -l state (__scrate_walk)
    test "$state[1]" = "$path"; or return 1
    test -z "$position"; and return 0
    if string match -q -- '*+' $position
        test $state[2] -ge (string trim -r -c + -- $position)
    else
        test $state[2] = $position
    end
end

function __scrate_snapshot_ids
    echo latest
    set -q SCRATE_REPOSITORY; and test -n "$SCRATE_REPOSITORY"; and ${SNAPSHOT_IDS}
end

complete -c scrate -f
${program.options.map((o) => optionLine(o, '')).join('\n')}
${commandPaths(program)
  .flatMap(({ spec }) => commandLines(spec === program ? { ...spec, options: [] } : spec))
  .join('\n')}
`;
}
