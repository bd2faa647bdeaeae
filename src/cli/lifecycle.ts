import { describeError, ExitCode, ScrateError } from '../errors.js';
import { writeExitError } from './json/messages.js';
import { flushGathered } from './stdout.js';

/**
 * How the process starts and ends: signals, standard output's failures, and an exit that
 * comes only after everything written has left. Loaded by bin/scrate before the rest of the
 * program (which takes a few tenths of a second to load), so that a signal is never met by
 * Node's default of dying without a word.
 */

/** Aborted by the first SIGINT or SIGTERM (its reason says which), or when standard output fails. */
export const interruption = new AbortController();

const SIGNAL_EXIT: Record<string, ExitCode> = { SIGINT: ExitCode.interrupted, SIGTERM: ExitCode.terminated };
const SIGNAL_WORDS: Record<string, string> = { SIGINT: 'interrupted (SIGINT)', SIGTERM: 'terminated (SIGTERM)' };

/** How long output may take to leave after a signal stopped the command. */
const SIGNAL_FLUSH_MS = 1000;
/** The signal received, if any: a second one ends the process at once. */
let received: NodeJS.Signals | undefined;

/** Why standard output failed, if it did; EPIPE (the reader went away) is said in no words. */
let stdoutFailure: NodeJS.ErrnoException | undefined;

/** Whether the command asked for a stack trace of internal errors (set once arguments are known). */
let debugTraces = false;

export function showTraces(on: boolean): void {
  debugTraces = on;
}

/**
 * The first SIGINT or SIGTERM asks the command to stop (uploads abandoned, lock removed); a
 * second one ends the process at once, as the user asked twice.
 */
export function installHandlers(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (received) {
        restoreTerminal();
        process.stderr.write(`\nscrate: ${SIGNAL_WORDS[sig]} again: stopped at once (a lock left behind goes with \`scrate unlock\`)\n`);
        process.exit(SIGNAL_EXIT[sig]);
      }
      received = sig;
      interruption.abort(new ScrateError(SIGNAL_WORDS[sig]!, SIGNAL_EXIT[sig]));
    });
  }
  // Node gives stdout's write errors to this listener; without one they are thrown from nowhere.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (stdoutFailure) return;
    stdoutFailure = err;
    interruption.abort(new ScrateError(`cannot write to standard output: ${describeError(err)}`, err.code === 'EPIPE' ? ExitCode.outputClosed : ExitCode.fatal));
  });
  // A rejection or exception nothing handles is a bug; it still gets one line, not Node's dump.
  const crash = (err: unknown) => {
    restoreTerminal();
    process.stderr.write(`scrate: internal error: ${(err as Error)?.message ?? String(err)}${debugTraces ? `\n${(err as Error)?.stack}` : ' (run with --debug for details)'}\n`);
    process.exit(ExitCode.fatal);
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

/** What a terminal may have been left in: raw mode (a password prompt) and a partial status line. */
function restoreTerminal(): void {
  if (process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
}

/**
 * A command that failed once the process was interrupted was stopped by it: says what stopped
 * it, in one line, and gives its exit code.
 * A command that completed all the same (the signal came as it saved its result) exits as it
 * did: its result stands.
 */
export function reportInterruption(json: boolean): number {
  const reason = interruption.signal.reason as ScrateError;
  if (reason.exitCode !== ExitCode.outputClosed) writeExitError(json, reason.exitCode, reason.message);
  return reason.exitCode;
}

/**
 * Ends the process once standard output has taken everything written to it: process.exit()
 * alone drops what a pipe has not yet accepted (a pipe takes 64 KiB at a time). A write that
 * fails instead (the reader went away) ends it with the code that says so.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  restoreTerminal();
  flushGathered();
  const drained = Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  // Stopped by a signal, the output is cut short anyway: a reader that stopped reading must not
  // keep the process from ending (a service manager would escalate to SIGKILL, lock left behind).
  await (received ? Promise.race([drained, new Promise((resolve) => setTimeout(resolve, SIGNAL_FLUSH_MS))]) : drained);
  let exitCode = code;
  if (stdoutFailure) {
    exitCode = stdoutFailure.code === 'EPIPE' ? ExitCode.outputClosed : ExitCode.fatal;
    if (exitCode === ExitCode.fatal && code !== ExitCode.fatal) process.stderr.write(`scrate: cannot write to standard output: ${describeError(stdoutFailure)}\n`);
  }
  process.exit(exitCode);
}

/** Settles once everything written to `stream` before has left (or failed to). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve();
  return new Promise((resolve) => stream.write('', () => resolve()));
}
