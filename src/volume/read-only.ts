import type { BlobReader } from '../repository/repository.js';
import type { BlockMapReader, BlockMapRef } from '../tree/block-map.js';
import type { Node } from '../tree/node.js';
import { openBlockMap } from '../tree/walk.js';
import { blockStatus } from './block-status.js';
import { NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';
import { Errno, type Extent } from './nbd/protocol.js';
import { readBlocks, StoredBlocks } from './stored-blocks.js';

/**
 * A committed version of a volume (or its head) served read-only through its block map. Needs
 * no cache and no volume lock: what it serves never changes.
 */
export class MapExport implements BlockExport {
  readonly readOnly = true;
  readonly size: number;
  readonly preferredBlock: number;
  private readonly map: BlockMapReader;
  private readonly blocks: StoredBlocks;

  constructor(
    reader: BlobReader,
    readonly name: string,
    readonly description: string,
    node: Node & { blockMap: BlockMapRef },
    readCacheBytes: number,
  ) {
    this.size = node.size;
    const ref = node.blockMap;
    this.preferredBlock = ref.blockSize;
    this.map = openBlockMap(reader, ref);
    this.blocks = new StoredBlocks(reader, node.size, ref.blockSize, readCacheBytes);
  }

  async write(): Promise<void> {
    throw new NbdError(Errno.EPERM, 'a committed version is read-only');
  }

  async zero(): Promise<void> {
    throw new NbdError(Errno.EPERM, 'a committed version is read-only');
  }

  async flush(): Promise<void> {}

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    const lookup = { get: (block: number) => this.map.lookup(block) };
    return readBlocks(offset, length, this.preferredBlock, (n) => this.blocks.read(lookup, n));
  }

  extents(offset: number, length: number): Promise<Extent[]> {
    return blockStatus(this.map, offset, length, this.size, this.preferredBlock);
  }
}
