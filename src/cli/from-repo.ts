import { Option, type Command } from 'commander';
import type { ScrateError } from '../errors.js';
import { Lock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { openRepository, type Context, type RepositoryAccess } from './context.js';
import { collect } from './parse.js';
import type { PasswordNames } from './password.js';

/**
 * A second repository, the one a command takes from (restic's "secondary repository"): its
 * location, backend options and password, each with options and variables of its own, so that
 * the two passwords never mix. init --copy-chunker-params and copy use it.
 */
export interface FromRepoOptions {
  fromRepo?: string;
  fromOption: string[];
  fromPasswordFile?: string;
  fromPasswordCommand?: string;
  fromInsecureNoPassword?: boolean;
}

const FROM_PASSWORD: PasswordNames = {
  file: '--from-password-file',
  command: '--from-password-command',
  insecure: '--from-insecure-no-password',
  variable: 'SCRATE_FROM_PASSWORD',
  fromEnv: () => process.env['SCRATE_FROM_PASSWORD'],
};

/** Adds --from-repo and its options to `cmd`; `role` says what the command takes from it. */
export function addFromRepoOptions(cmd: Command, role: string): Command {
  return addFromAccessOptions(cmd.addOption(new Option('--from-repo <location>', `the repository to ${role}, as -r/--repo`).env('SCRATE_FROM_REPOSITORY')));
}

/** The options of the second repository but its location, for a command that takes that as another option's value. */
export function addFromAccessOptions(cmd: Command, of = '--from-repo'): Command {
  return cmd
    .option('--from-option <key=value>', `backend option of ${of}, as -o (repeatable)`, collect, [])
    .addOption(new Option('--from-password-file <file>', `read the password of ${of} from a file`).env('SCRATE_FROM_PASSWORD_FILE'))
    .addOption(new Option('--from-password-command <command>', `run a shell command that prints the password of ${of}`).env('SCRATE_FROM_PASSWORD_COMMAND'))
    .option('--from-insecure-no-password', `${of} has an empty password: none is asked for`);
}

export function fromRepository(o: FromRepoOptions): RepositoryAccess {
  return {
    location: o.fromRepo,
    options: o.fromOption,
    password: { passwordFile: o.fromPasswordFile, passwordCommand: o.fromPasswordCommand, insecureNoPassword: o.fromInsecureNoPassword },
    names: FROM_PASSWORD,
    locationHint: 'use --from-repo or set SCRATE_FROM_REPOSITORY',
  };
}

/** Opens the --from-repo repository, neither locked nor indexed. */
export function openFromRepository(ctx: Context, o: FromRepoOptions, opts: { reads?: boolean } = {}): Promise<Repository> {
  return openRepository(ctx, fromRepository(o), opts);
}

/**
 * Opens the --from-repo repository to read from it: a full key, a shared lock (taken before the
 * target's, released after it), the index loaded (unless `index: false`: the command loads it when it needs it). `signal` is also aborted if the lock is lost.
 */
export async function withFromRepository<T>(ctx: Context, o: FromRepoOptions, fn: (repo: Repository, signal: AbortSignal) => Promise<T>, opts: { index?: boolean } = {}): Promise<T> {
  const repo = await openFromRepository(ctx, o);
  const lost = new AbortController();
  const lock = await Lock.acquire(repo, false, (err: ScrateError) => lost.abort(err));
  try {
    if (opts.index !== false) await repo.loadIndex((m) => ctx.out.warn(m));
    return await fn(repo, AbortSignal.any([ctx.signal, lost.signal]));
  } finally {
    await lock.release();
  }
}
