import { Command } from 'commander';
import { ExitCode, ScrateError } from '../../errors.js';
import { resolvePrefix, shortId } from '../../repository/ids.js';
import { addFullKey, addWriteOnlyKey, listKeyEntries, removeKey } from '../../repository/key-admin.js';
import { DEFAULT_KDF_MS } from '../../repository/keys.js';
import { displayName } from '../../tree/node.js';
import { humanTime, jsonTimeOfIso } from '../local-time.js';
import { withRepository, type Context } from '../context.js';
import { snakeCaseKeys } from '../json/snake-case.js';
import { kdfMs } from '../parse.js';
import { getNewPassword } from '../password.js';

interface NewPasswordFlags {
  newPasswordFile?: string;
}

interface AddFlags extends NewPasswordFlags {
  writeOnly?: boolean;
  host?: string;
  shareFullKeys?: boolean;
}

export function keyCommand(context: (cmd: Command) => Context): Command {
  const key = new Command('key').description('manage the passwords (key files) that open the repository, and write-only keys for backup hosts');

  key
    .command('list')
    .description('list key files')
    .action(async (_: unknown, cmd: Command) => {
      const ctx = context(cmd);
      await withRepository(
        ctx,
        'none',
        async (repo) => {
          const keys = await listKeyEntries(repo, (id, why) => ctx.out.warn(`key ${id.slice(0, 8)} skipped: ${why}`));
          if (ctx.out.json) {
            ctx.out.jsonLine(snakeCaseKeys(keys.map((k) => ({ id: k.id, current: k.id === repo.keyId, ...(k.info ? { ...k.info, created: jsonTimeOfIso(k.info.created) } : { info: 'unreadable' }) }))));
            return;
          }
          ctx.out.table(
            [' ID', 'Created', 'Host', 'User', 'Access', 'Writer'],
            keys.map((k) => [`${k.id === repo.keyId ? '*' : ' '}${shortId(k.id)}`, humanTime(Date.parse(k.info?.created ?? '')), displayName(k.info?.hostname ?? '?'), displayName(k.info?.username ?? '?'), k.info?.access ?? 'unreadable', k.info?.access === 'write-only' ? k.info.writer.slice(0, 8) : '']),
          );
        },
        { index: false },
      );
    });

  key
    .command('add')
    .description('add a key file with a new password; the existing ones keep working')
    .option('--new-password-file <file>', 'read the new password from a file')
    .option('--write-only', 'a key for one backup host: it can add backups but never read any, nor learn what other hosts store')
    .option('--host <name>', 'with --write-only: the host the key is for (shown with its snapshots)')
    .option('--share-full-keys', 'with --write-only: name and cut blobs as full keys do, so the host can copy its own snapshots in from a repository made with init --from-repo --copy-chunker-params (see SECURITY.md)')
    .action(async (flags: AddFlags, cmd: Command) => {
      const ctx = context(cmd);
      if (flags.writeOnly && !flags.host) throw new ScrateError('--write-only needs --host', ExitCode.fatal, 'name the host the key is for, e.g. --host web1');
      if (flags.host && !flags.writeOnly) throw new ScrateError('--host goes with --write-only');
      if (flags.shareFullKeys && !flags.writeOnly) throw new ScrateError('--share-full-keys goes with --write-only');
      const kdf = kdfMs() ?? DEFAULT_KDF_MS;
      const added = await withRepository(
        ctx,
        'none',
        async (repo) => {
          const password = await getNewPassword(flags.newPasswordFile, ctx.globals.insecureNoPassword);
          return flags.writeOnly ? addWriteOnlyKey(repo, password, kdf, flags.host!, flags.shareFullKeys) : { keyId: await addFullKey(repo, password, kdf), writer: undefined };
        },
        { index: false },
      );
      if (ctx.out.json) ctx.out.jsonLine({ id: added.keyId, ...(added.writer ? { writer: added.writer, access: 'write-only' } : { access: 'full' }) });
      ctx.out.info(added.writer ? `added write-only key ${shortId(added.keyId)} for ${displayName(flags.host!)} (writer ${added.writer.slice(0, 8)})` : `added key ${shortId(added.keyId)}`);
    });

  key
    .command('remove')
    .description('remove a key file (never the one in use, never the last full key); removing a write-only key revokes its writer')
    .argument('<id>', 'key ID or unique prefix')
    .action(async (prefix: string, _: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const done = await withRepository(
        ctx,
        'exclusive',
        async (repo) => {
          const id = resolvePrefix((await listKeyEntries(repo)).map((k) => k.id), prefix, 'key');
          return { id, ...(await removeKey(repo, id)) };
        },
        { index: false },
      );
      if (ctx.out.json) ctx.out.jsonLine({ removed: done.id, ...(done.revoked ? { revoked_writer: done.revoked } : {}) });
      ctx.out.info(`removed key ${shortId(done.id)}${done.revoked ? `; writer ${done.revoked.slice(0, 8)} is revoked: what it stores from now on is refused` : ''}`);
    });

  key
    .command('passwd')
    .description('change the password of the key in use (a full key)')
    .option('--new-password-file <file>', 'read the new password from a file')
    .action(async (flags: NewPasswordFlags, cmd: Command) => {
      const ctx = context(cmd);
      const ids = await withRepository(
        ctx,
        'exclusive',
        async (repo) => {
          // Add first, remove second: a crash in between leaves two working keys, never none.
          const added = await addFullKey(repo, await getNewPassword(flags.newPasswordFile, ctx.globals.insecureNoPassword), kdfMs() ?? DEFAULT_KDF_MS);
          await repo.backend.remove('keys', repo.keyId);
          return { added, removed: repo.keyId };
        },
        { index: false },
      );
      if (ctx.out.json) ctx.out.jsonLine(ids);
      ctx.out.info(`password changed: key ${shortId(ids.removed)} replaced by ${shortId(ids.added)}`);
    });

  return key;
}
