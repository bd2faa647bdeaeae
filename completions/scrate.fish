# fish completion for scrate: generated from its command definitions by `npm run reference`
# (also printed by `scrate completion fish`); do not edit.

function __scrate_subcommands --argument-names path
    switch $path
        case ''
            printf '%s\n' init backup snapshots stats tag forget prune ls restore dump mount diff find check copy repair key volume cat unlock version completion help
        case 'init'
            printf '%s\n' 
        case 'backup'
            printf '%s\n' 
        case 'snapshots'
            printf '%s\n' 
        case 'stats'
            printf '%s\n' 
        case 'tag'
            printf '%s\n' 
        case 'forget'
            printf '%s\n' 
        case 'prune'
            printf '%s\n' 
        case 'ls'
            printf '%s\n' 
        case 'restore'
            printf '%s\n' 
        case 'dump'
            printf '%s\n' 
        case 'mount'
            printf '%s\n' 
        case 'diff'
            printf '%s\n' 
        case 'find'
            printf '%s\n' 
        case 'check'
            printf '%s\n' 
        case 'copy'
            printf '%s\n' 
        case 'repair'
            printf '%s\n' index packs snapshots
        case 'repair index'
            printf '%s\n' 
        case 'repair packs'
            printf '%s\n' 
        case 'repair snapshots'
            printf '%s\n' 
        case 'key'
            printf '%s\n' list add remove passwd
        case 'key list'
            printf '%s\n' 
        case 'key add'
            printf '%s\n' 
        case 'key remove'
            printf '%s\n' 
        case 'key passwd'
            printf '%s\n' 
        case 'volume'
            printf '%s\n' create list serve mount commit rm
        case 'volume create'
            printf '%s\n' 
        case 'volume list'
            printf '%s\n' 
        case 'volume serve'
            printf '%s\n' 
        case 'volume mount'
            printf '%s\n' 
        case 'volume commit'
            printf '%s\n' 
        case 'volume rm'
            printf '%s\n' 
        case 'cat'
            printf '%s\n' 
        case 'unlock'
            printf '%s\n' 
        case 'version'
            printf '%s\n' 
        case 'completion'
            printf '%s\n' 
        case 'help'
            printf '%s\n' 
    end
end

# The options of the command at path that take a value (the global ones too).
function __scrate_valued --argument-names path
    switch $path
        case ''
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'init'
            printf '%s\n' --chunk-min --chunk-avg --chunk-max --compression --from-repo --from-option --from-password-file --from-password-command -r --repo -o --option -p --password-file --password-command
        case 'backup'
            printf '%s\n' --tag --host --time --parent -e --exclude --iexclude --exclude-file --iexclude-file --exclude-if-present --exclude-larger-than --files-from --files-from-verbatim --files-from-raw --compression --chunker --stdin-filename -r --repo -o --option -p --password-file --password-command
        case 'snapshots'
            printf '%s\n' --host --path --tag --latest -g --group-by -r --repo -o --option -p --password-file --password-command
        case 'stats'
            printf '%s\n' --mode --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'tag'
            printf '%s\n' --set --add --remove --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'forget'
            printf '%s\n' --host --path --tag -l --keep-last -H --keep-hourly -d --keep-daily -w --keep-weekly -m --keep-monthly -y --keep-yearly --keep-within --keep-within-hourly --keep-within-daily --keep-within-weekly --keep-within-monthly --keep-within-yearly --keep-tag -g --group-by -r --repo -o --option -p --password-file --password-command
        case 'prune'
            printf '%s\n' --max-unused --max-repack-size --delete-after -r --repo -o --option -p --password-file --password-command
        case 'ls'
            printf '%s\n' --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'restore'
            printf '%s\n' -t --target -i --include --iinclude -e --exclude --iexclude --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'dump'
            printf '%s\n' -a --archive -t --target --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'mount'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'diff'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'find'
            printf '%s\n' -s --snapshot -O --oldest -N --newest --host --path --tag -r --repo -o --option -p --password-file --password-command
        case 'check'
            printf '%s\n' --read-data-subset --compare --from-option --from-password-file --from-password-command -r --repo -o --option -p --password-file --password-command
        case 'copy'
            printf '%s\n' --host --path --tag --from-repo --from-option --from-password-file --from-password-command -r --repo -o --option -p --password-file --password-command
        case 'repair'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'repair index'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'repair packs'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'repair snapshots'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'key'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'key list'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'key add'
            printf '%s\n' --new-password-file --host -r --repo -o --option -p --password-file --password-command
        case 'key remove'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'key passwd'
            printf '%s\n' --new-password-file -r --repo -o --option -p --password-file --password-command
        case 'volume'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'volume create'
            printf '%s\n' --size --block-size -r --repo -o --option -p --password-file --password-command
        case 'volume list'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'volume serve'
            printf '%s\n' --socket --listen --at --commit-every --cache-size --cache-dir --write-delay -r --repo -o --option -p --password-file --password-command
        case 'volume mount'
            printf '%s\n' --at --commit-every --cache-size --cache-dir --write-delay -r --repo -o --option -p --password-file --password-command
        case 'volume commit'
            printf '%s\n' --tag --cache-dir -r --repo -o --option -p --password-file --password-command
        case 'volume rm'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'cat'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'unlock'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'version'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'completion'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
        case 'help'
            printf '%s\n' -r --repo -o --option -p --password-file --password-command
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
    set -q SCRATE_REPOSITORY; and test -n "$SCRATE_REPOSITORY"; and timeout 3 scrate snapshots --json -q </dev/null 2>/dev/null | grep -o '"id": *"[0-9a-f]\{64\}"' | cut -d'"' -f4 | cut -c1-8
end

complete -c scrate -f
complete -c scrate -s V -l version -d 'output the version number'
complete -c scrate -s r -l repo -x -a '(__fish_complete_directories (commandline -ct))' -d 'repository: a directory, or s3:https://host/bucket/prefix, or s3:bucket/prefix (backup takes several: repeatable)'
complete -c scrate -s o -l option -x -d 'backend option, e.g. s3.region=eu-west-1, s3.connections=16 (repeatable)'
complete -c scrate -l no-cache -d 'do not use the local metadata cache'
complete -c scrate -s p -l password-file -r -F -d 'read the password from a file (with several -r: one each, in order, or one for all)'
complete -c scrate -l password-command -x -d 'run a shell command that prints the password (with several -r: one each, in order, or one for all)'
complete -c scrate -l insecure-no-password -d 'the repository has an empty password: none is asked for (insecure; an empty password is refused otherwise)'
complete -c scrate -l json -d 'machine-readable output'
complete -c scrate -s q -l quiet -d 'print only errors'
complete -c scrate -s v -l verbose -d 'print more detail; -vv: also every file a backup looks at, as new, modified or unchanged'
complete -c scrate -l debug -d 'show stack traces of internal errors'
complete -c scrate -s h -l help -d 'display help for the command'
complete -c scrate -n '__scrate_at \'\' 0' -a 'init' -d 'create a new repository'
complete -c scrate -n '__scrate_at \'\' 0' -a 'backup' -d 'save files and directories as a new snapshot'
complete -c scrate -n '__scrate_at \'\' 0' -a 'snapshots' -d 'list snapshots'
complete -c scrate -n '__scrate_at \'\' 0' -a 'stats' -d 'count the files and sizes of snapshots (all that match the filters unless some are named), from trees and the index, as restic\'s modes'
complete -c scrate -n '__scrate_at \'\' 0' -a 'tag' -d 'change the tags of snapshots (all that match the filters unless some are named): each changed one is stored again as a new snapshot, then the old one removed'
complete -c scrate -n '__scrate_at \'\' 0' -a 'forget' -d 'remove snapshots by a retention policy (as restic\'s) or by ID; their data stays until a prune'
complete -c scrate -n '__scrate_at \'\' 0' -a 'prune' -d 'give back the space of data no snapshot needs (beside running backups: in two phases)'
complete -c scrate -n '__scrate_at \'\' 0' -a 'ls' -d 'list the files in a snapshot'
complete -c scrate -n '__scrate_at \'\' 0' -a 'restore' -d 'write the files of a snapshot into a directory'
complete -c scrate -n '__scrate_at \'\' 0' -a 'dump' -d 'write a file (or disk image) of a snapshot to standard output, or a directory as a tar or zip archive'
complete -c scrate -n '__scrate_at \'\' 0' -a 'mount' -d 'browse the snapshots as a read-only filesystem (FUSE), in the foreground until unmounted'
complete -c scrate -n '__scrate_at \'\' 0' -a 'diff' -d 'show the differences between two snapshots, from the first to the second'
complete -c scrate -n '__scrate_at \'\' 0' -a 'find' -d 'find files and directories by name in snapshots, or the snapshots and files that use a blob, tree or pack'
complete -c scrate -n '__scrate_at \'\' 0' -a 'check' -d 'verify the repository (snapshots, trees, index, packs) and name the files of each snapshot that a problem costs'
complete -c scrate -n '__scrate_at \'\' 0' -a 'copy' -d 'copy snapshots from --from-repo into this repository (re-chunked unless it was made with init --from-repo --copy-chunker-params)'
complete -c scrate -n '__scrate_at \'\' 0' -a 'repair' -d 'repair a damaged repository: rebuild the index, salvage packs, write snapshots again without what is lost'
complete -c scrate -n '__scrate_at \'\' 0' -a 'key' -d 'manage the passwords (key files) that open the repository, and write-only keys for backup hosts'
complete -c scrate -n '__scrate_at \'\' 0' -a 'volume' -d 'volumes: thin, versioned virtual disks stored in the repository (commits are snapshots)'
complete -c scrate -n '__scrate_at \'\' 0' -a 'cat' -d 'print a repository object, decrypted, as JSON (for debugging): config|keys|writers|snapshot|index|pack|tree'
complete -c scrate -n '__scrate_at \'\' 0' -a 'unlock' -d 'remove locks left behind by processes that are gone'
complete -c scrate -n '__scrate_at \'\' 0' -a 'version' -d 'print the version of scrate and of the Node.js it runs on'
complete -c scrate -n '__scrate_at \'\' 0' -a 'completion' -d 'print the completion script of a shell (the man page\'s FILES says where to put it)'
complete -c scrate -n '__scrate_at \'\' 0' -a 'help' -d 'show the help of a command, e.g. `scrate help key add`'
complete -c scrate -n '__scrate_at \'init\'' -l chunk-min -x -d 'smallest chunk'
complete -c scrate -n '__scrate_at \'init\'' -l chunk-avg -x -d 'average chunk'
complete -c scrate -n '__scrate_at \'init\'' -l chunk-max -x -d 'largest chunk'
complete -c scrate -n '__scrate_at \'init\'' -l compression -x -d 'default zstd level for data (0 = off)'
complete -c scrate -n '__scrate_at \'init\'' -l copy-chunker-params -d 'take the chunker parameters and blob-ID keys of --from-repo (needs a full key of it): the same files give the same chunks and blob IDs in both'
complete -c scrate -n '__scrate_at \'init\'' -l from-repo -x -a '(__fish_complete_directories (commandline -ct))' -d 'the repository to take the chunker parameters of, as -r/--repo'
complete -c scrate -n '__scrate_at \'init\'' -l from-option -x -d 'backend option of --from-repo, as -o (repeatable)'
complete -c scrate -n '__scrate_at \'init\'' -l from-password-file -r -F -d 'read the password of --from-repo from a file'
complete -c scrate -n '__scrate_at \'init\'' -l from-password-command -x -d 'run a shell command that prints the password of --from-repo'
complete -c scrate -n '__scrate_at \'init\'' -l from-insecure-no-password -d '--from-repo has an empty password: none is asked for'
complete -c scrate -n '__scrate_at \'backup\'' -l tag -x -d 'tag the snapshot with these comma-separated tags (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l host -x -d 'record this host name instead of the real one'
complete -c scrate -n '__scrate_at \'backup\'' -l time -x -d 'the snapshot\'s time, local, as "2012-11-01 22:08:41" (default: now)'
complete -c scrate -n '__scrate_at \'backup\'' -l parent -x -d 'compare against this snapshot instead of the latest of the same paths'
complete -c scrate -n '__scrate_at \'backup\'' -l force -d 're-read every file, even unchanged ones'
complete -c scrate -n '__scrate_at \'backup\'' -s e -l exclude -x -d 'leave out paths matching the pattern (repeatable; see PATTERNS)'
complete -c scrate -n '__scrate_at \'backup\'' -l iexclude -x -d 'as --exclude, ignoring case (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l exclude-file -r -F -d 'read exclude patterns from a file, one a line (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l iexclude-file -r -F -d 'as --exclude-file, ignoring case (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l exclude-if-present -x -d 'leave out the contents of directories holding this file (starting with header) but the file (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l exclude-caches -d 'leave out the contents of directories holding a CACHEDIR.TAG with its signature'
complete -c scrate -n '__scrate_at \'backup\'' -l exclude-larger-than -x -d 'leave out files larger than size (k, m, g, t: KiB, MiB, GiB, TiB)'
complete -c scrate -n '__scrate_at \'backup\'' -l files-from -r -F -d 'back up the paths or globs listed in file, one a line, # comments (repeatable; - for stdin)'
complete -c scrate -n '__scrate_at \'backup\'' -l files-from-verbatim -r -F -d 'back up the paths listed in file, one a line, as they are (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -l files-from-raw -r -F -d 'back up the paths listed in file, each ended by a NUL byte (repeatable)'
complete -c scrate -n '__scrate_at \'backup\'' -s x -l one-file-system -d 'do not cross filesystem boundaries'
complete -c scrate -n '__scrate_at \'backup\'' -s n -l dry-run -d 'show what would be stored without writing anything'
complete -c scrate -n '__scrate_at \'backup\'' -l compression -x -d 'zstd level for new data (0 = off)'
complete -c scrate -n '__scrate_at \'backup\'' -l as-device -d 'back up regular files among the paths as disk images, like block devices'
complete -c scrate -n '__scrate_at \'backup\'' -l chunker -x -a 'fixed cdc' -d 'chunking of block devices and disk images: fixed (block-aligned) or cdc'
complete -c scrate -n '__scrate_at \'backup\'' -l stdin -d 'back up standard input as one file'
complete -c scrate -n '__scrate_at \'backup\'' -l stdin-filename -x -d 'the name of that file in the snapshot'
complete -c scrate -n '__scrate_at \'backup\'' -l stdin-from-command -d 'run the command given after -- and back up its output; no snapshot if it fails'
complete -c scrate -n '__scrate_at \'backup\' 0+' -r -F
complete -c scrate -n '__scrate_at \'snapshots\'' -l host -x -d 'only snapshots of this host'
complete -c scrate -n '__scrate_at \'snapshots\'' -l path -r -F -d 'only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'snapshots\'' -l tag -x -d 'only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'snapshots\'' -l latest -x -d 'only the newest n snapshots of each host and paths (of each group with --group-by)'
complete -c scrate -n '__scrate_at \'snapshots\'' -s g -l group-by -x -a 'host paths tags host,paths host,tags paths,tags host,paths,tags' -d 'show snapshots in groups with the same host, paths and/or tags, comma-separated'
complete -c scrate -n '__scrate_at \'stats\'' -l mode -x -a 'restore-size files-by-contents raw-data blobs-per-file' -d 'restore-size: what a restore writes; files-by-contents: each content once; raw-data: the blobs stored; blobs-per-file: each content\'s blobs once per path'
complete -c scrate -n '__scrate_at \'stats\'' -l host -x -d 'without snapshot IDs: only snapshots of this host'
complete -c scrate -n '__scrate_at \'stats\'' -l path -r -F -d 'without snapshot IDs: only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'stats\'' -l tag -x -d 'without snapshot IDs: only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'stats\' 0+' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'tag\'' -l set -x -d 'replace the tags with these comma-separated tags (repeatable; \'\' for none)'
complete -c scrate -n '__scrate_at \'tag\'' -l add -x -d 'add these comma-separated tags (repeatable)'
complete -c scrate -n '__scrate_at \'tag\'' -l remove -x -d 'remove these comma-separated tags (repeatable)'
complete -c scrate -n '__scrate_at \'tag\'' -l host -x -d 'without snapshot IDs: only snapshots of this host'
complete -c scrate -n '__scrate_at \'tag\'' -l path -r -F -d 'without snapshot IDs: only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'tag\'' -l tag -x -d 'without snapshot IDs: only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'tag\' 0+' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'forget\'' -l host -x -d 'only snapshots of this host'
complete -c scrate -n '__scrate_at \'forget\'' -l path -r -F -d 'only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'forget\'' -l tag -x -d 'only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'forget\'' -s l -l keep-last -x -d 'keep the newest n snapshots'
complete -c scrate -n '__scrate_at \'forget\'' -s H -l keep-hourly -x -d 'keep the newest snapshot of each of the newest n hours that have one'
complete -c scrate -n '__scrate_at \'forget\'' -s d -l keep-daily -x -d 'likewise for days'
complete -c scrate -n '__scrate_at \'forget\'' -s w -l keep-weekly -x -d 'likewise for ISO weeks'
complete -c scrate -n '__scrate_at \'forget\'' -s m -l keep-monthly -x -d 'likewise for months'
complete -c scrate -n '__scrate_at \'forget\'' -s y -l keep-yearly -x -d 'likewise for years'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within -x -d 'keep snapshots newer than duration (e.g. 1y5m7d2h) before the newest snapshot'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within-hourly -x -d 'keep the newest snapshot of each hour within duration of the newest snapshot'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within-daily -x -d 'likewise for days'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within-weekly -x -d 'likewise for ISO weeks'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within-monthly -x -d 'likewise for months'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-within-yearly -x -d 'likewise for years'
complete -c scrate -n '__scrate_at \'forget\'' -l keep-tag -x -d 'keep snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'forget\'' -s g -l group-by -x -a 'host paths tags host,paths host,tags paths,tags host,paths,tags' -d 'apply the policy to each group of snapshots with the same host, paths and/or tags, comma-separated (\'\' for one group)'
complete -c scrate -n '__scrate_at \'forget\'' -s n -l dry-run -d 'show what would be removed, remove nothing'
complete -c scrate -n '__scrate_at \'forget\'' -l prune -d 'then give back the space of what no snapshot needs any more (prune, with its defaults)'
complete -c scrate -n '__scrate_at \'forget\' 0+' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'prune\'' -l max-unused -x -d 'unused space tolerated in packs kept as they are: a share of the used space (5%), a size, or "unlimited"'
complete -c scrate -n '__scrate_at \'prune\'' -l max-repack-size -x -d 'repack at most this much data in one run'
complete -c scrate -n '__scrate_at \'prune\'' -l delete-after -x -d 'beside running backups: how long packs found unused stay marked before a later prune deletes them'
complete -c scrate -n '__scrate_at \'prune\'' -s n -l dry-run -d 'only say what would be done'
complete -c scrate -n '__scrate_at \'ls\'' -s l -l long -d 'show mode, owner, size and time'
complete -c scrate -n '__scrate_at \'ls\'' -l host -x -d 'for "latest": only snapshots of this host'
complete -c scrate -n '__scrate_at \'ls\'' -l path -r -F -d 'for "latest": only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'ls\'' -l tag -x -d 'for "latest": only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'ls\' 0' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'restore\'' -s t -l target -r -F -d 'directory to restore into; for a disk image, a block device or a file (required)'
complete -c scrate -n '__scrate_at \'restore\'' -s i -l include -x -d 'restore only paths matching the pattern, and the directories above them (repeatable; see PATTERNS)'
complete -c scrate -n '__scrate_at \'restore\'' -l iinclude -x -d 'as --include, ignoring case (repeatable)'
complete -c scrate -n '__scrate_at \'restore\'' -s e -l exclude -x -d 'leave out paths matching the pattern (repeatable; not with --include)'
complete -c scrate -n '__scrate_at \'restore\'' -l iexclude -x -d 'as --exclude, ignoring case (repeatable)'
complete -c scrate -n '__scrate_at \'restore\'' -l overwrite -d 'replace files that already exist in the target'
complete -c scrate -n '__scrate_at \'restore\'' -l numeric-owner -d 'restore the stored uid/gid, not the user and group names'
complete -c scrate -n '__scrate_at \'restore\'' -l allow-privileged -d 'restore setuid/setgid bits and device nodes of a snapshot written with a write-only key'
complete -c scrate -n '__scrate_at \'restore\'' -l verify -d 'disk images: read the written image back and check it against the snapshot'
complete -c scrate -n '__scrate_at \'restore\'' -l host -x -d 'for "latest": only snapshots of this host'
complete -c scrate -n '__scrate_at \'restore\'' -l path -r -F -d 'for "latest": only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'restore\'' -l tag -x -d 'for "latest": only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'restore\' 0' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'dump\'' -s a -l archive -x -a 'tar zip' -d 'archive format for a directory (default tar), or to put a single file in an archive'
complete -c scrate -n '__scrate_at \'dump\'' -s t -l target -r -F -d 'write to this file instead of standard output'
complete -c scrate -n '__scrate_at \'dump\'' -l allow-privileged -d 'keep setuid/setgid bits and device nodes of a snapshot written with a write-only key'
complete -c scrate -n '__scrate_at \'dump\'' -l host -x -d 'for "latest": only snapshots of this host'
complete -c scrate -n '__scrate_at \'dump\'' -l path -r -F -d 'for "latest": only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'dump\'' -l tag -x -d 'for "latest": only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'dump\' 0' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'mount\'' -l allow-other -d 'let other users than the one mounting in'
complete -c scrate -n '__scrate_at \'diff\'' -l metadata -d 'also show entries whose metadata alone changed (U)'
complete -c scrate -n '__scrate_at \'find\'' -s s -l snapshot -x -d 'search only this snapshot (repeatable)'
complete -c scrate -n '__scrate_at \'find\'' -s O -l oldest -x -d 'only entries modified at or after this local time'
complete -c scrate -n '__scrate_at \'find\'' -s N -l newest -x -d 'only entries modified at or before this local time'
complete -c scrate -n '__scrate_at \'find\'' -s i -l ignore-case -d 'ignore case in patterns'
complete -c scrate -n '__scrate_at \'find\'' -s l -l long -d 'show mode, owner, size and time'
complete -c scrate -n '__scrate_at \'find\'' -s R -l reverse -d 'oldest snapshot first (default: newest first)'
complete -c scrate -n '__scrate_at \'find\'' -l blob -d 'the arguments are data blob IDs'
complete -c scrate -n '__scrate_at \'find\'' -l tree -d 'the arguments are tree IDs'
complete -c scrate -n '__scrate_at \'find\'' -l pack -d 'the arguments are pack IDs: find the blobs in them'
complete -c scrate -n '__scrate_at \'find\'' -l host -x -d 'only snapshots of this host'
complete -c scrate -n '__scrate_at \'find\'' -l path -r -F -d 'only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'find\'' -l tag -x -d 'only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'check\'' -l read-data -d 'also download every pack and verify every blob in it'
complete -c scrate -n '__scrate_at \'check\'' -l read-data-subset -x -d 'read only some packs: "n/t" (group n of t, by pack ID: t runs read every pack once), "x%" or a size such as 500M (packs at random)'
complete -c scrate -n '__scrate_at \'check\'' -l compare -x -a '(__fish_complete_directories (commandline -ct))' -d 'also compare this repository\'s snapshots with their sources in another (copy --from-repo): the same snapshots, trees and, with --read-data, file contents'
complete -c scrate -n '__scrate_at \'check\'' -l from-option -x -d 'backend option of --compare, as -o (repeatable)'
complete -c scrate -n '__scrate_at \'check\'' -l from-password-file -r -F -d 'read the password of --compare from a file'
complete -c scrate -n '__scrate_at \'check\'' -l from-password-command -x -d 'run a shell command that prints the password of --compare'
complete -c scrate -n '__scrate_at \'check\'' -l from-insecure-no-password -d '--compare has an empty password: none is asked for'
complete -c scrate -n '__scrate_at \'copy\'' -l host -x -d 'only snapshots of this host'
complete -c scrate -n '__scrate_at \'copy\'' -l path -r -F -d 'only snapshots of this path (repeatable)'
complete -c scrate -n '__scrate_at \'copy\'' -l tag -x -d 'only snapshots with all of these comma-separated tags (repeatable: any of the lists)'
complete -c scrate -n '__scrate_at \'copy\'' -l from-repo -x -a '(__fish_complete_directories (commandline -ct))' -d 'the repository to copy snapshots from, as -r/--repo'
complete -c scrate -n '__scrate_at \'copy\'' -l from-option -x -d 'backend option of --from-repo, as -o (repeatable)'
complete -c scrate -n '__scrate_at \'copy\'' -l from-password-file -r -F -d 'read the password of --from-repo from a file'
complete -c scrate -n '__scrate_at \'copy\'' -l from-password-command -x -d 'run a shell command that prints the password of --from-repo'
complete -c scrate -n '__scrate_at \'copy\'' -l from-insecure-no-password -d '--from-repo has an empty password: none is asked for'
complete -c scrate -n '__scrate_at \'copy\' 0+' -x -a '(__scrate_snapshot_ids)'
complete -c scrate -n '__scrate_at \'repair\' 0' -a 'index' -d 'rebuild the index from the packs: each read whole and verified, packs that fail are left out and named'
complete -c scrate -n '__scrate_at \'repair\' 0' -a 'packs' -d 'store again what can be read of damaged or missing packs, then drop them from the index and the repository'
complete -c scrate -n '__scrate_at \'repair\' 0' -a 'snapshots' -d 'write each snapshot that lost something again without it (a file that lost any blob is left out, a directory that does not load becomes empty), tagged "repaired"'
complete -c scrate -n '__scrate_at \'repair snapshots\'' -l forget -d 'remove the damaged snapshots once their repaired ones are stored'
complete -c scrate -n '__scrate_at \'repair snapshots\'' -s n -l dry-run -d 'only say what would be done'
complete -c scrate -n '__scrate_at \'key\' 0' -a 'list' -d 'list key files'
complete -c scrate -n '__scrate_at \'key\' 0' -a 'add' -d 'add a key file with a new password; the existing ones keep working'
complete -c scrate -n '__scrate_at \'key\' 0' -a 'remove' -d 'remove a key file (never the one in use, never the last full key); removing a write-only key revokes its writer'
complete -c scrate -n '__scrate_at \'key\' 0' -a 'passwd' -d 'change the password of the key in use (a full key)'
complete -c scrate -n '__scrate_at \'key add\'' -l new-password-file -r -F -d 'read the new password from a file'
complete -c scrate -n '__scrate_at \'key add\'' -l write-only -d 'a key for one backup host: it can add backups but never read any, nor learn what other hosts store'
complete -c scrate -n '__scrate_at \'key add\'' -l host -x -d 'with --write-only: the host the key is for (shown with its snapshots)'
complete -c scrate -n '__scrate_at \'key add\'' -l share-full-keys -d 'with --write-only: name and cut blobs as full keys do, so the host can copy its own snapshots in from a repository made with init --from-repo --copy-chunker-params (see SECURITY.md)'
complete -c scrate -n '__scrate_at \'key passwd\'' -l new-password-file -r -F -d 'read the new password from a file'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'create' -d 'create a volume of a fixed size; nothing is stored for its blocks until they are written (commit 0 is its empty state)'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'list' -d 'list volumes: size, block size, bytes allocated, last commit and who serves each'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'serve' -d 'serve a volume as an NBD export (nbdfuse, qemu, nbdcopy) in the foreground until stopped; writes are cached locally and uploaded behind'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'mount' -d 'show a volume as one regular file of its size in DIR (FUSE), in the foreground until unmounted: loop-mount any filesystem on it'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'commit' -d 'commit the volume as it is now: a snapshot (restore, mount, copy and forget work on it). Asks the serve on this host, if any'
complete -c scrate -n '__scrate_at \'volume\' 0' -a 'rm' -d 'remove a volume: its records (its head); its commits stay unless --forget-commits. A prune then gives back the space'
complete -c scrate -n '__scrate_at \'volume create\'' -l size -x -d 'the volume\'s size: bytes or with a K/M/G/T suffix, a multiple of 512'
complete -c scrate -n '__scrate_at \'volume create\'' -l block-size -x -d 'the unit stored and deduplicated: a power of two from 4K to 1M'
complete -c scrate -n '__scrate_at \'volume serve\'' -l socket -r -F -d 'listen on this unix socket (mode 0600)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l listen -x -d 'listen on this TCP address (loopback only: NBD has no encryption here)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l read-only -d 'serve without writing: the head, or with --at a commit (no cache, no volume lock)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l at -x -d 'serve this commit of the volume (needs --read-only)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l commit-every -x -d 'commit on this period when something was written (e.g. 15m, 1h)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l cache-size -x -d 'the write-back cache\'s limit: writes wait for uploads above 90 % of it'
complete -c scrate -n '__scrate_at \'volume serve\'' -l cache-dir -r -F -d 'where the write-back cache is kept (default: below the cache directory; needed with --no-cache)'
complete -c scrate -n '__scrate_at \'volume serve\'' -l write-delay -x -d 'upload a block once it was not written for this long'
complete -c scrate -n '__scrate_at \'volume serve\'' -l discard-cache -d 'drop writes an earlier serve left in this host\'s cache instead of replaying them (they are lost)'
complete -c scrate -n '__scrate_at \'volume mount\'' -l allow-other -d 'let other users than the one mounting in'
complete -c scrate -n '__scrate_at \'volume mount\'' -l read-only -d 'serve without writing: the head, or with --at a commit (no cache, no volume lock)'
complete -c scrate -n '__scrate_at \'volume mount\'' -l at -x -d 'serve this commit of the volume (needs --read-only)'
complete -c scrate -n '__scrate_at \'volume mount\'' -l commit-every -x -d 'commit on this period when something was written (e.g. 15m, 1h)'
complete -c scrate -n '__scrate_at \'volume mount\'' -l cache-size -x -d 'the write-back cache\'s limit: writes wait for uploads above 90 % of it'
complete -c scrate -n '__scrate_at \'volume mount\'' -l cache-dir -r -F -d 'where the write-back cache is kept (default: below the cache directory; needed with --no-cache)'
complete -c scrate -n '__scrate_at \'volume mount\'' -l write-delay -x -d 'upload a block once it was not written for this long'
complete -c scrate -n '__scrate_at \'volume mount\'' -l discard-cache -d 'drop writes an earlier serve left in this host\'s cache instead of replaying them (they are lost)'
complete -c scrate -n '__scrate_at \'volume commit\'' -l tag -x -d 'tag the commit with these comma-separated tags (repeatable)'
complete -c scrate -n '__scrate_at \'volume commit\'' -l cache-dir -r -F -d 'where the write-back cache is kept (as given to serve)'
complete -c scrate -n '__scrate_at \'volume rm\'' -l forget-commits -d 'also remove the volume\'s commits (its snapshots)'
complete -c scrate -n '__scrate_at \'cat\' 0' -x -a 'config keys writers snapshot index pack tree'
complete -c scrate -n '__scrate_at \'unlock\'' -l remove-all -d 'remove every lock, even those of running processes'
complete -c scrate -n '__scrate_at \'completion\' 0' -x -a 'bash zsh fish'
