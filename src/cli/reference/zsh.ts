import { allCommands, flagNames, type ArgumentSpec, type CommandSpec, type Completion, type OptionSpec } from './model.js';
import { singleQuoted, SNAPSHOT_IDS } from './shell.js';

/** An `_arguments` action: how the value is completed (a space: a value nothing completes). */
function action(c: Completion): string {
  switch (c.kind) {
    case 'file':
      return '_files';
    case 'directory':
      return '_files -/';
    case 'words':
      return `(${c.words.join(' ')})`;
    case 'snapshot':
      return '__scrate_snapshot_ids';
    case 'none':
      return ' ';
  }
}

/** In `_arguments`' brackets a bracket must be escaped; in its colon-separated fields, a colon. */
const bracketed = (text: string) => text.replace(/[\\[\]]/g, '\\$&');
const field = (text: string) => text.replace(/[\\:]/g, '\\$&');

/** `'(-r --repo)'{-r,--repo}'[…]:location:_files -/'`: both names, each excluding the other unless repeatable. */
function optionSpec(o: OptionSpec): string {
  const names = flagNames(o);
  const value = o.value ? `:${field(o.value.name)}:${action(o.value.completion)}` : '';
  const head = o.repeatable ? '*' : names.length > 1 ? `(${names.join(' ')})` : '';
  const tail = singleQuoted(`[${bracketed(o.description)}]${value}`);
  const nameWords = names.length > 1 ? `{${names.join(',')}}` : names[0]!;
  return `${head ? singleQuoted(head) : ''}${nameWords}${tail}`;
}

function argumentSpec(a: ArgumentSpec, i: number): string {
  const position = a.variadic ? '*' : String(i + 1);
  return singleQuoted(`${position}:${a.required || a.variadic ? '' : ':'}${field(a.name)}:${action(a.completion)}`);
}

const functionName = (spec: CommandSpec) => ['_scrate', ...spec.path].join('__');

function commandFunction(spec: CommandSpec): string {
  const specs = [...spec.options.map(optionSpec), ...spec.arguments.map(argumentSpec)];
  if (!spec.subcommands.length) return `${functionName(spec)}() {\n  _arguments -s -S $__scrate_globals${specs.map((s) => ` \\\n    ${s}`).join('')}\n}`;
  const described = spec.subcommands.map((s) => singleQuoted(`${s.path.at(-1)}:${s.description}`));
  const dispatch = spec.subcommands.map((s) => `      ${s.path.at(-1)}) ${functionName(s)} && ret=0 ;;`);
  const context = ['scrate', ...spec.path].join('-');
  return `${functionName(spec)}() {
  local curcontext=$curcontext state state_descr line ret=1
  typeset -A opt_args
  _arguments -s -S -C $__scrate_globals${specs.map((s) => ` \\\n    ${s}`).join('')} \\
    '1: :->command' '*:: :->argument' && ret=0
  case $state in
    command)
      local -a subcommands=(${described.join(' ')})
      _describe -t commands ${singleQuoted(`${context} command`)} subcommands && ret=0
      ;;
    argument)
      curcontext=\${curcontext%:*:*}:${context}-$words[1]:
      case $words[1] in
${dispatch.join('\n')}
      esac
      ;;
  esac
  return ret
}`;
}

export function zshCompletion(program: CommandSpec): string {
  const root = { ...program, options: [] };
  return `#compdef scrate
# zsh completion for scrate: generated from its command definitions by \`npm run reference\`
# (also printed by \`scrate completion zsh\`); do not edit.

__scrate_snapshot_ids() {
  local -a ids
  [[ -n $SCRATE_REPOSITORY ]] && ids=(\${(f)"$(${SNAPSHOT_IDS})"})
  _wanted snapshots expl snapshot compadd -- latest $ids
}

# The global options, which every command accepts (_arguments is called by the function that reads its state).
typeset -ga __scrate_globals=(${program.options.map((o) => `\n  ${optionSpec(o)}`).join('')}
)

${[root, ...allCommands(program)].map(commandFunction).join('\n\n')}

# Loaded from $fpath, this file is the body of _scrate; sourced, it registers it.
if [[ $funcstack[1] == _scrate ]]; then
  _scrate "$@"
else
  compdef _scrate scrate
fi
`;
}
