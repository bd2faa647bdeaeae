import { Command } from 'commander';
import { removeLocks } from '../../repository/lock.js';
import { withRepository, type Context } from '../context.js';

export function unlockCommand(context: (cmd: Command) => Context): Command {
  return new Command('unlock')
    .description('remove locks left behind by processes that are gone')
    .option('--remove-all', 'remove every lock, even those of running processes')
    .action(async (flags: { removeAll?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const n = await withRepository(ctx, 'none', (repo) => removeLocks(repo, !!flags.removeAll), { index: false });
      if (ctx.out.json) ctx.out.result({ removed: n });
      ctx.out.info(n === 0 ? 'no locks to remove' : `removed ${n} lock(s)`);
    });
}
