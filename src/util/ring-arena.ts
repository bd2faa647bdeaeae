/** Bytes lent by a RingArena until released. */
export interface Region {
  readonly bytes: Buffer;
  /** Where the bytes lie in their ring's buffer. */
  readonly start: number;
  released: boolean;
}

/**
 * Memory for data that lives from one job to a later one, lent in the order it is given back
 * (nearly always), from one buffer used as a ring: it holds what is in flight and no more,
 * however many jobs share it, and reuse makes no garbage. A fixed block per job cost far more:
 * a job of a few tiny files held as much as one of large ones.
 *
 * The ring starts small and grows to what the load needs: when a region does not fit, a
 * buffer twice as large (at least) becomes the ring; the old one is dropped with its last
 * region.
 */
export class RingArena {
  private buffer: Buffer;
  /** Regions of `buffer` not yet given back, in the order they were lent; the first is the tail. */
  private readonly lent: Region[] = [];

  /** `allocate`: where rings come from (shared memory, for a ring whose regions other threads read). */
  constructor(
    initialBytes: number,
    private readonly allocate: (size: number) => Buffer = Buffer.allocUnsafeSlow,
  ) {
    this.buffer = allocate(initialBytes);
  }

  get capacity(): number {
    return this.buffer.length;
  }

  take(size: number): Region {
    const region = this.tryTake(size);
    if (region) return region;
    this.buffer = this.allocate(Math.max(2 * this.buffer.length, size));
    this.lent.length = 0;
    return this.lend(0, size);
  }

  /** A region if one fits now, without growing the ring. */
  tryTake(size: number): Region | undefined {
    const start = this.place(size);
    return start === undefined ? undefined : this.lend(start, size);
  }

  private lend(start: number, size: number): Region {
    const region = { bytes: this.buffer.subarray(start, start + size), start, released: false };
    this.lent.push(region);
    return region;
  }

  /** Gives a region back; the ring reuses its bytes once every region lent before it is back too. */
  release(region: Region): void {
    region.released = true;
    while (this.lent.length > 0 && this.lent[0]!.released) this.lent.shift();
  }

  /** Where `size` bytes fit between the newest region and the oldest, or undefined. */
  private place(size: number): number | undefined {
    const oldest = this.lent[0];
    const newest = this.lent.at(-1);
    if (!oldest || !newest) return size <= this.buffer.length ? 0 : undefined;
    const head = newest.start + newest.bytes.length;
    const wrapped = newest.start < oldest.start;
    if (wrapped) return head + size <= oldest.start ? head : undefined;
    if (head + size <= this.buffer.length) return head;
    return size <= oldest.start ? 0 : undefined;
  }
}
