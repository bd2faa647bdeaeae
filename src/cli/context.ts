import type { Backend } from '../backend/backend.js';
import { defaultCacheRoot } from '../backend/cache.js';
import { LocalBackend } from '../backend/local.js';
import { openBackend, parseBackendOptions } from '../backend/open.js';
import { ExitCode, ScrateError } from '../errors.js';
import { BackupTarget } from '../archiver/targets.js';
import { Lock } from '../repository/lock.js';
import { Repository } from '../repository/repository.js';
import { Output } from './output.js';
import { getPassword, REPO_PASSWORD, type PasswordNames, type PasswordSources } from './password.js';

/** Options every command accepts (see main.ts). */
export interface GlobalOptions {
  /** Each -r/--repo given (several for backup only), or SCRATE_REPOSITORY. */
  repo?: string[];
  /** With several -r: one each, in order, or one for all. */
  passwordFile?: string[];
  passwordCommand?: string[];
  insecureNoPassword?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** How many -v were given. */
  verbose: number;
  debug?: boolean;
  option: string[];
  /** false with --no-cache */
  cache: boolean;
}

/** What a command's action receives besides its own options. */
export interface Context {
  globals: GlobalOptions;
  out: Output;
  /** Aborted on the first Ctrl-C; long operations check it and stop cleanly. */
  signal: AbortSignal;
}

/** Where a repository is and how its password is given: -r's options, or --from-repo's (from-repo.ts). */
export interface RepositoryAccess {
  location?: string;
  /** Backend options, key=value. */
  options: string[];
  password: PasswordSources;
  names: PasswordNames;
  /** How to name the repository when none is given. */
  locationHint: string;
}

/** The repository of -r/--repo, -o and the password options: one (only backup takes several). */
export function mainRepository(g: GlobalOptions): RepositoryAccess {
  const [one, ...more] = repositories(g);
  if (more.length > 0) throw new ScrateError('only backup takes several -r/--repo', ExitCode.fatal, 'give one repository');
  return one ?? repositoryAccess(g, undefined, 0);
}

/** backup's repositories: each -r with its password options, paired by position (one given is for all). */
export function repositories(g: GlobalOptions): RepositoryAccess[] {
  const locations = g.repo ?? [];
  for (const [flag, given] of [['--password-file', g.passwordFile], ['--password-command', g.passwordCommand]] as const) {
    if (given && given.length > 1 && given.length !== locations.length) {
      throw new ScrateError(`${given.length} ${flag} for ${locations.length} repositories`, ExitCode.fatal, `give one ${flag} for all, or one per -r/--repo in the same order`);
    }
  }
  return locations.map((location, i) => repositoryAccess(g, location, i));
}

function repositoryAccess(g: GlobalOptions, location: string | undefined, i: number): RepositoryAccess {
  const nth = (given: string[] | undefined) => given?.[given.length === 1 ? 0 : i];
  const password = { passwordFile: nth(g.passwordFile), passwordCommand: nth(g.passwordCommand), insecureNoPassword: g.insecureNoPassword };
  return { location, options: g.option, password, names: REPO_PASSWORD, locationHint: 'use -r/--repo or set SCRATE_REPOSITORY' };
}

export function backendAt(a: RepositoryAccess): Promise<Backend> {
  if (!a.location) throw new ScrateError('no repository given', ExitCode.fatal, a.locationHint);
  return openBackend(a.location, parseBackendOptions(a.options));
}

/** The backend of -r/--repo with the -o options. */
export function backendOf(g: GlobalOptions): Promise<Backend> {
  return backendAt(mainRepository(g));
}

/** Where this machine keeps caches and what it knows of repositories (see OpenOptions.stateRoot); none with --no-cache. */
export function stateRoot(g: GlobalOptions): string | undefined {
  return g.cache ? defaultCacheRoot() : undefined;
}

/** `maintenance`: exclusive when nothing else runs, else shared beside the backups (prune). */
export type LockMode = 'none' | 'shared' | 'exclusive' | 'maintenance';

/** What a command runs with besides the repository. */
export interface Session {
  /** The lock taken (none for 'none', and for a format version 2 repository). */
  lock?: Lock;
  /** Aborted on Ctrl-C, or when the lock could not be kept (with that error as its reason). */
  signal: AbortSignal;
}

export interface RepositoryOptions {
  /** Load the index first (default true). */
  index?: boolean;
  /** The command reads backups (default true): a write-only key is refused before anything else. */
  reads?: boolean;
}

/**
 * Opens the repository, takes the lock the command needs, runs it and always releases the
 * lock: commands never manage the repository's lifetime themselves. A format version 2
 * repository is only read, and never locked (nothing is written to it).
 */
export async function withRepository<T>(ctx: Context, lock: LockMode, fn: (repo: Repository, session: Session) => Promise<T>, opts: RepositoryOptions = {}): Promise<T> {
  const repo = await openRepository(ctx, mainRepository(ctx.globals), opts);
  const lost = new AbortController();
  const onLost = (err: ScrateError) => lost.abort(err);
  const held =
    lock === 'none' || repo.codec.version === 2 ? undefined : lock === 'maintenance' ? await Lock.acquireForMaintenance(repo, onLost) : await Lock.acquire(repo, lock === 'exclusive', onLost);
  try {
    if (opts.index !== false) await repo.loadIndex((m) => ctx.out.warn(m));
    return await fn(repo, { lock: held, signal: AbortSignal.any([ctx.signal, lost.signal]) });
  } finally {
    await held?.release();
  }
}

/** A repository of a backup that could not be opened, locked or indexed: a failed target from the start. */
export interface UnopenedTarget {
  location: string;
  failure: unknown;
}

/**
 * backup's repositories (several -r), each opened, locked shared (unless `lock` is 'none')
 * and indexed as a BackupTarget whose lost lock fails it alone; one that cannot be is passed
 * on as failed (a single repository's error is thrown). Every lock is released
 * at the end, after the uploads of a failed target settle.
 */
export async function withTargets<T>(ctx: Context, lock: 'none' | 'shared', fn: (targets: BackupTarget[], unopened: UnopenedTarget[]) => Promise<T>): Promise<T> {
  const targets: BackupTarget[] = [];
  const unopened: UnopenedTarget[] = [];
  try {
    for (const access of repositories(ctx.globals)) {
      try {
        targets.push(await openTarget(ctx, access, lock));
      } catch (err) {
        unopened.push({ location: access.location!, failure: err });
      }
    }
    // Twice the same repository would store every new blob twice, under two snapshots.
    const twice = targets.find((t, n) => targets.findIndex((u) => u.location === t.location) !== n);
    if (twice) throw new ScrateError(`${twice.location} is given twice`, ExitCode.fatal, 'give each repository once');
    // One repository that cannot be opened is the command's error, as it always was; of several, each is named.
    if (targets.length === 0 && unopened.length <= 1) throw unopened[0]?.failure ?? new ScrateError('no repository given', ExitCode.fatal, mainRepository(ctx.globals).locationHint);
    return await fn(targets, unopened);
  } finally {
    await Promise.all(targets.map((t) => t.release()));
  }
}

async function openTarget(ctx: Context, access: RepositoryAccess, lock: 'none' | 'shared'): Promise<BackupTarget> {
  const repo = await openRepository(ctx, access, { reads: false });
  let held: Lock | undefined;
  const target = new BackupTarget(repo, repo.backend.location, async () => held?.release());
  if (lock !== 'none' && repo.codec.version !== 2) held = await Lock.acquire(repo, false, (err) => target.fail(err, true));
  try {
    await repo.loadIndex((m) => ctx.out.warn(m));
  } catch (err) {
    await held?.release();
    throw err;
  }
  return target;
}

/**
 * Opens a repository with its password, neither locked nor indexed (withRepository does both).
 * A command that reads (`opts.reads`, default true) is refused a write-only key here.
 */
export async function openRepository(ctx: Context, access: RepositoryAccess, opts: Pick<RepositoryOptions, 'reads'> = {}): Promise<Repository> {
  const backend = await backendAt(access);
  if (!(await backend.exists())) throw new ScrateError(`repository ${backend.location} does not exist`, ExitCode.noRepository, 'create it with `scrate init`');
  const password = await getPassword(access.password, `enter password for repository ${backend.location}: `, false, access.names);
  const cacheRoot = stateRoot(ctx.globals);
  const repo = await Repository.open(backend, password, {
    // A local repository is its own cache; what this machine knows of it is kept either way.
    cacheRoot: backend instanceof LocalBackend ? undefined : cacheRoot,
    stateRoot: cacheRoot,
    onWarning: (m) => ctx.out.warn(m),
  });
  if (opts.reads !== false) repo.requireRead();
  return repo;
}
