import { BlobType } from '../repository/pack.js';
import type { BlobReader } from '../repository/repository.js';
import { BlockMapReader, type BlockMapRef } from '../tree/block-map.js';
import type { Node } from '../tree/node.js';
import { NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';
import { Errno, STATE_HOLE, STATE_ZERO, type Extent } from './nbd/protocol.js';
import { readBlocks, StoredBlocks } from './stored-blocks.js';

/** How many map runs one BLOCK_STATUS answer gives, at most. */
const MAX_EXTENTS = 1024;

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
    this.map = new BlockMapReader(ref, (id) => reader.loadBlob(BlobType.tree, id));
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

  async extents(offset: number, length: number): Promise<Extent[]> {
    const B = this.preferredBlock;
    const out: Extent[] = [];
    const end = Math.min(this.size, offset + length);
    for await (const run of this.map.extents(Math.floor(offset / B), Math.ceil(end / B))) {
      const from = Math.max(offset, run.block * B);
      const to = Math.min(end, (run.block + run.count) * B);
      const flags = run.id ? 0 : STATE_HOLE | STATE_ZERO;
      const last = out[out.length - 1];
      if (last && last.flags === flags) last.length += to - from;
      else if (out.length === MAX_EXTENTS) break;
      else out.push({ length: to - from, flags });
    }
    return out;
  }
}
