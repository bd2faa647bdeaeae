import type { MutableBlockMap } from '../tree/block-map.js';
import type { VolumeCache } from './cache/volume-cache.js';
import { NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';
import { blockStatus } from './block-status.js';
import { Errno, type Extent } from './nbd/protocol.js';
import { readBlocks, type StoredBlocks } from './stored-blocks.js';

export interface VolumeShape {
  name: string;
  description: string;
  size: number;
  blockSize: number;
}

/**
 * A volume being served: writes go to the local write-back cache (and are acknowledged from
 * it), reads take a block from the cache when it holds one and from the repository under the
 * live map otherwise. The uploader moves cached blocks into the repository behind it; this
 * object only answers the front-ends (NBD, the FUSE image), which never see either store.
 */
export class WritableVolume implements BlockExport {
  readonly readOnly = false;
  readonly name: string;
  readonly description: string;
  readonly size: number;
  readonly preferredBlock: number;
  private stopped: string | undefined;
  /** Counts writes and zeroings: what a periodic commit asks "anything new?" of. */
  changes = 0;
  /** Blocks the live map holds, as of its last change (the uploader says). */
  mappedBlocks = 0;

  constructor(
    shape: VolumeShape,
    private readonly cache: VolumeCache,
    private readonly map: MutableBlockMap,
    private readonly stored: StoredBlocks,
    /** Told after every change, so uploads can start. */
    private readonly onChange: () => void,
  ) {
    this.name = shape.name;
    this.description = shape.description;
    this.size = shape.size;
    this.preferredBlock = shape.blockSize;
  }

  /**
   * About the bytes stored (the image file's st_blocks): blocks in the map and blocks only in
   * the cache. A block in both counts twice until uploaded; never more than the size.
   */
  allocatedBytes(): number {
    return Math.min(this.size, (this.mappedBlocks + this.cache.dirtyCount) * this.preferredBlock);
  }

  /** From now on every request fails with ESHUTDOWN (serve is stopping, or its lock was lost). */
  stop(reason: string): void {
    this.stopped ??= reason;
  }

  /** A block's current bytes (null: zeros), wherever it is. */
  block(block: number): Promise<Buffer | null> {
    const base = () => this.stored.read(this.map, block);
    return this.cache.holds(block) ? this.cache.readBlock(block, base) : base();
  }

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    this.check();
    return readBlocks(offset, length, this.preferredBlock, (n) => this.block(n));
  }

  async write(offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.check();
    await this.cache.write(offset, data);
    this.changes++;
    this.onChange();
    if (fua) await this.cache.sync();
  }

  async zero(offset: number, length: number, _hole: boolean, fua: boolean): Promise<void> {
    this.check();
    // Zeros cost nothing stored either way: a zeroed block leaves the map, so `hole` needs no case of its own.
    await this.cache.zero(offset, length);
    this.changes++;
    this.onChange();
    if (fua) await this.cache.sync();
  }

  async flush(): Promise<void> {
    this.check();
    await this.cache.sync();
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    this.check();
    return blockStatus(this.map, offset, length, this.size, this.preferredBlock, this.cache);
  }

  private check(): void {
    if (this.stopped) throw new NbdError(Errno.ESHUTDOWN, this.stopped);
  }
}
