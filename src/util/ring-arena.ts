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
  /** Regions of `buffer` not yet given back, in ring order from the oldest: the first is the tail. */
  private readonly lent: Region[] = [];
  private readonly waiters: { size: number; resolve: (r: Region) => void }[] = [];
  /** Woken by every release: a region waiting to grow (see grow). */
  private readonly growers: (() => void)[] = [];

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
    this.checkFits(size);
    const region = this.tryTake(size);
    if (region) return Promise.resolve(region);
    return new Promise((resolve) => this.waiters.push({ size, resolve }));
  }

  /** Gives a region back; the ring reuses its bytes once every region lent before it (or after it) is back too. */
  release(region: Region): void {
    region.released = true;
    while (this.lent.length > 0 && this.lent[0]!.released) this.lent.shift();
    // The newest regions' bytes join the free room at once (a region growing behind them needs it).
    while (this.lent.length > 0 && this.lent.at(-1)!.released) this.lent.pop();
    while (this.waiters.length > 0) {
      const region = this.fit(this.waiters[0]!.size);
      if (!region) break;
      this.waiters.shift()!.resolve(region);
    }
    for (const wake of this.growers.splice(0)) wake();
  }

  /** A lent region as two, its first `length` bytes and the rest, given back each on its own. */
  split(region: Region, length: number): [Region, Region] {
    if (length === region.bytes.length) return [region, this.empty()];
    const i = this.indexOf(region);
    const head = { bytes: region.bytes.subarray(0, length), start: region.start, released: false };
    const rest = { bytes: region.bytes.subarray(length), start: region.start + length, released: false };
    this.lent.splice(i, 1, head, rest);
    return [head, rest];
  }

  /**
   * A lent region grown to `size` bytes, its first `keep` bytes kept; it replaces `region`. In
   * place when the bytes after it are free (it is the newest), else moved: to a new region
   * once one fits, or, if it is the only region lent and none does, to the ring's start.
   */
  async grow(region: Region, keep: number, size: number): Promise<Region> {
    if (region.bytes.length === 0) return this.take(size);
    this.checkFits(size);
    for (;;) {
      const i = this.indexOf(region);
      if (i === this.lent.length - 1 && region.start + size <= this.freeEnd()) return this.replace(i, region.start, size);
      const moved = this.tryTake(size);
      if (moved) {
        moved.bytes.set(region.bytes.subarray(0, keep));
        this.release(region);
        return moved;
      }
      if (this.lent.length === 1) {
        this.buffer.copyWithin(0, region.start, region.start + keep);
        return this.replace(0, 0, size);
      }
      await new Promise<void>((wake) => this.growers.push(wake));
    }
  }

  private replace(i: number, start: number, size: number): Region {
    const region = { bytes: this.buffer.subarray(start, start + size), start, released: false };
    this.lent[i] = region;
    return region;
  }

  private checkFits(size: number): void {
    if (size > this.buffer.length) throw new RangeError(`a region of ${size} bytes does not fit a ring of ${this.buffer.length}`);
  }

  private indexOf(region: Region): number {
    const i = this.lent.lastIndexOf(region);
    if (i < 0 || region.released) throw new Error('not a region lent by this ring');
    return i;
  }

  /**
   * An empty region is never lent: one at the start of the oldest would look like the end of a
   * full ring's newest, and room would be found where there is none.
   */
  private empty(): Region {
    return { bytes: this.buffer.subarray(0, 0), start: 0, released: false };
  }

  private fit(size: number): Region | undefined {
    if (size === 0) return this.empty();
    const start = this.place(size);
    if (start === undefined) return undefined;
    const region = { bytes: this.buffer.subarray(start, start + size), start, released: false };
    this.lent.push(region);
    return region;
  }

  /** Where the free bytes after the newest region end: at the oldest region once the ring has wrapped, else at the buffer's end. */
  private freeEnd(): number {
    const oldest = this.lent[0]!;
    return this.lent.at(-1)!.start < oldest.start ? oldest.start : this.buffer.length;
  }

  /** Where `size` bytes fit between the newest region and the oldest, or undefined. */
  private place(size: number): number | undefined {
    const oldest = this.lent[0];
    const newest = this.lent.at(-1);
    if (!oldest || !newest) return size <= this.buffer.length ? 0 : undefined;
    const head = newest.start + newest.bytes.length;
    const end = this.freeEnd();
    if (head + size <= end) return head;
    // Not wrapped yet: the ring wraps, to the room before the oldest.
    return end === this.buffer.length && size <= oldest.start ? 0 : undefined;
  }
}
