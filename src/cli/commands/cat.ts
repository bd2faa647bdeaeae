import { Command } from 'commander';
import { ScrateError } from '../../errors.js';
import { decodeIndexFile, type PackInfo } from '../../repository/blob-index.js';
import { resolvePrefix } from '../../repository/ids.js';
import { listKeys } from '../../repository/keys.js';
import type { PackEntry } from '../../repository/pack.js';
import type { Repository } from '../../repository/repository.js';
import { ObjectKind } from '../../repository/sealed-object.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { withRepository, type Context } from '../context.js';

function entryJson(e: PackEntry) {
  return { id: e.id.toString('hex'), type: e.type === 0 ? 'data' : 'tree', offset: e.offset, length: e.length, rawLength: e.rawLength, compressed: e.compressed };
}

function packJson(p: PackInfo, entries: PackEntry[]) {
  return { id: p.id.toString('hex'), type: p.type === 0 ? 'data' : 'tree', envelope: p.envelope.toString('hex'), blobs: entries.map(entryJson) };
}

/** Each kind of object, decrypted and verified, as JSON. */
const kinds: Record<string, (repo: Repository, id: string | undefined) => Promise<unknown>> = {
  config: async (repo) => repo.config,
  keys: async (repo) => (await listKeys(repo.backend)).map((k) => ({ id: k.id, ...k.file })),
  key: async (repo, id) => {
    const keys = await listKeys(repo.backend);
    const full = resolvePrefix(keys.map((k) => k.id), need(id), 'key');
    return { id: full, ...keys.find((k) => k.id === full)!.file };
  },
  snapshot: async (repo, id) => {
    const found = await findSnapshot(repo, need(id));
    return { id: found.id, ...found.snapshot };
  },
  index: async (repo, id) => {
    const full = resolvePrefix(await repo.listNames('index'), need(id), 'index');
    const file = decodeIndexFile(await repo.loadObject('index', ObjectKind.index, full));
    return { id: full, packs: file.packs.map((p) => packJson(p.pack, p.entries)) };
  },
  pack: async (repo, id) => {
    const full = resolvePrefix(await repo.listNames('data'), need(id), 'pack');
    const { bytes, envelope, entries } = await repo.loadPack(full);
    return { ...packJson({ id: Buffer.from(full, 'hex'), type: entries[0]?.type ?? 0, envelope }, entries), size: bytes.length };
  },
  tree: async (repo, id) => {
    const blob = Buffer.from(need(id), 'hex');
    if (blob.length !== 32) throw new ScrateError('a tree is named by its full 64-digit ID');
    return JSON.parse((await repo.loadBlob(blob)).toString('utf8')) as unknown;
  },
};

function need(id: string | undefined): string {
  if (!id) throw new ScrateError('this object type needs an ID');
  return id;
}

export function catCommand(context: (cmd: Command) => Context): Command {
  return new Command('cat')
    .description(`print a repository object, decrypted, as JSON (for debugging): ${Object.keys(kinds).join('|')}`)
    .argument('<type>', Object.keys(kinds).join(', '))
    .argument('[id]', 'object ID or unique prefix ("latest" for a snapshot)')
    .action(async (type: string, id: string | undefined, _: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const show = kinds[type];
      if (!show) throw new ScrateError(`unknown object type ${type}`, 1, `one of: ${Object.keys(kinds).join(', ')}`);
      const value = await withRepository(ctx, 'none', (repo) => show(repo, id), { index: type === 'tree' });
      ctx.out.result(value);
    });
}
