import { aboutPack, indexedPacks, readPack, type IndexedPackEntries } from '../checker/pack-reading.js';
import { checkAborted, IntegrityError } from '../errors.js';
import type { PackInfo } from '../repository/blob-index.js';
import { resolvePrefix } from '../repository/ids.js';
import { BlobType, type PackEntry } from '../repository/pack.js';
import type { Repository } from '../repository/repository.js';
import type { Writer } from '../repository/writers.js';
import { IndexFiles, requireFullKey, WriterPackers, type RepairOptions } from './repair-shared.js';

export interface RepairedPack {
  pack: string;
  /** Nothing was wrong with it: left as it is. */
  intact: boolean;
  /** Blobs stored again in new packs. */
  saved: number;
  /** Blobs it held that no pack has any more. */
  lost: { blob: string; type: 'data' | 'tree'; why: string }[];
}

/** A blob the pack held that could not be saved, and why. */
interface Casualty {
  entry: PackEntry;
  writer: Writer;
  why: string;
}

/**
 * Salvages damaged or missing packs (restic's `repair packs`): of each, every blob that still
 * decrypts to its ID is stored again in a new pack of the same writer; then the pack leaves the
 * index (the index files that list it are written again without it, the new ones first) and the
 * repository. A pack found intact is left as it is. What the packs held and no other pack has is
 * reported lost: `check` names the files that need it, a backup stores again what still exists,
 * `repair snapshots` writes the snapshots again without the rest.
 */
export async function repairPacks(repo: Repository, prefixes: string[], opts: RepairOptions = {}): Promise<RepairedPack[]> {
  requireFullKey(repo);
  const { index } = repo;
  const present = new Set(await repo.listNames('data'));
  const known = new Set([...present, ...index.packs.map((p) => p.id.toString('hex'))]);
  const chosen = [...new Set(prefixes.map((p) => resolvePrefix(known, p, 'pack')))];
  const indexed = indexedPacks(repo);
  const packers = new WriterPackers(repo);
  const results: RepairedPack[] = [];
  const casualties = new Map<string, Casualty[]>();
  for (const id of chosen) {
    checkAborted(opts.signal);
    opts.onProgress?.(`reading pack ${id.slice(0, 8)}`);
    const claims = index.packs.flatMap((info, p) => (info.id.toString('hex') === id ? [indexed(p)] : []));
    // From here the pack counts as gone: only a copy elsewhere, or one stored now, keeps a blob.
    for (const { info } of claims) info.missing = true;
    const result: RepairedPack = { pack: id, intact: false, saved: 0, lost: [] };
    results.push(result);
    const lost: Casualty[] = [];
    casualties.set(id, lost);
    if (!present.has(id)) {
      for (const c of claims) lost.push(...everyBlob(repo, c, 'its pack is missing'));
      continue;
    }
    try {
      const reading = await readPack(repo, id, claims[0]);
      if (reading.problems.length === 0 && reading.damaged.length === 0) {
        for (const { info } of claims) info.missing = false;
        result.intact = true;
        casualties.delete(id);
        continue;
      }
      const packer = packers.of(reading.writer);
      for (const { entry, stored } of reading.good) {
        if (await packer.add(reading.type, { id: entry.id, stored, compressed: entry.compressed, rawLength: entry.rawLength })) result.saved++;
      }
      for (const { entry, why } of reading.damaged) lost.push({ entry, writer: reading.writer, why });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      for (const c of claims) lost.push(...everyBlob(repo, c, aboutPack(id, err.message)));
    }
  }
  await packers.flush();
  for (const result of results) {
    for (const { entry, writer, why } of casualties.get(result.pack) ?? []) {
      if (!index.find(entry.type, entry.id, writer.no)) result.lost.push({ blob: entry.id.toString('hex'), type: entry.type === BlobType.tree ? 'tree' : 'data', why });
    }
  }
  const dropped = new Set(casualties.keys());
  checkAborted(opts.signal);
  await dropFromIndex(repo, dropped);
  for (const id of dropped) if (present.has(id)) await repo.backend.remove('data', id);
  return results;
}

function everyBlob(repo: Repository, { info, entries }: IndexedPackEntries, why: string): Casualty[] {
  const writer = repo.writers.byNo(info.writer);
  return entries.map((entry) => ({ entry, writer, why }));
}

/** Writes again, without these packs, every index file that lists one of them, then removes the old ones. */
async function dropFromIndex(repo: Repository, packs: ReadonlySet<string>): Promise<void> {
  const files = new IndexFiles(repo);
  const replaced: string[] = [];
  for (const name of await repo.listNames('index')) {
    let listed: { pack: PackInfo; entries: PackEntry[] }[];
    try {
      listed = await repo.loadIndexFile(name);
    } catch (err) {
      // Skipped by every reader anyway: `repair index` replaces it.
      if (err instanceof IntegrityError) continue;
      throw err;
    }
    if (!listed.some(({ pack }) => packs.has(pack.id.toString('hex')))) continue;
    for (const { pack, entries } of listed) {
      if (!packs.has(pack.id.toString('hex'))) await files.add({ ...pack, writer: repo.writers.byNo(pack.writer).id, markedAt: pack.markedAt ?? 0 }, entries);
    }
    replaced.push(name);
  }
  await files.flush();
  for (const name of replaced) await repo.backend.remove('index', name);
}
