import { getSystemErrorMap } from 'node:util';

/** Process exit codes; scripts depend on them, so they never change meaning. */
export const ExitCode = {
  ok: 0,
  fatal: 1,
  partial: 3,
  noRepository: 10,
  locked: 11,
  wrongPassword: 12,
  /** SIGINT (Ctrl-C). */
  interrupted: 130,
  /** Standard output was closed by its reader (`scrate ls … | head`): 128 + SIGPIPE, as a shell shows a program that died of it. */
  outputClosed: 141,
  /** SIGTERM (systemd stop, kill). */
  terminated: 143,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error meant for the user: one line, optionally a hint, and the exit code it maps to.
 * Anything else that reaches the CLI is a bug and is reported as such.
 */
export class ScrateError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.fatal,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ScrateError';
  }
}

/** Stored data failed verification: a flipped bit, a truncated object, a wrong key. */
export class IntegrityError extends ScrateError {
  constructor(what: string, detail: string) {
    super(`${what}: ${detail}`, ExitCode.fatal, 'the repository may be damaged; run `scrate check`');
    this.name = 'IntegrityError';
  }
}

/**
 * Stored data that is intact but not accepted: signed by an unknown or revoked writer, a bad
 * signature, claims its writer may not make. Not damage: a prune may go on past it (what it
 * refers to is nobody's), where damage stops it.
 */
export class RefusedError extends IntegrityError {
  constructor(what: string, detail: string) {
    super(what, detail);
    this.name = 'RefusedError';
  }
}

/** Errno names by their words, as libuv says them ('permission denied' for EACCES). */
const ERRNO_WORDS = new Map([
  ...getSystemErrorMap().values(),
  // Name resolution's codes (c-ares'), which are not errno values.
  ['ENOTFOUND', 'host name not found'],
  ['EAI_AGAIN', 'host name lookup failed for now'],
]);

/**
 * What a failed system call means, in words: the errno name itself tells a user nothing. An
 * error without one is given by its message.
 */
export function describeError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code !== undefined) return errnoWords(code);
  return err instanceof Error ? err.message : String(err);
}

export function errnoWords(code: string): string {
  return ERRNO_WORDS.get(code) ?? code;
}

/** Why a command was stopped: the signal's own reason (a lost lock, say), or an interruption. */
export function abortReason(signal: AbortSignal): ScrateError {
  return signal.reason instanceof ScrateError ? signal.reason : new ScrateError('interrupted', ExitCode.interrupted);
}

/** Throws abortReason once `signal` is aborted. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}
