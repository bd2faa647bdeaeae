/**
 * Admits work while its total size stays within a limit. A single item larger than the limit
 * is admitted when nothing else is in flight, so it cannot wait forever.
 */
export class Budget {
  private used = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async admit(size: number): Promise<void> {
    while (this.used > 0 && this.used + size > this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used += size;
  }

  release(size: number): void {
    this.used -= size;
    for (const wake of this.waiting.splice(0)) wake();
  }
}
