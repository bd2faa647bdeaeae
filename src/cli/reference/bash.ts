import { flagNames, type CommandSpec, type Completion } from './model.js';
import { commandPaths, ownFlags, singleQuoted, SNAPSHOT_IDS } from './shell.js';

/** The call of __scrate_reply (below) that completes `c`; undefined when nothing does. */
function reply(c: Completion): string | undefined {
  if (c.kind === 'none') return undefined;
  return c.kind === 'words' ? `__scrate_reply words ${singleQuoted(c.words.join(' '))}` : `__scrate_reply ${c.kind}`;
}

/** Each command's own options and "$global": the global ones, which every command accepts. */
function commandTable(root: CommandSpec): string[] {
  const withGlobal = (own: string[], global: string) => (own.length ? `"${own.join(' ')} $${global}"` : `"$${global}"`);
  return commandPaths(root).map(({ key, spec }) => {
    const subs = spec.subcommands.map((s) => s.path.at(-1)!).join(' ');
    const [own, valued] = spec === root ? [[], []] : [ownFlags(spec), ownFlags(spec, true)];
    return `    ${singleQuoted(key)}) subs=${singleQuoted(subs)} opts=${withGlobal(own, 'global')} valued=${withGlobal(valued, 'global_valued')} ;;`;
  });
}

/** Options of a command before the global ones, which are accepted after any command. */
function valueTable(root: CommandSpec): string[] {
  const lines: string[] = [];
  for (const { key, spec } of commandPaths(root).reverse()) {
    for (const o of spec.options) {
      const call = o.value && reply(o.value.completion);
      if (!call) continue;
      const patterns = flagNames(o).map((f) => (spec === root ? `*:${f}` : `${singleQuoted(key)}:${f}`));
      lines.push(`    ${patterns.join('|')}) ${call} ;;`);
    }
  }
  return lines;
}

function argumentTable(root: CommandSpec): string[] {
  const lines: string[] = [];
  for (const { key, spec } of commandPaths(root)) {
    // Every argument has its case, so that a variadic one's `*` catches only those after it.
    const calls = spec.arguments.map((a) => reply(a.completion));
    if (calls.every((c) => c === undefined)) continue;
    const cases = spec.arguments.map((a, i) => `${a.variadic ? '*' : i}) ${calls[i] ?? ''} ;;`);
    lines.push(`    ${singleQuoted(key)}) case $2 in ${cases.join(' ')} esac ;;`);
  }
  return lines;
}

export function bashCompletion(program: CommandSpec): string {
  return `# bash completion for scrate: generated from its command definitions by \`npm run reference\`
# (also printed by \`scrate completion bash\`); do not edit.

# Sets subs, opts and valued (the options taking a value) of the command at path $1.
__scrate_command() {
  local global=${singleQuoted(ownFlags(program).join(' '))} global_valued=${singleQuoted(ownFlags(program, true).join(' '))}
  case $1 in
${commandTable(program).join('\n')}
  esac
}

__scrate_snapshot_ids() {
  [[ -n $SCRATE_REPOSITORY ]] && ${SNAPSHOT_IDS}
}

# Completes $cur as a file, a directory, one of the words $2, or a snapshot.
__scrate_reply() {
  case $1 in
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    directory) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    words) mapfile -t COMPREPLY < <(compgen -W "$2" -- "$cur") ;;
    snapshot) mapfile -t COMPREPLY < <(compgen -W "latest $(__scrate_snapshot_ids)" -- "$cur") ;;
  esac
}

# The value of option $2 of the command at path $1.
__scrate_value() {
  case $1:$2 in
${valueTable(program).join('\n')}
  esac
}

# Argument number $2 (from 0) of the command at path $1.
__scrate_argument() {
  case $1 in
${argumentTable(program).join('\n')}
  esac
}

_scrate() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path='' args=0 ended=0 opt='' i w subs opts valued
  COMPREPLY=()
  __scrate_command ''
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((ended)); then
      args=$((args + 1))
      continue
    fi
    case $w in
      --) ended=1 ;;
      --*=*) ;;
      -?*)
        if [[ " $valued " == *" $w "* ]]; then
          ((i + 1 == COMP_CWORD)) && opt=$w
          i=$((i + 1))
        fi
        ;;
      *)
        if ((args == 0)) && [[ " $subs " == *" $w "* ]]; then
          path=\${path:+$path }$w
          __scrate_command "$path"
        else
          args=$((args + 1))
        fi
        ;;
    esac
  done
  if [[ -n $opt ]]; then
    __scrate_value "$path" "$opt"
  elif [[ $cur == -* ]] && ((!ended)); then
    mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
  elif [[ -n $subs ]] && ((args == 0)); then
    mapfile -t COMPREPLY < <(compgen -W "$subs" -- "$cur")
  else
    __scrate_argument "$path" "$args"
  fi
}
complete -F _scrate scrate
`;
}
