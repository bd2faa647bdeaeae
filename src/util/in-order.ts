/**
 * Yields load(item) for each item in order while up to `ahead` loads run at once. A failed
 * load is raised when its turn comes; loads started after it are then left to finish unobserved.
 */
export async function* inOrder<T, R>(items: readonly T[], ahead: number, load: (item: T) => Promise<R>): AsyncGenerator<R> {
  const started: Promise<R>[] = [];
  const start = (i: number) => {
    const p = load(items[i]!);
    p.catch(() => undefined); // observed when its turn comes; never an unhandled rejection
    started[i] = p;
  };
  for (let i = 0; i < Math.min(ahead, items.length); i++) start(i);
  for (let i = 0; i < items.length; i++) {
    const value = await started[i]!;
    delete started[i];
    if (i + ahead < items.length) start(i + ahead);
    yield value;
  }
}

