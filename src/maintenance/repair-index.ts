import { aboutPack, readPack } from '../checker/pack-reading.js';
import { checkAborted, IntegrityError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { IndexFiles, requireFullKey, type RepairOptions } from './repair-shared.js';

export interface RepairIndexResult {
  /** Packs indexed, and their blobs. */
  packs: number;
  blobs: number;
  /** Packs that could not be read whole and verified: not indexed (`repair packs` salvages them). */
  leftOut: { pack: string; why: string }[];
  /** Index files written, and old ones removed. */
  written: number;
  removed: number;
}

/**
 * Rebuilds the index from the packs the repository has, as restic's `repair index`: each pack is
 * read whole, its own header names its writer, type and blobs, and every blob is decrypted and
 * checked against its ID under that writer's key (anyone with the public key can write a pack
 * that claims a writer: only its blobs' IDs prove it). Packs of unregistered writers, and packs
 * that fail anywhere, are left out and reported. Marks of packs the current index marks (as far
 * as it loads) are kept. The new index is written before the old index files are removed, so a
 * crash leaves both, listing the same packs.
 */
export async function repairIndex(repo: Repository, opts: RepairOptions = {}): Promise<RepairIndexResult> {
  requireFullKey(repo);
  // The files the loaded index came from (their marks are carried over): listed once, at load.
  const oldFiles = repo.indexFiles;
  const marks = new Map<string, number>();
  for (const p of repo.index.packs) if (p.markedAt) marks.set(`${p.writer}:${p.id.toString('hex')}`, p.markedAt);
  const result: RepairIndexResult = { packs: 0, blobs: 0, leftOut: [], written: 0, removed: 0 };
  const files = new IndexFiles(repo);
  for (const id of await repo.listNames('data')) {
    checkAborted(opts.signal);
    opts.onProgress?.(`reading pack ${id.slice(0, 8)}`);
    try {
      const { writer, type, envelope, problems, good, damaged } = await readPack(repo, id);
      const why = problems[0] ?? damaged[0]?.why;
      if (why !== undefined) {
        result.leftOut.push({ pack: id, why });
        continue;
      }
      const entries = good.map((g) => g.entry);
      await files.add({ id: Buffer.from(id, 'hex'), type, writer: writer.id, envelope, markedAt: marks.get(`${writer.no}:${id}`) ?? 0 }, entries);
      result.packs++;
      result.blobs += entries.length;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      result.leftOut.push({ pack: id, why: aboutPack(id, err.message) });
    }
  }
  await files.flush();
  result.written = files.names.length;
  checkAborted(opts.signal);
  for (const name of oldFiles) await repo.backend.remove('index', name);
  result.removed = oldFiles.length;
  return result;
}
