import { STATE_HOLE, STATE_ZERO, type Extent } from '../../src/volume/nbd/protocol.js';
import type { BlockExport, ReadPiece } from '../../src/volume/nbd/export.js';

const BLOCK = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/**
 * A sparse export in memory, for testing the NBD server against real clients: blocks exist
 * only once written non-zero, so holes and zero writes are visible in `blocks`.
 */
export class MemoryExport implements BlockExport {
  readonly preferredBlock = BLOCK;
  readonly blocks = new Map<number, Buffer>();
  flushes = 0;
  /** zero() calls that may give space back (TRIM, punch hole), and those that may not. */
  holes = 0;
  zeroes = 0;
  /** The longest write asked for: how large a client's requests get. */
  largestWrite = 0;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly readOnly = false,
    readonly description = `memory export ${name}`,
  ) {}

  async read(offset: number, length: number): Promise<ReadPiece[]> {
    const pieces: ReadPiece[] = [];
    for (let at = offset; at < offset + length; ) {
      const b = Math.floor(at / BLOCK);
      const from = at - b * BLOCK;
      const n = Math.min(BLOCK - from, offset + length - at);
      const block = this.blocks.get(b);
      const last = pieces[pieces.length - 1];
      if (block) pieces.push(block.subarray(from, from + n));
      else if (last && !Buffer.isBuffer(last)) last.zeros += n;
      else pieces.push({ zeros: n });
      at += n;
    }
    return pieces;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.largestWrite = Math.max(this.largestWrite, data.length);
    this.update(offset, data.length, (block, from, at, n) => data.copy(block, from, at - offset, at - offset + n));
  }

  async zero(offset: number, length: number, hole: boolean): Promise<void> {
    if (hole) this.holes++;
    else this.zeroes++;
    this.update(offset, length, (block, from, _at, n) => block.fill(0, from, from + n), hole);
  }

  async flush(): Promise<void> {
    this.flushes++;
  }

  allocatedBytes(): number {
    return this.blocks.size * BLOCK;
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    const out: Extent[] = [];
    const keys = [...this.blocks.keys()].sort((a, b) => a - b);
    let at = offset;
    const end = Math.min(this.size, offset + length);
    while (at < end) {
      const b = Math.floor(at / BLOCK);
      if (this.blocks.has(b)) {
        const n = (b + 1) * BLOCK - at;
        push(out, n, 0);
        at += n;
      } else {
        const next = keys.find((k) => k > b);
        const stop = Math.min(this.size, next === undefined ? this.size : next * BLOCK);
        push(out, stop - at, STATE_HOLE | STATE_ZERO);
        at = stop;
      }
    }
    return out;
  }

  private update(offset: number, length: number, fn: (block: Buffer, from: number, at: number, n: number) => void, hole = false): void {
    for (let at = offset; at < offset + length; ) {
      const b = Math.floor(at / BLOCK);
      const from = at - b * BLOCK;
      const n = Math.min(BLOCK - from, offset + length - at);
      if (hole && n === BLOCK) this.blocks.delete(b);
      else {
        let block = this.blocks.get(b);
        if (!block) this.blocks.set(b, (block = Buffer.alloc(BLOCK)));
        fn(block, from, at, n);
        if (block.equals(ZERO_BLOCK)) this.blocks.delete(b);
      }
      at += n;
    }
  }
}

function push(out: Extent[], length: number, flags: number): void {
  const last = out[out.length - 1];
  if (last && last.flags === flags) last.length += length;
  else out.push({ length, flags });
}
