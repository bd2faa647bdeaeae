import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../archiver/archiver.js';
import { ExitCode, ScrateError } from '../errors.js';
import { displayName } from '../tree/node.js';
import { backupCommand } from './commands/backup.js';
import { catCommand } from './commands/cat.js';
import { checkCommand } from './commands/check.js';
import { completionCommand } from './commands/completion.js';
import { copyCommand } from './commands/copy.js';
import { diffCommand } from './commands/diff.js';
import { dumpCommand } from './commands/dump.js';
import { findCommand } from './commands/find.js';
import { forgetCommand } from './commands/forget.js';
import { helpCommand } from './commands/help.js';
import { initCommand } from './commands/init.js';
import { keyCommand } from './commands/key.js';
import { lsCommand } from './commands/ls.js';
import { mountCommand } from './commands/mount.js';
import { pruneCommand } from './commands/prune.js';
import { repairCommand } from './commands/repair.js';
import { restoreCommand } from './commands/restore.js';
import { snapshotsCommand } from './commands/snapshots.js';
import { statsCommand } from './commands/stats.js';
import { tagCommand } from './commands/tag.js';
import { unlockCommand } from './commands/unlock.js';
import { versionCommand } from './commands/version.js';
import { volumeCommand } from './commands/volume.js';
import type { Context, GlobalOptions } from './context.js';
import { collect } from './parse.js';
import { writeExitError } from './json/messages.js';
import { interruption, reportInterruption, showTraces } from './lifecycle.js';
import { Output } from './output.js';

function makeContext(cmd: Command): Context {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  return { globals, out: new Output(!!globals.json, !!globals.quiet, globals.verbose), signal: interruption.signal };
}

export function buildProgram(): Command {
  const program = new Command('scrate')
    .description('encrypted, deduplicating, versioned backups')
    .version(VERSION)
    .addOption(new Option('-r, --repo <location>', 'repository: a directory, or s3:https://host/bucket/prefix, or s3:bucket/prefix (backup takes several: repeatable)').env('SCRATE_REPOSITORY').argParser(collect))
    .option('-o, --option <key=value>', 'backend option, e.g. s3.region=eu-west-1, s3.connections=16 (repeatable)', collect, [])
    .option('--no-cache', 'do not use the local metadata cache')
    .addOption(new Option('-p, --password-file <file>', 'read the password from a file (with several -r: one each, in order, or one for all)').env('SCRATE_PASSWORD_FILE').argParser(collect))
    .addOption(new Option('--password-command <command>', 'run a shell command that prints the password (with several -r: one each, in order, or one for all)').env('SCRATE_PASSWORD_COMMAND').argParser(collect))
    .option('--insecure-no-password', 'the repository has an empty password: none is asked for (insecure; an empty password is refused otherwise)')
    .option('--json', 'machine-readable output')
    .option('-q, --quiet', 'print only errors')
    .option('-v, --verbose', 'print more detail; -vv: also every file a backup looks at, as new, modified or unchanged', (_: string, level: number) => level + 1, 0)
    .option('--debug', 'show stack traces of internal errors')
    .showHelpAfterError()
    .exitOverride();
  for (const make of [initCommand, backupCommand, snapshotsCommand, statsCommand, tagCommand, forgetCommand, pruneCommand, lsCommand, restoreCommand, dumpCommand, mountCommand, diffCommand, findCommand, checkCommand, copyCommand, repairCommand, keyCommand, volumeCommand, catCommand, unlockCommand, versionCommand, completionCommand, helpCommand]) {
    program.addCommand(make(makeContext).exitOverride());
  }
  return program;
}

function report(err: unknown, debug: boolean, json: boolean): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.ok : ExitCode.fatal;
  // Messages name paths, from the command line, the filesystem or a repository: one that
  // includes a control character is shown quoted, as a name would be, not let loose on the terminal.
  if (err instanceof ScrateError) {
    writeExitError(json, err.exitCode, `${displayName(err.message)}${err.hint ? ` (${err.hint})` : ''}`);
    if (debug) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException;
  writeExitError(json, ExitCode.fatal, `${displayName(e?.message ?? String(err))}${debug ? '' : ' (run with --debug for details)'}`);
  if (debug) process.stderr.write(`${e?.stack}\n`);
  return ExitCode.fatal;
}

/**
 * Runs the command of `argv` and gives its exit code; bin/scrate installs the handlers of
 * lifecycle.ts first and exits through exitWhenFlushed.
 */
export async function main(argv: string[]): Promise<number> {
  // scrate pins an AWS SDK release that supports this Node; the SDK's notice about its future
  // releases is for scrate's developers (package.json), not for the mail of every cron job.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  const debug = argv.includes('--debug');
  showTraces(debug);
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    const json = argv.includes('--json');
    // Whatever a command fails with once interrupted is the interruption's echo (the abort
    // itself, or what it cut short): the interruption is what is said.
    if (interruption.signal.aborted) {
      if (debug) report(err, debug, json);
      return reportInterruption(json);
    }
    return report(err, debug, json);
  }
}
