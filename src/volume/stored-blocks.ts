import { IntegrityError } from '../errors.js';
import { BlobCache } from '../mount/blob-cache.js';
import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import type { ReadPiece } from './nbd/export.js';

/** What a version of the block map answers: the data blob of a block, or null for zeros. */
export interface BlockLookup {
  get(block: number): Promise<Buffer | null>;
}

/**
 * Block contents as the repository holds them, under whichever version of the map is asked
 * (the live one, or a commit's fork): decrypted blocks are kept in a bounded cache, so the
 * kernel's small reads of one block cost one load.
 */
export class StoredBlocks {
  private readonly cache: BlobCache;

  constructor(
    private readonly reader: BlobReader,
    private readonly size: number,
    private readonly blockSize: number,
    cacheBytes: number,
  ) {
    this.cache = new BlobCache(cacheBytes, (r, id) => r.loadBlob(BlobType.data, id));
  }

  /** The block's bytes, null when the map has none (zeros). */
  async read(map: BlockLookup, block: number): Promise<Buffer | null> {
    const id = await map.get(block);
    if (!id) return null;
    const what = `volume block ${block}`;
    const loc = this.reader.find(BlobType.data, id);
    if (!loc) throw new IntegrityError(what, `its blob ${id.toString('hex').slice(0, 12)} is not in the index (missing pack or index)`);
    // A map from a hostile writer may name a blob of any length: the block is refused, not served short or long.
    const expected = Math.min(this.blockSize, this.size - block * this.blockSize);
    if (loc.rawLength !== expected) throw new IntegrityError(what, `its blob holds ${loc.rawLength} bytes, not ${expected}`);
    return this.cache.get(this.reader, id, loc.rawLength);
  }
}

/**
 * The pieces of a read of [offset, offset + length) over blocks of `blockSize`, each block's
 * bytes from `block` (null: zeros), all fetched at once; runs of zeros become one piece.
 */
export async function readBlocks(offset: number, length: number, blockSize: number, block: (n: number) => Promise<Buffer | null>): Promise<ReadPiece[]> {
  const spans: { n: number; from: number; len: number }[] = [];
  for (let at = offset; at < offset + length; ) {
    const n = Math.floor(at / blockSize);
    const from = at - n * blockSize;
    const len = Math.min(blockSize - from, offset + length - at);
    spans.push({ n, from, len });
    at += len;
  }
  const data = await Promise.all(spans.map((s) => block(s.n)));
  const pieces: ReadPiece[] = [];
  spans.forEach((s, k) => {
    const d = data[k];
    const last = pieces[pieces.length - 1];
    if (d) pieces.push(d.subarray(s.from, s.from + s.len));
    else if (last && !Buffer.isBuffer(last)) last.zeros += s.len;
    else pieces.push({ zeros: s.len });
  });
  return pieces;
}
