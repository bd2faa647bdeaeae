import { once } from 'node:events';
import { checkAborted } from '../errors.js';

/**
 * Standard output of what a command prints without bound (ls, diff, find: millions of lines).
 * Text is gathered into writes of about 64 KiB, as a write a line cost more than producing the
 * lines; and the command waits for a slow reader (caughtUp), as a pipe queues in memory what its
 * reader has not taken: a find into a pager that was not read held 640 MB.
 *
 * What is gathered leaves once there is enough, when the program next waits for anything (a
 * slow listing still shows as it goes), and before anything else is written (flushGathered),
 * so that all output keeps its order.
 */

const GATHER = 64 * 1024;

let gathered = '';
let scheduled = false;

export function gather(text: string): void {
  gathered += text;
  if (gathered.length >= GATHER) flushGathered();
  else if (!scheduled) {
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushGathered();
    });
  }
}

/** Writes what is gathered now: before other output, and before the process exits. */
export function flushGathered(): void {
  if (!gathered) return;
  const text = gathered;
  gathered = '';
  process.stdout.write(text);
}

/**
 * Undefined while the reader keeps up; else a promise that settles once it has taken what is
 * queued. Both throw (reject) with `signal`'s reason once it is aborted: a reader gone away
 * (EPIPE) aborts the process' signal, and never takes anything again.
 */
export function caughtUp(signal: AbortSignal): Promise<void> | undefined {
  checkAborted(signal);
  if (!process.stdout.writableNeedDrain) return undefined;
  return once(process.stdout, 'drain', { signal }).then(
    () => undefined,
    (err: unknown) => {
      checkAborted(signal);
      throw err;
    },
  );
}
