# bash completion for scrate: generated from its command definitions by `npm run reference`
# (also printed by `scrate completion bash`); do not edit.

# Sets subs, opts and valued (the options taking a value) of the command at path $1.
__scrate_command() {
  local global='-V --version -r --repo -o --option --no-cache -p --password-file --password-command --insecure-no-password --json -q --quiet -v --verbose --debug -h --help' global_valued='-r --repo -o --option -p --password-file --password-command'
  case $1 in
    '') subs='init backup snapshots stats tag forget prune ls restore dump mount diff find check copy repair key volume cat unlock version completion help' opts="$global" valued="$global_valued" ;;
    'init') subs='' opts="--chunk-min --chunk-avg --chunk-max --compression --copy-chunker-params --from-repo --from-option --from-password-file --from-password-command --from-insecure-no-password $global" valued="--chunk-min --chunk-avg --chunk-max --compression --from-repo --from-option --from-password-file --from-password-command $global_valued" ;;
    'backup') subs='' opts="--tag --host --time --parent --force -e --exclude --iexclude --exclude-file --iexclude-file --exclude-if-present --exclude-caches --exclude-larger-than --files-from --files-from-verbatim --files-from-raw -x --one-file-system -n --dry-run --compression --as-device --chunker --stdin --stdin-filename --stdin-from-command $global" valued="--tag --host --time --parent -e --exclude --iexclude --exclude-file --iexclude-file --exclude-if-present --exclude-larger-than --files-from --files-from-verbatim --files-from-raw --compression --chunker --stdin-filename $global_valued" ;;
    'snapshots') subs='' opts="--host --path --tag --latest -g --group-by $global" valued="--host --path --tag --latest -g --group-by $global_valued" ;;
    'stats') subs='' opts="--mode --host --path --tag $global" valued="--mode --host --path --tag $global_valued" ;;
    'tag') subs='' opts="--set --add --remove --host --path --tag $global" valued="--set --add --remove --host --path --tag $global_valued" ;;
    'forget') subs='' opts="--host --path --tag -l --keep-last -H --keep-hourly -d --keep-daily -w --keep-weekly -m --keep-monthly -y --keep-yearly --keep-within --keep-within-hourly --keep-within-daily --keep-within-weekly --keep-within-monthly --keep-within-yearly --keep-tag -g --group-by -n --dry-run --prune $global" valued="--host --path --tag -l --keep-last -H --keep-hourly -d --keep-daily -w --keep-weekly -m --keep-monthly -y --keep-yearly --keep-within --keep-within-hourly --keep-within-daily --keep-within-weekly --keep-within-monthly --keep-within-yearly --keep-tag -g --group-by $global_valued" ;;
    'prune') subs='' opts="--max-unused --max-repack-size --delete-after -n --dry-run $global" valued="--max-unused --max-repack-size --delete-after $global_valued" ;;
    'ls') subs='' opts="-l --long --host --path --tag $global" valued="--host --path --tag $global_valued" ;;
    'restore') subs='' opts="-t --target -i --include --iinclude -e --exclude --iexclude --overwrite --numeric-owner --allow-privileged --verify --host --path --tag $global" valued="-t --target -i --include --iinclude -e --exclude --iexclude --host --path --tag $global_valued" ;;
    'dump') subs='' opts="-a --archive -t --target --allow-privileged --host --path --tag $global" valued="-a --archive -t --target --host --path --tag $global_valued" ;;
    'mount') subs='' opts="--allow-other $global" valued="$global_valued" ;;
    'diff') subs='' opts="--metadata $global" valued="$global_valued" ;;
    'find') subs='' opts="-s --snapshot -O --oldest -N --newest -i --ignore-case -l --long -R --reverse --blob --tree --pack --host --path --tag $global" valued="-s --snapshot -O --oldest -N --newest --host --path --tag $global_valued" ;;
    'check') subs='' opts="--read-data --read-data-subset --compare --from-option --from-password-file --from-password-command --from-insecure-no-password $global" valued="--read-data-subset --compare --from-option --from-password-file --from-password-command $global_valued" ;;
    'copy') subs='' opts="--host --path --tag --from-repo --from-option --from-password-file --from-password-command --from-insecure-no-password $global" valued="--host --path --tag --from-repo --from-option --from-password-file --from-password-command $global_valued" ;;
    'repair') subs='index packs snapshots' opts="$global" valued="$global_valued" ;;
    'repair index') subs='' opts="$global" valued="$global_valued" ;;
    'repair packs') subs='' opts="$global" valued="$global_valued" ;;
    'repair snapshots') subs='' opts="--forget -n --dry-run $global" valued="$global_valued" ;;
    'key') subs='list add remove passwd' opts="$global" valued="$global_valued" ;;
    'key list') subs='' opts="$global" valued="$global_valued" ;;
    'key add') subs='' opts="--new-password-file --write-only --host --share-full-keys $global" valued="--new-password-file --host $global_valued" ;;
    'key remove') subs='' opts="$global" valued="$global_valued" ;;
    'key passwd') subs='' opts="--new-password-file $global" valued="--new-password-file $global_valued" ;;
    'volume') subs='create list serve mount commit rm' opts="$global" valued="$global_valued" ;;
    'volume create') subs='' opts="--size --block-size $global" valued="--size --block-size $global_valued" ;;
    'volume list') subs='' opts="$global" valued="$global_valued" ;;
    'volume serve') subs='' opts="--socket --listen --read-only --at --commit-every --cache-size --cache-dir --write-delay --discard-cache $global" valued="--socket --listen --at --commit-every --cache-size --cache-dir --write-delay $global_valued" ;;
    'volume mount') subs='' opts="--allow-other --read-only --at --commit-every --cache-size --cache-dir --write-delay --discard-cache $global" valued="--at --commit-every --cache-size --cache-dir --write-delay $global_valued" ;;
    'volume commit') subs='' opts="--tag --cache-dir $global" valued="--tag --cache-dir $global_valued" ;;
    'volume rm') subs='' opts="--forget-commits $global" valued="$global_valued" ;;
    'cat') subs='' opts="$global" valued="$global_valued" ;;
    'unlock') subs='' opts="--remove-all $global" valued="$global_valued" ;;
    'version') subs='' opts="$global" valued="$global_valued" ;;
    'completion') subs='' opts="$global" valued="$global_valued" ;;
    'help') subs='' opts="$global" valued="$global_valued" ;;
  esac
}

__scrate_snapshot_ids() {
  [[ -n $SCRATE_REPOSITORY ]] && timeout 3 scrate snapshots --json -q </dev/null 2>/dev/null | grep -o '"id": *"[0-9a-f]\{64\}"' | cut -d'"' -f4 | cut -c1-8
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
    'volume commit':--cache-dir) __scrate_reply file ;;
    'volume mount':--cache-dir) __scrate_reply file ;;
    'volume serve':--socket) __scrate_reply file ;;
    'volume serve':--cache-dir) __scrate_reply file ;;
    'key passwd':--new-password-file) __scrate_reply file ;;
    'key add':--new-password-file) __scrate_reply file ;;
    'copy':--path) __scrate_reply file ;;
    'copy':--from-repo) __scrate_reply directory ;;
    'copy':--from-password-file) __scrate_reply file ;;
    'check':--compare) __scrate_reply directory ;;
    'check':--from-password-file) __scrate_reply file ;;
    'find':--path) __scrate_reply file ;;
    'dump':-a|'dump':--archive) __scrate_reply words 'tar zip' ;;
    'dump':-t|'dump':--target) __scrate_reply file ;;
    'dump':--path) __scrate_reply file ;;
    'restore':-t|'restore':--target) __scrate_reply file ;;
    'restore':--path) __scrate_reply file ;;
    'ls':--path) __scrate_reply file ;;
    'forget':--path) __scrate_reply file ;;
    'forget':-g|'forget':--group-by) __scrate_reply words 'host paths tags host,paths host,tags paths,tags host,paths,tags' ;;
    'tag':--path) __scrate_reply file ;;
    'stats':--mode) __scrate_reply words 'restore-size files-by-contents raw-data blobs-per-file' ;;
    'stats':--path) __scrate_reply file ;;
    'snapshots':--path) __scrate_reply file ;;
    'snapshots':-g|'snapshots':--group-by) __scrate_reply words 'host paths tags host,paths host,tags paths,tags host,paths,tags' ;;
    'backup':--exclude-file) __scrate_reply file ;;
    'backup':--iexclude-file) __scrate_reply file ;;
    'backup':--files-from) __scrate_reply file ;;
    'backup':--files-from-verbatim) __scrate_reply file ;;
    'backup':--files-from-raw) __scrate_reply file ;;
    'backup':--chunker) __scrate_reply words 'fixed cdc' ;;
    'init':--from-repo) __scrate_reply directory ;;
    'init':--from-password-file) __scrate_reply file ;;
    *:-r|*:--repo) __scrate_reply directory ;;
    *:-p|*:--password-file) __scrate_reply file ;;
  esac
}

# Argument number $2 (from 0) of the command at path $1.
__scrate_argument() {
  case $1 in
    'backup') case $2 in *) __scrate_reply file ;; esac ;;
    'stats') case $2 in *) __scrate_reply snapshot ;; esac ;;
    'tag') case $2 in *) __scrate_reply snapshot ;; esac ;;
    'forget') case $2 in *) __scrate_reply snapshot ;; esac ;;
    'ls') case $2 in 0) __scrate_reply snapshot ;; 1)  ;; esac ;;
    'restore') case $2 in 0) __scrate_reply snapshot ;; esac ;;
    'dump') case $2 in 0) __scrate_reply snapshot ;; 1)  ;; esac ;;
    'copy') case $2 in *) __scrate_reply snapshot ;; esac ;;
    'cat') case $2 in 0) __scrate_reply words 'config keys writers snapshot index pack tree' ;; 1)  ;; esac ;;
    'completion') case $2 in 0) __scrate_reply words 'bash zsh fish' ;; esac ;;
  esac
}

_scrate() {
  local cur=${COMP_WORDS[COMP_CWORD]} path='' args=0 ended=0 opt='' i w subs opts valued
  COMPREPLY=()
  __scrate_command ''
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
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
          path=${path:+$path }$w
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
