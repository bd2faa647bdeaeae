/**
 * Yields load(item) for each item in order while up to `ahead` loads run at once. A failed
 * load is raised when its turn comes; loads started after it are then left to finish unobserved.
 * The items may come from an async source (a volume's map is read as it goes).
 */
export async function* inOrder<T, R>(items: Iterable<T> | AsyncIterable<T>, ahead: number, load: (item: T) => Promise<R>): AsyncGenerator<R> {
  const source = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  const started: Promise<R>[] = [];
  let ended = false;
  const fill = async () => {
    while (!ended && started.length < Math.max(1, ahead)) {
      const next = await source.next();
      if (next.done) ended = true;
      else {
        const p = load(next.value);
        p.catch(() => undefined); // observed when its turn comes; never an unhandled rejection
        started.push(p);
      }
    }
  };
  try {
    await fill();
    while (started.length) {
      const value = await started.shift()!;
      await fill();
      yield value;
    }
  } finally {
    if (!ended) await source.return?.();
  }
}
