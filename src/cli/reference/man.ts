import { VERSION } from '../../archiver/archiver.js';
import { ExitCode } from '../../errors.js';
import { PATTERN_SYNTAX } from '../../filter/syntax.js';
import type { ArgumentSpec, CommandSpec, OptionSpec } from './model.js';

/** Text as roff shows it: backslashes, a leading dot or quote, and minus signs (not hyphens) escaped. */
export function roff(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');
}

/** Paragraphs separated by blank lines; a paragraph of indented lines is shown as written (commands). */
export function paragraphs(text: string): string[] {
  return text.split(/\n\s*\n/).flatMap((block) => {
    const lines = block.split('\n');
    if (lines.every((l) => /^\s/.test(l))) return ['.PP', '.RS', '.nf', ...lines.map((l) => roff(l.trim())), '.fi', '.RE'];
    return ['.PP', roff(lines.join(' '))];
  });
}

function optionLines(options: readonly OptionSpec[]): string[] {
  return options.flatMap((o) => ['.TP', `.B ${roff(o.flags)}`, roff(o.description + (o.envVar ? ` (environment: ${o.envVar})` : ''))]);
}

function argumentLines(args: readonly ArgumentSpec[]): string[] {
  return args.flatMap((a) => ['.TP', `.I ${roff(a.name)}`, roff(a.description + (a.completion.kind === 'words' ? ` (one of: ${a.completion.words.join(', ')})` : ''))]);
}

function commandSection(cmd: CommandSpec): string[] {
  const args = cmd.arguments.map((a) => (a.required ? `<${a.name}>` : `[${a.name}]`) + (a.variadic ? '...' : '')).join(' ');
  const lines = ['.SS', `.B ${roff(['scrate', ...cmd.path].join(' ') + (args ? ` ${args}` : ''))}`, roff(cmd.description), ...argumentLines(cmd.arguments), ...optionLines(cmd.options)];
  return [...lines, ...cmd.subcommands.flatMap(commandSection)];
}

/** Each exit code's meaning; a code added to ExitCode does not compile until it is described here. */
const EXIT_STATUS: Record<keyof typeof ExitCode, string> = {
  ok: 'success',
  fatal: 'a fatal error, or a usage error',
  partial: 'partly done: the snapshot was written but some sources could not be read (each is named on stderr); or a restore restored everything but some damaged files',
  noRepository: 'the repository does not exist',
  locked: 'the repository is locked by another process',
  wrongPassword: 'wrong password, or no key matches it',
  interrupted: 'interrupted (SIGINT or Ctrl-C): nothing half-written is left behind, the lock is removed; a second signal exits at once',
  outputClosed: 'standard output was closed by its reader (`scrate ls latest | head`): quiet, as other programs in a pipe',
  terminated: 'stopped by SIGTERM (systemctl stop, a timeout): as SIGINT',
};

/** The man page's summary of docs/JSON.md: every message, by command. */
const JSON_OUTPUT = `With --json, commands print one JSON object a line, in the shapes and with the field names of restic's (snake_case; times in RFC 3339 with the local offset). Every message names itself in message_type. docs/JSON.md in the scrate source gives every field with its meaning.

Every command that fails prints exit_error on stderr: code (the exit status) and message.

backup prints on stdout status lines while it runs (seconds_elapsed, seconds_remaining, percent_done, total_files, files_done, total_bytes, bytes_done, error_count, current_files; SCRATE_PROGRESS_FPS sets how often), verbose_status lines with -v (action new, modified or unchanged, item, duration, data_size), and last one summary: files_new, files_changed, files_unmodified, dirs_new, dirs_changed, dirs_unmodified, data_blobs, tree_blobs, data_added, data_added_packed, total_files_processed, total_bytes_processed, total_duration, snapshot_id (8 hex digits), dry_run, and scrate's own bytes_read, error_count, full_snapshot_id, parent, backup_start, backup_end. A file it could not read is an error line on stderr: error.message, during, item.

ls prints a line for the snapshot (struct_type snapshot) and then one per entry (struct_type node: name, type, path, uid, gid, size, mode, permissions, mtime, ctime, and the like). snapshots prints an array of snapshots (id, short_id, time, tree, paths, hostname, username, uid, gid, tags, program_version, summary, writer); forget an array of groups (tags, host, paths, keep, remove, reasons). restore prints status lines and a summary (total_files, files_restored, total_bytes, bytes_restored, seconds_elapsed, dirs_restored, others_restored, error_count); check one summary (num_errors, broken_packs, suggest_repair_index, suggest_prune, and errors, each with the files it costs). stats prints restic's one object (total_size, total_file_count, total_blob_count, snapshots_count, and with --mode raw-data total_uncompressed_size, compression_ratio, compression_progress, compression_space_saving); tag a changed line per snapshot written again (old_snapshot_id, new_snapshot_id) and a summary (changed_snapshots); snapshots --group-by an array of groups (group_key with hostname, paths, tags; snapshots). diff prints a change line per changed path (path, modifier) and one statistics message (changed_files, added and removed: files, dirs, others, data_blobs, tree_blobs, bytes); find an array of groups, one a snapshot (matches: path, type, size, mode, mtime and the like; hits; snapshot), with --blob, --tree or --pack an array of the objects found. init, key, prune, repair, unlock and version print one object each.`;

/** [variable, meaning]: every variable scrate reads (a test checks the sources name no other). */
const ENVIRONMENT: [string, string][] = [
  ['SCRATE_REPOSITORY', 'the repository, as -r/--repo.'],
  ['SCRATE_PASSWORD', 'the password itself (--password-file and --password-command take precedence).'],
  ['SCRATE_PASSWORD_FILE', 'as --password-file.'],
  ['SCRATE_PASSWORD_COMMAND', 'as --password-command.'],
  ['SCRATE_FROM_REPOSITORY', 'the repository of --from-repo (init --copy-chunker-params).'],
  ['SCRATE_FROM_PASSWORD', 'the password of --from-repo itself (--from-password-file and --from-password-command take precedence); never SCRATE_PASSWORD.'],
  ['SCRATE_FROM_PASSWORD_FILE', 'as --from-password-file.'],
  ['SCRATE_FROM_PASSWORD_COMMAND', 'as --from-password-command.'],
  ['SCRATE_S3_REGION, SCRATE_S3_PATH_STYLE, SCRATE_S3_CONNECTIONS, SCRATE_S3_STORAGE_CLASS, SCRATE_S3_CA_BUNDLE', 'defaults of the backend options s3.region, s3.path-style, s3.connections, s3.storage-class and s3.ca-bundle (-o overrides them).'],
  ['AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE, AWS_REGION', 'S3 credentials and region, read by the AWS SDK with the rest of its default chain (~/.aws/credentials, instance roles).'],
  ['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED', 'set to true by scrate unless set: the SDK\'s notice about Node versions is for scrate\'s developers.'],
  ['XDG_CACHE_HOME', 'where the cache is kept (default ~/.cache).'],
  ['HOME', 'the default cache location (~/.cache).'],
  ['TZ', 'the time zone of times shown and of backup --time, and of the calendar of forget\'s --keep-daily and the like.'],
  ['SCRATE_KDF_MS', 'for test suites only: the time init spends deriving a key from the password (default 500 ms). Lower values make passwords cheaper to guess.'],
  ['SCRATE_PROGRESS_FPS', 'how many status lines a second --json prints while a command runs (default 1), as restic\'s RESTIC_PROGRESS_FPS.'],
  ['SCRATE_TEST_LOCK_REFRESH_MS', 'for test suites only: how often a command rewrites its lock (default 5 minutes); it gives up after four times as long without a successful rewrite.'],
  ['SCRATE_TEST_VOLUME_CHECKPOINT_MS', 'for test suites only: how often `volume serve` and `volume mount` record a head of what they uploaded (default 1 minute).'],
];

const FILES: [string, string][] = [
  ['$XDG_CACHE_HOME/scrate/<repository id>/', 'cache of snapshots, index files and tree packs of remote repositories; verified before use, safe to delete (--no-cache bypasses it). Caches unused for 30 days are removed.'],
  ['$XDG_CACHE_HOME/scrate/<repository id>/writer-<id>/', 'what a write-only key sent (its incremental backups work from it); losing it costs one full upload.'],
  ['$XDG_CACHE_HOME/scrate/pins/', 'the ID of the repository at each location and the key that opened it last.'],
  ['/usr/share/bash-completion/completions/scrate', 'bash completion (completions/scrate.bash, or `scrate completion bash`); for one user: ~/.local/share/bash-completion/completions/scrate.'],
  ['/usr/local/share/zsh/site-functions/_scrate', 'zsh completion (completions/_scrate, or `scrate completion zsh`): any directory of $fpath, before compinit runs.'],
  ['~/.config/fish/completions/scrate.fish', 'fish completion (completions/scrate.fish, or `scrate completion fish`); for every user: /usr/share/fish/vendor_completions.d/scrate.fish.'],
];

const EXAMPLES = `A repository and a first backup, the password in a file that only its owner reads:

  export SCRATE_REPOSITORY=/srv/backup SCRATE_PASSWORD_FILE=~/.config/scrate/pass
  scrate init
  scrate backup ~ --exclude-file ~/.config/scrate/excludes --tag home

Restore one file, a directory, everything:

  scrate restore latest:/home/me/notes.txt --target /tmp/r
  scrate restore latest --target /tmp/r --include /home/me/src
  scrate restore 1a2b3c4d --target /srv/restore

Restore a whole disk to a device, checking what was written (the device must be at least as large as the image):

  scrate backup /dev/sdb
  scrate restore latest --target /dev/sdc --verify

Keep 7 daily, 5 weekly and 12 monthly snapshots, then give back the space of the others:

  scrate forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --prune

A backup host that may add backups but never read any:

  scrate key add --write-only --host web1 --new-password-file web1.pass

A nightly cron job (crontab -e): exit 3 means a snapshot was written but some files could not be read:

  30 2 * * * scrate -r /srv/backup -p /root/.scrate-pass backup -q /etc /home || echo "scrate backup exited $?"

docs/AUTOMATION.md in the scrate source has a systemd service and timer and more recipes.`;

function definitions(entries: [string, string][], italic = false): string[] {
  return entries.flatMap(([term, meaning]) => ['.TP', `${italic ? '.I' : '.B'} ${roff(term)}`, roff(meaning)]);
}

export function manPage(program: CommandSpec): string {
  return [
    `.TH SCRATE 1 "" "scrate ${VERSION}" "User Commands"`,
    '.SH NAME',
    'scrate \\- encrypted, deduplicating, versioned backups',
    '.SH SYNOPSIS',
    '.B scrate',
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    roff(
      'scrate cuts files, trees and block devices into content-defined chunks, stores each chunk once (named by a keyed hash), ' +
        'compressed and encrypted, in a repository on a local disk or an S3-compatible object store. Every backup is an immutable snapshot.',
    ),
    '.PP',
    roff('A snapshot is named by its ID, any unique prefix of it, or "latest". Global options may follow the command.'),
    '.SH GLOBAL OPTIONS',
    ...optionLines(program.options),
    '.SH COMMANDS',
    ...program.subcommands.flatMap(commandSection),
    '.SH PATTERNS',
    ...paragraphs(PATTERN_SYNTAX),
    '.SH JSON OUTPUT',
    ...paragraphs(JSON_OUTPUT),
    '.SH ENVIRONMENT',
    ...definitions(ENVIRONMENT),
    '.SH FILES',
    ...definitions(FILES, true),
    '.SH EXIT STATUS',
    ...definitions(Object.entries(EXIT_STATUS).map(([name, meaning]) => [String(ExitCode[name as keyof typeof ExitCode]), meaning])),
    '.SH EXAMPLES',
    ...paragraphs(EXAMPLES),
    '.SH SEE ALSO',
    roff('restic(1); docs/AUTOMATION.md, docs/JSON.md, docs/DESIGN.md, docs/FORMAT.md and docs/SECURITY.md in the scrate source.'),
    '',
  ].join('\n');
}

/** The variables the ENVIRONMENT section names, one by one. */
export const DOCUMENTED_VARIABLES = ENVIRONMENT.flatMap(([names]) => names.split(', '));
