import type { MapExtent } from '../tree/block-map.js';
import { STATE_HOLE, STATE_ZERO, type Extent } from './nbd/protocol.js';

/** How many blocks one BLOCK_STATUS answer looks at, and how many extents it gives, at most: a client asks again for the rest. */
const MAX_STATUS_BLOCKS = 1 << 16;
const MAX_EXTENTS = 1024;
const HOLE = STATE_HOLE | STATE_ZERO;

/** A version of a block map as runs (BlockMapReader and MutableBlockMap both give them). */
export interface MapRuns {
  extents(fromBlock: number, toBlock: number): AsyncGenerator<MapExtent>;
}

/** Blocks written since the map was last changed: data, unless a zero record is all there is. */
export interface HeldBlocks {
  /** The held blocks of [from, to), in order. */
  heldBetween(from: number, to: number): number[];
  zeroed(block: number): boolean;
}

/**
 * base:allocation extents of [offset, offset + length) of a volume: blocks the map has are
 * data, absent ones holes (one extent per run however long), and blocks `held` holds (the
 * write-back cache) as it says. The held blocks are listed before the map is walked: a block
 * leaves the cache only after the map has it, so one seen in neither is a hole.
 */
export async function blockStatus(map: MapRuns, offset: number, length: number, size: number, blockSize: number, held?: HeldBlocks): Promise<Extent[]> {
  const first = Math.floor(offset / blockSize);
  const end = Math.min(Math.ceil(Math.min(size, offset + length) / blockSize), first + MAX_STATUS_BLOCKS);
  const cached = held?.heldBetween(first, end) ?? [];
  const out: Extent[] = [];
  const push = (block: number, count: number, flags: number): boolean => {
    const bytes = Math.min(size, (block + count) * blockSize) - Math.max(offset, block * blockSize);
    const last = out[out.length - 1];
    if (last && last.flags === flags) last.length += bytes;
    else if (out.length === MAX_EXTENTS) return false;
    else out.push({ length: bytes, flags });
    return true;
  };
  let h = 0;
  for await (const run of map.extents(first, end)) {
    if (run.id) {
      if (!push(run.block, run.count, 0)) break;
      continue;
    }
    let at = run.block;
    const stop = run.block + run.count;
    while (h < cached.length && cached[h]! < run.block) h++;
    for (; h < cached.length && cached[h]! < stop; h++) {
      const b = cached[h]!;
      if (b > at && !push(at, b - at, HOLE)) return out;
      if (!push(b, 1, held!.zeroed(b) ? HOLE : 0)) return out;
      at = b + 1;
    }
    if (at < stop && !push(at, stop - at, HOLE)) break;
  }
  return out;
}
