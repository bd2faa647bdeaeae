import { Command } from 'commander';
import { check } from '../../checker/checker.js';
import { ExitCode } from '../../errors.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';

export function checkCommand(context: (cmd: Command) => Context): Command {
  return new Command('check')
    .description('verify the repository: snapshots, trees, index and packs (--read-data: every blob)')
    .option('--read-data', 'also download every pack and verify every blob in it')
    .action(async (flags: { readData?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      const { out } = ctx;
      const result = await withRepository(
        ctx,
        'shared',
        (repo, session) => check(repo, { readData: flags.readData, signal: session.signal, onProgress: out.showsProgress ? (w) => out.progress(`checking ${w}`) : undefined }).finally(() => out.stopProgress()),
        { index: false },
      );
      if (out.json) out.result(result);
      // The checker's messages name files of the repository's trees as they are.
      for (const e of result.errors) out.warn(displayName(e));
      out.info(`${result.snapshots} snapshots, ${result.trees} trees${flags.readData ? `, ${result.packs} packs read` : ''}; ${result.errors.length} error(s)`);
      if (result.unreferencedPacks) out.info(`${result.unreferencedPacks} pack(s) are not in any index (left by an interrupted backup; harmless)`);
      if (result.errors.length) process.exitCode = ExitCode.fatal;
    });
}
