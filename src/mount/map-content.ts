import { IntegrityError } from '../errors.js';
import type { BlobReader } from '../repository/repository.js';
import type { BlockMapReader, BlockMapRef } from '../tree/block-map.js';
import { mapAllocatedBytes, openBlockMap } from '../tree/walk.js';
import type { BlobCache } from './blob-cache.js';
import { joinPieces, zeroBytes } from './file-content.js';

/** Decoded map nodes kept per open volume file: 16 MiB holds the path to ~100 GiB of 64 KiB blocks. */
const NODE_CACHE_BYTES = 16 * 1024 * 1024;

/**
 * A volume's image (a file whose content is a block map) as random access, with FileContent's
 * read: an offset's block is looked up in the map, an absent one reads as zeros without a load,
 * a present one comes from the blob cache. A read that continues the last one loads the next
 * blocks ahead.
 */
export class MapContent {
  private readonly map: BlockMapReader;
  private lastBlock = -2;

  constructor(
    private readonly reader: BlobReader,
    ref: BlockMapRef,
    private readonly size: number,
    private readonly cache: BlobCache,
    /** Blocks loaded ahead of a sequential reader. */
    private readonly ahead: number,
  ) {
    this.map = openBlockMap(reader, ref, { cacheBytes: NODE_CACHE_BYTES });
  }

  private get blockSize(): number {
    return this.map.ref.blockSize;
  }

  /** Up to `size` bytes from `offset`, as slices of blocks in order; fewer only at the end of the image. */
  async read(offset: number, size: number): Promise<Buffer[]> {
    if (offset >= this.size || size === 0) return [];
    const end = Math.min(this.size, offset + size);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((end - 1) / this.blockSize);
    if (first === this.lastBlock || first === this.lastBlock + 1) this.readAhead(last + 1);
    this.lastBlock = last;
    const pieces: Buffer[] = [];
    for (let b = first; b <= last; b++) {
      const start = b * this.blockSize;
      const block = await this.block(b);
      pieces.push(block.subarray(Math.max(0, offset - start), Math.min(block.length, end - start)));
    }
    return joinPieces(pieces);
  }

  /** The block's bytes: exactly its share of the image, the last one possibly shorter. */
  private async block(b: number): Promise<Buffer> {
    const length = this.blockLength(b);
    const id = await this.map.lookup(b);
    if (!id) return zeroBytes(length);
    const data = await this.cache.get(this.reader, id, length);
    if (data.length !== length) throw new IntegrityError(`block ${b} (blob ${id.toString('hex').slice(0, 12)})`, `${data.length} bytes where the image has ${length}`);
    return data;
  }

  private blockLength(b: number): number {
    return Math.min(this.blockSize, this.size - b * this.blockSize);
  }

  private readAhead(from: number): void {
    const to = Math.min(Math.ceil(this.size / this.blockSize), from + this.ahead);
    for (let b = from; b < to; b++) {
      // Observed when read; a failure here is only a read-ahead that did not happen.
      this.map
        .lookup(b)
        .then((id) => (id && !this.cache.has(this.reader, id) ? this.cache.get(this.reader, id, this.blockLength(b)) : undefined))
        .catch(() => undefined);
    }
  }
}

/** Bytes a volume's image allocates (its present blocks); a map whose root does not load counts as none here: it fails reads, not listings. */
export async function allocatedBytes(reader: BlobReader, ref: BlockMapRef): Promise<number> {
  try {
    return await mapAllocatedBytes(reader, ref);
  } catch (err) {
    if (err instanceof IntegrityError) return 0;
    throw err;
  }
}
