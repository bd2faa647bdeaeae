import { Command, Option } from 'commander';
import { DEFAULT_CHUNKER, DEFAULT_COMPRESSION } from '../../repository/config.js';
import { DEFAULT_KDF_MS } from '../../repository/keys.js';
import { Repository } from '../../repository/repository.js';
import { backendOf, stateRoot, type Context } from '../context.js';
import { getPassword } from '../password.js';
import { intOption, kdfMs } from '../parse.js';

export function initCommand(context: (cmd: Command) => Context): Command {
  return new Command('init')
    .description('create a new repository')
    .option('--chunk-min <bytes>', 'smallest chunk', intOption, DEFAULT_CHUNKER.min)
    .option('--chunk-avg <bytes>', 'average chunk', intOption, DEFAULT_CHUNKER.avg)
    .option('--chunk-max <bytes>', 'largest chunk', intOption, DEFAULT_CHUNKER.max)
    .addOption(new Option('--compression <level>', 'default zstd level for data (0 = off)').argParser(intOption).default(DEFAULT_COMPRESSION))
    .action(async (opts: { chunkMin: number; chunkAvg: number; chunkMax: number; compression: number }, cmd: Command) => {
      const ctx = context(cmd);
      const backend = await backendOf(ctx.globals);
      const password = await getPassword(ctx.globals, `enter a password for the new repository ${backend.location}: `, true);
      const repo = await Repository.init(backend, password, {
        chunker: { min: opts.chunkMin, avg: opts.chunkAvg, max: opts.chunkMax },
        compression: opts.compression,
        kdfMs: kdfMs() ?? DEFAULT_KDF_MS,
        stateRoot: stateRoot(ctx.globals),
      });
      if (ctx.out.json) ctx.out.jsonLine({ message_type: 'initialized', id: repo.config.id, repository: backend.location, key: repo.keyId });
      ctx.out.info(`created repository ${repo.config.id.slice(0, 10)} at ${backend.location}`);
      ctx.out.info('keep the password safe: without it the data cannot be read back');
    });
}
