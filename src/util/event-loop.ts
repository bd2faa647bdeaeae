/**
 * A walk awaits promises that are nearly always settled already (a parent tree read ahead, room
 * in a budget), so it can run for seconds without giving the event loop a turn, and meanwhile
 * no I/O completes and no worker's message is read: workers sat idle with their answers
 * unread, and a restore's first pack read completed only when the walk first had to wait
 * (1.5 s late on the kernel tree). A walk asks this at each entry for a turn every few ms.
 */
export class EventLoopTurns {
  private last = performance.now();

  constructor(private readonly everyMs: number) {}

  /** A promise that settles on the next turn of the event loop when one is due, else undefined. */
  due(): Promise<void> | undefined {
    if (performance.now() - this.last < this.everyMs) return undefined;
    return new Promise((resolve) =>
      setImmediate(() => {
        this.last = performance.now();
        resolve();
      }),
    );
  }
}
