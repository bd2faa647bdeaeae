import { flushGathered } from '../stdout.js';

/**
 * How a command that fails says so: one line on stderr, under --json restic's `exit_error`
 * message (which restic prints for every nonzero exit, a backup's exit 3 included).
 */
export function writeExitError(json: boolean, code: number, message: string): void {
  // After what the command printed before it failed, on a terminal too.
  flushGathered();
  process.stderr.write(json ? `${JSON.stringify({ message_type: 'exit_error', code, message })}\n` : `scrate: ${message}\n`);
}

/** restic's `error` message: a file or directory that could not be backed up or restored (printed on stderr). */
export function errorMessage(item: string, message: string, during: 'archival' | 'restore'): object {
  return { message_type: 'error', error: { message }, during, item };
}
