import { Command } from 'commander';
import { resolvePrefix, shortId } from '../../repository/ids.js';
import { addKey, DEFAULT_KDF_MS, listKeys, removeKey } from '../../repository/keys.js';
import type { Repository } from '../../repository/repository.js';
import { displayName } from '../../tree/node.js';
import { withRepository, type Context } from '../context.js';
import { kdfMs } from '../parse.js';
import { getNewPassword } from '../password.js';

interface NewPasswordFlags {
  newPasswordFile?: string;
}

async function addNewKey(ctx: Context, repo: Repository, flags: NewPasswordFlags): Promise<string> {
  return addKey(repo.backend, repo.keys, await getNewPassword(flags.newPasswordFile, ctx.globals.insecureNoPassword), kdfMs() ?? DEFAULT_KDF_MS);
}

export function keyCommand(context: (cmd: Command) => Context): Command {
  const key = new Command('key').description('manage the passwords (key files) that open the repository');

  key
    .command('list')
    .description('list key files')
    .action(async (_: unknown, cmd: Command) => {
      const ctx = context(cmd);
      await withRepository(
        ctx,
        'none',
        async (repo) => {
          const keys = await listKeys(repo.backend);
          if (ctx.out.json) {
            ctx.out.result(keys.map((k) => ({ id: k.id, current: k.id === repo.keyId, created: k.file.created, hostname: k.file.hostname, username: k.file.username, access: k.file.access })));
            return;
          }
          ctx.out.table(
            [' ID', 'Created', 'Host', 'User', 'Access'],
            keys.map((k) => [`${k.id === repo.keyId ? '*' : ' '}${shortId(k.id)}`, k.file.created.replace('T', ' ').slice(0, 19), displayName(k.file.hostname), displayName(k.file.username), k.file.access]),
          );
        },
        { index: false },
      );
    });

  key
    .command('add')
    .description('add a key file with a new password; the existing ones keep working')
    .option('--new-password-file <file>', 'read the new password from a file')
    .action(async (flags: NewPasswordFlags, cmd: Command) => {
      const ctx = context(cmd);
      const id = await withRepository(ctx, 'none', (repo) => addNewKey(ctx, repo, flags), { index: false });
      if (ctx.out.json) ctx.out.result({ id });
      ctx.out.info(`added key ${shortId(id)}`);
    });

  key
    .command('remove')
    .description('remove a key file (never the one in use, never the last)')
    .argument('<id>', 'key ID or unique prefix')
    .action(async (prefix: string, _: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const id = await withRepository(
        ctx,
        'exclusive',
        async (repo) => {
          const id = resolvePrefix((await listKeys(repo.backend)).map((k) => k.id), prefix, 'key');
          await removeKey(repo.backend, id, repo.keyId);
          return id;
        },
        { index: false },
      );
      if (ctx.out.json) ctx.out.result({ removed: id });
      ctx.out.info(`removed key ${shortId(id)}`);
    });

  key
    .command('passwd')
    .description('change the password of the key in use')
    .option('--new-password-file <file>', 'read the new password from a file')
    .action(async (flags: NewPasswordFlags, cmd: Command) => {
      const ctx = context(cmd);
      const ids = await withRepository(
        ctx,
        'exclusive',
        async (repo) => {
          // Add first, remove second: a crash in between leaves two working keys, never none.
          const added = await addNewKey(ctx, repo, flags);
          await removeKey(repo.backend, repo.keyId, added);
          return { added, removed: repo.keyId };
        },
        { index: false },
      );
      if (ctx.out.json) ctx.out.result(ids);
      ctx.out.info(`password changed: key ${shortId(ids.removed)} replaced by ${shortId(ids.added)}`);
    });

  return key;
}
