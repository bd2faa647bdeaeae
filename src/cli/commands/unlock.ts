import { Command } from 'commander';
import { ScrateError } from '../../errors.js';
import { removeLocks } from '../../repository/lock.js';
import { withRepository, type Context } from '../context.js';

export function unlockCommand(context: (cmd: Command) => Context): Command {
  return new Command('unlock')
    .description('remove locks left behind by processes that are gone')
    .option('--remove-all', 'remove every lock, even those of running processes')
    .action(async (flags: { removeAll?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const n = await withRepository(
        ctx,
        'none',
        async (repo) => {
          // A live lock may be a prune's: only a full key may take it away.
          if (flags.removeAll && !repo.canRead) throw new ScrateError('--remove-all needs a full key: this key is write-only');
          return removeLocks(repo, !!flags.removeAll);
        },
        { index: false, reads: false },
      );
      if (ctx.out.json) ctx.out.jsonLine({ removed: n });
      ctx.out.info(n === 0 ? 'no locks to remove' : `removed ${n} lock(s)`);
    });
}
