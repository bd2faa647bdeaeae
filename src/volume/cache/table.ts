
/** Where a record lies in the log and what part of its block it covers. */
export interface Rec {
  seq: number;
  seg: number;
  pos: number;
  /** Offset in the block. */
  at: number;
  len: number;
  /** A zero record (TRIM, WRITE_ZEROES): no payload. */
  zero: boolean;
}

/**
 * A block's content: `full` (a whole-block record) or, when absent, the block in the repository,
 * with `overlays` applied in order. Arrays are never changed once made (a new one replaces
 * them), so a frozen version may share them.
 */
export interface BlockVersion {
  full?: Rec;
  overlays: readonly Rec[];
}

export interface BlockState extends BlockVersion {
  readonly block: number;
  /** The first seq written since the block was last clean: uploads go oldest first. */
  firstSeq: number;
  lastSeq: number;
  /** When it was last written, in ms after the table's epoch (small integers take no heap number). */
  lastWrite: number;
}

const NO_OVERLAYS: readonly Rec[] = Object.freeze([]);

export interface DirtyBlock {
  block: number;
  firstSeq: number;
  lastSeq: number;
  lastWrite: number;
}

/** Beyond this many overlays a block whose base is local is merged into one full record. */
export const MAX_OVERLAYS = 16;

/** Whether the overlays together cover bytes [0, len): then the base is never read. */
export function coversBlock(overlays: readonly Rec[], len: number): boolean {
  const spans = overlays.map((o) => [o.at, o.at + o.len]).sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [from, to] of spans) {
    if (from > end) return false;
    end = Math.max(end, to);
  }
  return end >= len;
}

export function baseIsLocal(v: BlockVersion, len: number): boolean {
  return v.full !== undefined || coversBlock(v.overlays, len);
}

export function minSegmentOf(v: BlockVersion): number {
  let min = v.full?.seg ?? Infinity;
  for (const o of v.overlays) min = Math.min(min, o.seg);
  return min;
}

/** The dirty blocks: their content in the log. */
export class BlockTable {
  /** Least recently written first: a write moves its block to the end. */
  private readonly blocks = new Map<number, BlockState>();
  private readonly epoch = Date.now();
  /** Sum of the lengths of the dirty blocks. */
  bytes = 0;

  constructor(private readonly blockLength: (block: number) => number) {}

  get size(): number {
    return this.blocks.size;
  }

  get(block: number): BlockState | undefined {
    return this.blocks.get(block);
  }

  /** Applies a record written to `block` at `now` (Date.now(), or 0: long ago); a record covering the block replaces what was there. */
  apply(block: number, rec: Rec, now: number): void {
    const len = this.blockLength(block);
    const at = now === 0 ? -this.epoch : now - this.epoch;
    let s = this.blocks.get(block);
    if (!s) {
      s = { block, overlays: NO_OVERLAYS, firstSeq: rec.seq, lastSeq: rec.seq, lastWrite: at };
      this.bytes += len;
    }
    if (rec.at === 0 && rec.len === len) {
      s.full = rec;
      s.overlays = NO_OVERLAYS;
    } else {
      // An overlay entirely under the new one can never show again.
      // concat allocates exactly what it needs, where push would grow the array by half again.
      s.overlays = s.overlays.filter((o) => o.at < rec.at || o.at + o.len > rec.at + rec.len).concat(rec);
    }
    s.lastSeq = Math.max(s.lastSeq, rec.seq);
    s.lastWrite = at;
    this.blocks.delete(block);
    this.blocks.set(block, s);
  }

  /** The block's content as of its lastSeq is now in one full record. */
  merged(block: number, rec: Rec): void {
    const s = this.blocks.get(block)!;
    s.full = rec;
    s.overlays = NO_OVERLAYS;
  }

  /**
   * The content as of `seq` is in the repository: records up to `seq` are no longer needed (the
   * repository is the base now); the block leaves the table when nothing newer is left.
   * Returns the dropped records, which the log keeps until the repository's state is durable.
   */
  clean(block: number, seq: number): Rec[] {
    const s = this.blocks.get(block);
    if (!s) return [];
    const recs = s.full ? [s.full, ...s.overlays] : [...s.overlays];
    if (s.lastSeq <= seq) {
      this.blocks.delete(block);
      this.bytes -= this.blockLength(block);
      return recs;
    }
    const dropped = recs.filter((r) => r.seq <= seq);
    if (dropped.length === 0) return [];
    if (s.full && s.full.seq <= seq) s.full = undefined;
    s.overlays = s.overlays.filter((o) => o.seq > seq);
    // A merged full record carries the seq of the newest write it holds; firstSeq goes past `seq` either way.
    s.firstSeq = Math.min(s.full?.seq ?? Infinity, ...s.overlays.map((o) => o.seq));
    return dropped;
  }

  /** The lowest segment number any dirty block still needs. */
  minSegment(): number {
    let min = Infinity;
    for (const s of this.blocks.values()) min = Math.min(min, minSegmentOf(s));
    return min;
  }

  /**
   * Least recently written first: what has been left alone longest (a lazy, cheap order: no
   * sorting). A write during the iteration would move its block to the end and meet it again:
   * iterate without writing in between (every caller walks it synchronously).
   */
  *quiet(): Generator<DirtyBlock> {
    for (const s of this.blocks.values()) yield { block: s.block, firstSeq: s.firstSeq, lastSeq: s.lastSeq, lastWrite: s.lastWrite + this.epoch };
  }

  /** The blocks of [from, to) the table holds, in order. */
  heldBetween(from: number, to: number): number[] {
    const out: number[] = [];
    if (to - from <= this.blocks.size) {
      for (let b = from; b < to; b++) if (this.blocks.has(b)) out.push(b);
      return out;
    }
    for (const b of this.blocks.keys()) if (b >= from && b < to) out.push(b);
    return out.sort((a, b) => a - b);
  }

  /** Oldest firstSeq first, sorted when asked (nothing on the write path keeps the order); blocks made dirty during the iteration are left out. */
  *dirty(): Generator<DirtyBlock> {
    const states = [...this.blocks.values()].sort((a, b) => a.firstSeq - b.firstSeq);
    for (const s of states) if (this.blocks.get(s.block) === s) yield { block: s.block, firstSeq: s.firstSeq, lastSeq: s.lastSeq, lastWrite: s.lastWrite + this.epoch };
  }
}
