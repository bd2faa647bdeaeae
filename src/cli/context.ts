import { openBackend } from '../backend/open.js';
import { ExitCode, ScrateError } from '../errors.js';
import { Lock } from '../repository/lock.js';
import { Repository } from '../repository/repository.js';
import { Output } from './output.js';
import { getPassword } from './password.js';

/** Options every command accepts (see main.ts). */
export interface GlobalOptions {
  repo?: string;
  passwordFile?: string;
  passwordCommand?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

/** What a command's action receives besides its own options. */
export interface Context {
  globals: GlobalOptions;
  out: Output;
  /** Aborted on the first Ctrl-C; long operations check it and stop cleanly. */
  signal: AbortSignal;
}

export function repoLocation(g: GlobalOptions): string {
  if (!g.repo) throw new ScrateError('no repository given', ExitCode.fatal, 'use -r/--repo or set SCRATE_REPOSITORY');
  return g.repo;
}

export type LockMode = 'none' | 'shared' | 'exclusive';

/**
 * Opens the repository, takes the lock the command needs, runs it and always releases the
 * lock: commands never manage the repository's lifetime themselves.
 */
export async function withRepository<T>(ctx: Context, lock: LockMode, fn: (repo: Repository) => Promise<T>, opts: { index?: boolean } = {}): Promise<T> {
  const backend = openBackend(repoLocation(ctx.globals));
  if (!(await backend.exists())) throw new ScrateError(`repository ${backend.location} does not exist`, ExitCode.noRepository, 'create it with `scrate init`');
  const password = await getPassword(ctx.globals, `enter password for repository ${backend.location}: `);
  const repo = await Repository.open(backend, password);
  const held = lock === 'none' ? undefined : await Lock.acquire(repo, lock === 'exclusive');
  try {
    if (opts.index !== false) await repo.loadIndex();
    return await fn(repo);
  } finally {
    await held?.release();
  }
}
