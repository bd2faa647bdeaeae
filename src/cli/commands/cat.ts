import { Argument, Command } from 'commander';
import { ScrateError } from '../../errors.js';
import type { PackInfo } from '../../repository/blob-index.js';
import { resolvePrefix } from '../../repository/ids.js';
import { readKeyInfo } from '../../repository/key-file.js';
import { listKeys } from '../../repository/keys.js';
import { BlobType, type PackEntry } from '../../repository/pack.js';
import type { Repository } from '../../repository/repository.js';
import { ObjectKind } from '../../repository/sealed-object.js';
import { Writers } from '../../repository/writers.js';
import { findSnapshot } from '../../snapshot/snapshot.js';
import { withRepository, type Context } from '../context.js';

function entryJson(e: PackEntry) {
  return { id: e.id.toString('hex'), type: e.type === BlobType.data ? 'data' : 'tree', offset: e.offset, length: e.length, rawLength: e.rawLength, compressed: e.compressed };
}

function packJson(repo: Repository, p: PackInfo, entries: PackEntry[]) {
  return { id: p.id.toString('hex'), type: p.type === BlobType.data ? 'data' : 'tree', writer: repo.writers.byNo(p.writer).hex, envelope: p.envelope.toString('hex'), ...(p.markedAt ? { markedForDeletion: new Date(p.markedAt).toISOString() } : {}), blobs: entries.map(entryJson) };
}

/** Each kind of object, decrypted and verified, as JSON. */
const kinds: Record<string, (repo: Repository, id: string | undefined) => Promise<unknown>> = {
  config: async (repo) => repo.config,
  keys: async (repo) => (await listKeys(repo.backend)).map((k) => ({ id: k.id, ...k.file, info: repo.keys.read && readKeyInfo(k.file, repo.keys.read.seal) })),
  writers: async (repo) => repo.writers.all.map((w) => ({ id: w.hex, access: w.access, hostname: w.hostname, revoked: w.revoked?.time })),
  snapshot: async (repo, id) => {
    const found = await findSnapshot(repo, need(id));
    return { id: found.id, ...found.snapshot, writer: found.writer.hex };
  },
  index: async (repo, id) => {
    const full = resolvePrefix(await repo.listNames('index'), need(id), 'index');
    const { writer } = await repo.loadObject('index', ObjectKind.index, full);
    return { id: full, writer: writer.hex, packs: (await repo.loadIndexFile(full)).map((p) => packJson(repo, p.pack, p.entries)) };
  },
  pack: async (repo, id) => {
    const full = resolvePrefix(await repo.listNames('data'), need(id), 'pack');
    const { bytes, envelope, header } = await repo.loadPack(full);
    return { id: full, type: header.type === BlobType.data ? 'data' : 'tree', writer: header.writer.toString('hex'), envelope: envelope.toString('hex'), size: bytes.length, blobs: header.entries.map(entryJson) };
  },
  tree: async (repo, id) => {
    const blob = Buffer.from(need(id), 'hex');
    if (blob.length !== 32) throw new ScrateError('a tree is named by its full 64-digit ID');
    // Tree IDs are per writer: the one whose packs hold it.
    const writer = repo.writers.all.find((w) => repo.index.has(BlobType.tree, blob, w.no));
    if (!writer) throw new ScrateError(`no tree ${need(id)} in the index`);
    return { writer: Writers.label(writer), ...(JSON.parse((await repo.reader(writer).loadBlob(BlobType.tree, blob)).toString('utf8')) as object) };
  },
};

function need(id: string | undefined): string {
  if (!id) throw new ScrateError('this object type needs an ID');
  return id;
}

export function catCommand(context: (cmd: Command) => Context): Command {
  return new Command('cat')
    .description(`print a repository object, decrypted, as JSON (for debugging): ${Object.keys(kinds).join('|')}`)
    .addArgument(
      new Argument('<type>', 'the kind of object')
        .choices(Object.keys(kinds))
        // The choices are for help and completions; a wrong one is refused in one line, not with commander's help after it.
        .argParser((type) => {
          if (!kinds[type]) throw new ScrateError(`unknown object type ${type}`, 1, `one of: ${Object.keys(kinds).join(', ')}`);
          return type;
        }),
    )
    .argument('[id]', 'object ID or unique prefix ("latest" for a snapshot)')
    .action(async (type: string, id: string | undefined, _: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const show = kinds[type]!;
      const value = await withRepository(ctx, 'none', (repo) => show(repo, id), { index: type === 'tree' });
      ctx.out.jsonLine(value);
    });
}
