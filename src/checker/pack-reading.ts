import { ObjectTooLargeError } from '../backend/backend.js';
import { IntegrityError } from '../errors.js';
import { entriesByPack, packEntries } from '../maintenance/prune.js';
import type { PackInfo } from '../repository/blob-index.js';
import { maxPackBytes } from '../repository/limits.js';
import type { BlobType, PackEntry, PackHeader } from '../repository/pack.js';
import { unsealBlob, type Repository } from '../repository/repository.js';
import { Writers, type Writer } from '../repository/writers.js';

/** A pack as the index lists it. */
export interface IndexedPackEntries {
  info: PackInfo;
  entries: PackEntry[];
}

/** What the index lists of each pack: of(p) for pack number p (an index into `index.packs`). */
export function indexedPacks(repo: Repository): (p: number) => IndexedPackEntries {
  const { index } = repo;
  const byPack = entriesByPack(repo, index.packs.length);
  return (p) => {
    const info = index.packs[p]!;
    return { info, entries: Array.from(packEntries(byPack, p), (n): PackEntry => ({ type: info.type, ...index.entry(n) })) };
  };
}

/** What could be read of a pack. */
export interface PackReading {
  /** Whose blobs they are: the writer the index lists it under, else the one its header names. */
  writer: Writer;
  type: BlobType;
  /** Its key envelope: the index's copy when its own bytes are damaged. */
  envelope: Buffer;
  /** What is wrong with the pack as a whole (its bytes, its header, the index's idea of it), if anything. */
  problems: string[];
  /** Blobs that decrypt to their ID, as stored (compressed or not): what a repair seals anew. */
  good: { entry: PackEntry; stored: Buffer }[];
  damaged: { entry: PackEntry; why: string }[];
}

/**
 * Reads a whole pack and every blob in it, as far as it can be read: a pack whose bytes no
 * longer match its name is still read, with the index's copy of its key envelope and its own
 * header if that still opens (else the index's list of its blobs), so that each blob is judged
 * on its own and the good ones can be saved. Throws IntegrityError only when nothing can be
 * read (no key, no list of blobs, or no registered writer).
 */
export async function readPack(repo: Repository, id: string, indexed?: IndexedPackEntries): Promise<PackReading> {
  const what = `pack ${id.slice(0, 12)}`;
  const problems: string[] = [];
  let bytes: Buffer;
  let envelope: Buffer;
  let header: PackHeader | undefined;
  try {
    ({ bytes, envelope, header } = await repo.loadPack(id));
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    problems.push(aboutPack(id, err.message));
    bytes = await repo.backend.load('data', id, { limit: maxPackBytes(repo.config.packSize) }).catch((e: unknown) => {
      throw e instanceof ObjectTooLargeError ? new IntegrityError(what, e.message) : e;
    });
    envelope = indexed?.info.envelope ?? repo.codec.readEnvelope(bytes, what);
    header = headerIfItOpens(repo, id, bytes, envelope);
  }
  const writer = indexed ? repo.writers.byNo(indexed.info.writer) : header && repo.writers.get(header.writer);
  if (!writer) throw new IntegrityError(what, header ? `its header names an unknown writer ${header.writer.toString('hex').slice(0, 8)}` : 'its header does not open and no index lists it');
  let entries = header?.entries ?? indexed!.entries;
  if (indexed && header) {
    if (!header.writer.equals(writer.id)) {
      problems.push(`its header names writer ${header.writer.toString('hex').slice(0, 8)}, the index ${Writers.label(writer)}`);
      entries = indexed.entries;
    } else if (!sameEntries(header.entries, indexed.entries)) {
      problems.push('the index disagrees with its header');
    }
  }
  const key = repo.packKey(id, envelope);
  const reading: PackReading = { writer, type: header?.type ?? indexed!.info.type, envelope, problems, good: [], damaged: [] };
  for (const entry of entries) {
    try {
      const { stored } = unsealBlob(key, writer.chunkIdKey, entry.id, entry, bytes.subarray(entry.offset, entry.offset + entry.length), id);
      reading.good.push({ entry, stored });
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      reading.damaged.push({ entry, why: err.message });
    }
  }
  return reading;
}

/** A message about pack `id` without its name, which it starts with: said beside the name. */
export function aboutPack(id: string, message: string): string {
  return message.replace(`pack ${id.slice(0, 12)}: `, '');
}

function headerIfItOpens(repo: Repository, id: string, bytes: Buffer, envelope: Buffer): PackHeader | undefined {
  try {
    return repo.codec.readPackHeader(bytes, repo.packKey(id, envelope), `pack ${id.slice(0, 12)}`);
  } catch (err) {
    if (!(err instanceof IntegrityError)) throw err;
    return undefined;
  }
}

function sameEntries(header: readonly PackEntry[], indexed: readonly PackEntry[]): boolean {
  if (header.length !== indexed.length) return false;
  const byOffset = [...indexed].sort((a, b) => a.offset - b.offset);
  return header.every((e, i) => {
    const x = byOffset[i]!;
    return e.id.equals(x.id) && e.offset === x.offset && e.length === x.length && e.rawLength === x.rawLength && e.compressed === x.compressed;
  });
}
