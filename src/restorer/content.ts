import { IntegrityError } from '../errors.js';
import type { BlobLocation } from '../repository/blob-index.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';

export interface ContentPiece {
  data: Buffer;
  /** All zero: known from the blob's ID, without loading or decrypting it. */
  zero: boolean;
}

/**
 * Whether a blob is the canonical zero blob of its length, which the archiver stores for empty
 * disk regions: recognised by its ID, it never needs loading.
 */
export function isZeroBlob(reader: BlobReader, id: Buffer, loc: BlobLocation): boolean {
  // Zeros compress more than 64-fold; only such blobs are worth comparing with the zero blob's ID.
  return loc.compressed && loc.length * 64 < loc.rawLength && reader.zeroBlobId(loc.rawLength).equals(id);
}

/** The index entry of a content blob; a blob the index lacks is damage to the file that needs it. */
export function locate(reader: BlobReader, id: Buffer): BlobLocation {
  const loc = reader.find(BlobType.data, id);
  if (!loc) throw new IntegrityError(`blob ${id.toString('hex').slice(0, 12)}`, 'not in the index (missing pack or index)');
  return loc;
}

/**
 * Reads a file's content blob by blob, in order, with several loads in flight (remote
 * repositories are bound by latency): for streams (dump) and disk images, which are written in order.
 */
export function readContent(reader: BlobReader, ids: readonly Buffer[]): AsyncGenerator<ContentPiece> {
  return inOrder(ids, reader.backend.connections, (id) => loadPiece(reader, id));
}

/** One content blob, loaded (a zero blob is known by its ID). */
export async function loadPiece(reader: BlobReader, id: Buffer): Promise<ContentPiece> {
  const loc = locate(reader, id);
  if (isZeroBlob(reader, id, loc)) return { data: Buffer.alloc(loc.rawLength), zero: true };
  return { data: await reader.loadBlob(BlobType.data, id), zero: false };
}
