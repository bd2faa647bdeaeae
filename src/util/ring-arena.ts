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
 * The ring never grows: a region that does not fit waits until older ones are back. Waiters
 * are served in order, so a large region is not starved by a stream of small ones.
 */
export class RingArena {
  private readonly buffer: Buffer;
  /** Regions of `buffer` not yet given back, in the order they were lent; the first is the tail. */
  private readonly lent: Region[] = [];
  private readonly waiters: { size: number; resolve: (r: Region) => void }[] = [];

  /** `allocate`: where the ring comes from (shared memory, for a ring whose regions other threads read). */
  constructor(bytes: number, allocate: (size: number) => Buffer = Buffer.allocUnsafeSlow) {
    this.buffer = allocate(bytes);
  }

  get capacity(): number {
    return this.buffer.length;
  }

  /** A region if one fits now and nobody is waiting for room before this caller. */
  tryTake(size: number): Region | undefined {
    return this.waiters.length > 0 ? undefined : this.fit(size);
  }

  /** A region, once there is room for it (after those asked for earlier). */
  take(size: number): Promise<Region> {
    if (size > this.buffer.length) throw new RangeError(`a region of ${size} bytes does not fit a ring of ${this.buffer.length}`);
    const region = this.tryTake(size);
    if (region) return Promise.resolve(region);
    return new Promise((resolve) => this.waiters.push({ size, resolve }));
  }

  /** Gives a region back; the ring reuses its bytes once every region lent before it is back too. */
  release(region: Region): void {
    region.released = true;
    while (this.lent.length > 0 && this.lent[0]!.released) this.lent.shift();
    while (this.waiters.length > 0) {
      const region = this.fit(this.waiters[0]!.size);
      if (!region) return;
      this.waiters.shift()!.resolve(region);
    }
  }

  private fit(size: number): Region | undefined {
    const start = this.place(size);
    if (start === undefined) return undefined;
    const region = { bytes: this.buffer.subarray(start, start + size), start, released: false };
    this.lent.push(region);
    return region;
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
