/**
 * A binary min-heap; `before(a, b)` is the order. `moved(item, index)` is told every item's new
 * place, so an item that knows its index can be removed or re-placed after its key changed.
 */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly moved: (item: T, index: number) => void = () => undefined,
  ) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.place(item, this.items.length);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    if (this.items.length === 0) return undefined;
    const top = this.items[0];
    this.removeAt(0);
    return top;
  }

  removeAt(i: number): void {
    const last = this.items.pop()!;
    if (i === this.items.length) return;
    this.place(last, i);
    this.fix(i);
  }

  /** Restores the order after the key of the item at `i` changed. */
  fix(i: number): void {
    this.down(this.up(i));
  }

  private place(item: T, i: number): void {
    this.items[i] = item;
    this.moved(item, i);
  }

  private up(i: number): number {
    const a = this.items;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(a[i], a[parent])) break;
      const item = a[i];
      this.place(a[parent], i);
      this.place(item, parent);
      i = parent;
    }
    return i;
  }

  private down(i: number): void {
    const a = this.items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.before(a[l], a[m])) m = l;
      if (r < a.length && this.before(a[r], a[m])) m = r;
      if (m === i) return;
      const item = a[i];
      this.place(a[m], i);
      this.place(item, m);
      i = m;
    }
  }

  /**
   * The items in order without popping: a second heap over positions walks the tree from the
   * root, so the first k items cost O(k log k), not a sort of the whole heap. The walk is over a
   * copy of the positions: changes meanwhile do not disturb it.
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
