interface Cached {
  bytes: Promise<Buffer>;
  /** Known once read; only then counted against the budget. */
  size?: number;
}

/**
 * Whole tree packs, kept in memory after their first read: an incremental backup, a restore or
 * `check` reads every tree of a snapshot, and tree packs hold thousands of them (the Linux
 * source tree: 10,000 trees in one 12 MiB pack). One read per pack instead of one per tree.
 * Bytes are kept as read, not verified as a whole: each blob is still verified on its own, so
 * damage in one tree costs only that tree.
 */
export class TreePackCache {
  /** Oldest first: a Map iterates in insertion order, and a hit re-inserts. */
  private readonly packs = new Map<string, Cached>();
  private size = 0;

  constructor(private readonly budget: number) {}

  /** The pack's bytes, read with `load` unless cached; one read however many ask at once. */
  get(packId: string, load: () => Promise<Buffer>): Promise<Buffer> {
    const hit = this.packs.get(packId);
    if (hit) {
      this.packs.delete(packId);
      this.packs.set(packId, hit);
      return hit.bytes;
    }
    const entry: Cached = { bytes: load() };
    this.packs.set(packId, entry);
    entry.bytes.then(
      (bytes) => {
        if (this.packs.get(packId) !== entry) return;
        entry.size = bytes.length;
        this.size += bytes.length;
        this.evict(packId);
      },
      () => this.drop(packId, entry),
    );
    return entry.bytes;
  }

  /** Forgets a pack (whose bytes failed verification), so the next read loads it again. */
  drop(packId: string, entry = this.packs.get(packId)): void {
    if (!entry || this.packs.get(packId) !== entry) return;
    this.packs.delete(packId);
    this.size -= entry.size ?? 0;
  }

  /** Oldest packs go first; the one just read stays even when it alone exceeds the budget. */
  private evict(keep: string): void {
    for (const id of this.packs.keys()) {
      if (this.size <= this.budget) return;
      if (id !== keep) this.drop(id);
    }
  }
}
