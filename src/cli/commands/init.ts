import { Command, Option } from 'commander';
import { DEFAULT_CHUNKER, DEFAULT_COMPRESSION } from '../../repository/config.js';
import { DEFAULT_KDF_MS } from '../../repository/keys.js';
import { Repository, type InitOptions } from '../../repository/repository.js';
import { ScrateError } from '../../errors.js';
import { backendOf, mainRepository, stateRoot, type Context } from '../context.js';
import { addFromRepoOptions, openFromRepository, type FromRepoOptions } from '../from-repo.js';
import { getPassword } from '../password.js';
import { intOption, kdfMs } from '../parse.js';

interface InitFlags extends FromRepoOptions {
  chunkMin: number;
  chunkAvg: number;
  chunkMax: number;
  compression: number;
  copyChunkerParams?: boolean;
}

export function initCommand(context: (cmd: Command) => Context): Command {
  const cmd = new Command('init')
    .description('create a new repository')
    .option('--chunk-min <bytes>', 'smallest chunk', intOption, DEFAULT_CHUNKER.min)
    .option('--chunk-avg <bytes>', 'average chunk', intOption, DEFAULT_CHUNKER.avg)
    .option('--chunk-max <bytes>', 'largest chunk', intOption, DEFAULT_CHUNKER.max)
    .addOption(new Option('--compression <level>', 'default zstd level for data (0 = off)').argParser(intOption).default(DEFAULT_COMPRESSION))
    .option('--copy-chunker-params', 'take the chunker parameters and blob-ID keys of --from-repo (needs a full key of it): the same files give the same chunks and blob IDs in both');
  return addFromRepoOptions(cmd, 'take the chunker parameters of').action(async (opts: InitFlags, cmd: Command) => {
    const ctx = context(cmd);
    const from = await chunkingFrom(ctx, cmd, opts);
    const backend = await backendOf(ctx.globals);
    const password = await getPassword(mainRepository(ctx.globals).password, `enter a password for the new repository ${backend.location}: `, true);
    const repo = await Repository.init(backend, password, {
      chunker: { min: opts.chunkMin, avg: opts.chunkAvg, max: opts.chunkMax },
      compression: opts.compression,
      kdfMs: kdfMs() ?? DEFAULT_KDF_MS,
      stateRoot: stateRoot(ctx.globals),
      ...from?.chunking,
    });
    if (ctx.out.json) ctx.out.jsonLine({ message_type: 'initialized', id: repo.config.id, repository: backend.location, key: repo.keyId });
    ctx.out.info(`created repository ${repo.config.id.slice(0, 10)} at ${backend.location}`);
    if (from) ctx.out.info(`with the chunker parameters and blob-ID keys of repository ${from.id.slice(0, 10)} at ${from.location}`);
    ctx.out.info('keep the password safe: without it the data cannot be read back');
  });
}

/**
 * With --copy-chunker-params, what the new repository takes from --from-repo. As restic's init,
 * --from-repo is refused without it (the variable alone is not: it may be set for copy).
 */
async function chunkingFrom(ctx: Context, cmd: Command, opts: InitFlags): Promise<{ chunking: Pick<InitOptions, 'chunker' | 'roots'>; id: string; location: string } | undefined> {
  const given = (name: string) => cmd.getOptionValueSource(name) === 'cli';
  if (!opts.copyChunkerParams) {
    if (given('fromRepo')) throw new ScrateError('--from-repo is only for --copy-chunker-params', 1, 'init takes nothing else from another repository');
    return undefined;
  }
  if (!opts.fromRepo) throw new ScrateError('--copy-chunker-params needs the repository to copy them from', 1, 'use --from-repo or set SCRATE_FROM_REPOSITORY');
  const sizes = ['chunkMin', 'chunkAvg', 'chunkMax'].find(given);
  if (sizes) throw new ScrateError(`--${sizes.replace(/[A-Z]/, (c) => `-${c.toLowerCase()}`)} contradicts --copy-chunker-params`, 1, 'the chunk sizes are those of --from-repo');
  const src = await openFromRepository(ctx, opts, { reads: false });
  return { chunking: src.chunking, id: src.config.id, location: src.backend.location };
}
