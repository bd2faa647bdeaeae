/**
 * Admits work while its total size stays within a limit. A single item larger than the limit
 * is admitted when nothing else is in flight, so it cannot wait forever.
 */
export class Budget {
  private used = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  /** Nothing to wait for when there is room now (the walk of a backup admits every small file: no promise each). */
  admit(size: number): Promise<void> | undefined {
    if (!this.mustWait(size)) {
      this.used += size;
      return undefined;
    }
    return this.admitLater(size);
  }

  /** Counts work that is already under way (it holds memory bounded elsewhere): later admissions wait for it. */
  charge(size: number): void {
    this.used += size;
  }

  private async admitLater(size: number): Promise<void> {
    while (this.mustWait(size)) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used += size;
  }

  private mustWait(size: number): boolean {
    return this.used > 0 && this.used + size > this.limit;
  }

  release(size: number): void {
    this.used -= size;
    for (const wake of this.waiting.splice(0)) wake();
  }
}
