import type { MutableBlockMap } from '../tree/block-map.js';
import type { VolumeCache } from './cache/volume-cache.js';
import { NbdError, type BlockExport, type ReadPiece } from './nbd/export.js';
import { Errno, STATE_HOLE, STATE_ZERO, type Extent } from './nbd/protocol.js';
import { readBlocks, type StoredBlocks } from './stored-blocks.js';

/** How many blocks one BLOCK_STATUS answer looks at, at most: a client asks again for the rest. */
const MAX_STATUS_BLOCKS = 1 << 16;

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

  /**
   * base:allocation: a block the cache holds is data unless a zero record is all it holds (data
   * is always allowed to say, even of zeros), others as the live map has them, holes as whole
   * runs. A block the map has and the cache zeroed still says data until uploaded.
   */
  async extents(offset: number, length: number): Promise<Extent[]> {
    this.check();
    const B = this.preferredBlock;
    const first = Math.floor(offset / B);
    const end = Math.min(Math.ceil(Math.min(this.size, offset + length) / B), first + MAX_STATUS_BLOCKS);
    const out: Extent[] = [];
    const push = (block: number, count: number, flags: number) => {
      const from = Math.max(offset, block * B);
      const to = Math.min(this.size, (block + count) * B);
      const last = out[out.length - 1];
      if (last && last.flags === flags) last.length += to - from;
      else out.push({ length: to - from, flags });
    };
    // The cache first: a block leaves it only after the map has it, so one seen in neither is a hole.
    const held = this.cache.heldBetween(first, end);
    let h = 0;
    for await (const run of this.map.extents(first, end)) {
      if (run.id) {
        push(run.block, run.count, 0);
        continue;
      }
      let at = run.block;
      const stop = run.block + run.count;
      while (h < held.length && held[h]! < run.block) h++;
      for (; h < held.length && held[h]! < stop; h++) {
        if (held[h]! > at) push(at, held[h]! - at, STATE_HOLE | STATE_ZERO);
        push(held[h]!, 1, this.cache.zeroed(held[h]!) ? STATE_HOLE | STATE_ZERO : 0);
        at = held[h]! + 1;
      }
      if (at < stop) push(at, stop - at, STATE_HOLE | STATE_ZERO);
    }
    return out;
  }

  private check(): void {
    if (this.stopped) throw new NbdError(Errno.ESHUTDOWN, this.stopped);
  }
}
