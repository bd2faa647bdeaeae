/** A binary min-heap; `before(a, b)` is the order. */
export class MinHeap<T> {
  constructor(
    private readonly before: (a: T, b: T) => boolean,
    readonly items: T[] = [],
  ) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    let i = a.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.before(a[l], a[m])) m = l;
        if (r < a.length && this.before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }

  /**
   * The items in order without popping: a second heap over positions walks the tree from the root,
   * so the first k items cost O(k log k), not a sort of the whole heap. The walk is over a copy:
   * pushes and pops meanwhile do not disturb it.
   */
  *ordered(): Generator<T> {
    const a = this.items.slice();
    if (a.length === 0) return;
    const frontier = new MinHeap<number>((x, y) => this.before(a[x], a[y]));
    frontier.push(0);
    for (let i = frontier.pop(); i !== undefined; i = frontier.pop()) {
      yield a[i];
      if (2 * i + 1 < a.length) frontier.push(2 * i + 1);
      if (2 * i + 2 < a.length) frontier.push(2 * i + 2);
    }
  }
}
