import { IntegrityError } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import { inOrder } from '../util/in-order.js';

export interface ContentPiece {
  data: Buffer;
  /** All zero: known from the blob's ID, without loading or decrypting it. */
  zero: boolean;
}

/**
 * Reads a file's content blob by blob, in order, with several loads in flight (remote
 * repositories are bound by latency). The canonical zero blob of each length, which the
 * archiver stores for empty disk regions, is recognised by its ID and never loaded.
 */
export function readContent(repo: Repository, ids: readonly Buffer[]): AsyncGenerator<ContentPiece> {
  return inOrder(ids, repo.backend.connections, async (id): Promise<ContentPiece> => {
    const loc = repo.index.find(id);
    if (!loc) throw new IntegrityError(`blob ${id.toString('hex').slice(0, 12)}`, 'not in the index (missing pack or index)');
    // Zeros compress more than 64-fold; only such blobs are worth comparing with the zero blob's ID.
    if (loc.compressed && loc.length * 64 < loc.rawLength && repo.zeroBlobId(loc.rawLength).equals(id)) return { data: Buffer.alloc(loc.rawLength), zero: true };
    return { data: await repo.loadBlob(id), zero: false };
  });
}
