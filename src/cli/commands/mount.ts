import { Command } from 'commander';
import { serveMount } from '../../mount/mount.js';
import { withRepository, type Context } from '../context.js';

export function mountCommand(context: (cmd: Command) => Context): Command {
  return new Command('mount')
    .description('browse the snapshots as a read-only filesystem (FUSE), in the foreground until unmounted')
    .argument('<mountpoint>', 'an empty directory')
    .option('--allow-other', 'let other users than the one mounting in')
    .action(async (mountpoint: string, flags: { allowOther?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      // A shared lock for as long as it is mounted: a prune meanwhile only marks what it would delete.
      await withRepository(
        ctx,
        'shared',
        (repo, { signal }) =>
          serveMount(repo, mountpoint, {
            allowOther: flags.allowOther,
            signal,
            onWarning: (m) => ctx.out.warn(m),
            onMounted: (dir) => {
              ctx.out.info(`Now serving the repository at ${dir}`);
              ctx.out.info('Use another terminal or tool to browse the contents of this folder.');
              ctx.out.info('When finished, quit with Ctrl-c here or umount the mountpoint.');
            },
          }),
        { index: false },
      );
    });
}
