import { ID_BYTES } from './ids.js';
import type { BlobType, PackEntry } from './pack.js';

/** A pack as the index knows it: enough to read any blob without opening the pack first. */
export interface PackInfo {
  id: Buffer;
  type: BlobType;
  /** Who wrote it (Writers' number): its blobs are named with that writer's key. */
  writer: number;
  /** The pack's key envelope (see pack.ts), so a blob read needs one ranged request. */
  envelope: Buffer;
  /** Listed by an index file but gone from the repository: its blobs count as absent. */
  missing?: boolean;
  /** When a prune found it unused and marked it for deletion (ms since the epoch): its blobs are read, never deduplicated against. */
  markedAt?: number;
}

export interface BlobLocation {
  pack: PackInfo;
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

const META_WORDS = 4;
/** rawLength's top bit, in the index's words as in index files (index-file.ts). */
export const COMPRESSED_BIT = 0x80000000;

/**
 * Every blob in the repository, keyed by its type, its 32-byte ID and its writer: writers name
 * blobs with keys of their own, and a snapshot refers only to blobs of its writer, so a blob
 * another writer claims (even a forged claim) can never stand in for one. Stored flat (IDs in one buffer,
 * locations in one Uint32Array, an open-addressing table of entry numbers) so that tens of
 * millions of blobs cost about 60 bytes each and no per-blob objects exist for the GC.
 */
export class BlobIndex {
  readonly packs: PackInfo[] = [];
  private readonly packNumbers = new Map<string, number>();
  private ids = Buffer.alloc(0);
  private meta = new Uint32Array(0);
  private table = new Int32Array(0);
  private count = 0;

  get size(): number {
    return this.count;
  }

  /**
   * Adds a pack's blobs. A blob already indexed elsewhere (same type and writer) keeps its first
   * location, and this one stays behind it: found once the first pack is missing (a blob stored
   * again after its pack was lost). A pack is known per writer: another writer's index file
   * naming the same pack (forged, to shadow it) adds a pack of its own, which only its own
   * snapshots can reach.
   */
  addPack(pack: PackInfo, entries: readonly PackEntry[]): void {
    const key = `${pack.writer}:${pack.id.toString('hex')}`;
    const known = this.packNumbers.get(key);
    if (known !== undefined) {
      // Listed again (a prune's new index beside the old until it removes them): a mark in
      // either listing counts, else a backup could refer to a pack about to go.
      const first = this.packs[known]!;
      if ((pack.markedAt ?? 0) > (first.markedAt ?? 0)) this.packs[known] = { ...first, markedAt: pack.markedAt };
      return;
    }
    const packNo = this.packs.length;
    this.packs.push(pack);
    this.packNumbers.set(key, packNo);
    this.reserve(this.count + entries.length);
    for (const e of entries) {
      const n = this.count++;
      // TypedArray#set, not Buffer#copy: the latter's argument handling costs more than the copy of 32 bytes.
      this.ids.set(e.id, n * ID_BYTES);
      const m = n * META_WORDS;
      this.meta[m] = packNo;
      this.meta[m + 1] = e.offset;
      this.meta[m + 2] = e.length;
      this.meta[m + 3] = (e.rawLength | (e.compressed ? COMPRESSED_BIT : 0)) >>> 0;
      this.insert(n);
    }
  }

  /** Whether a backup may refer to this blob instead of storing it: in a pack present and not marked for deletion. */
  has(type: BlobType, id: Uint8Array, writer: number): boolean {
    return this.slotOf(type, id, writer, false) >= 0;
  }

  /**
   * Where the blob lies, in a pack present: one not marked for deletion when there is one (a
   * prune repacked it there, and the marked pack goes once nothing older than the mark runs).
   */
  find(type: BlobType, id: Uint8Array, writer: number): BlobLocation | undefined {
    let slot = this.slotOf(type, id, writer, false);
    if (slot < 0) slot = this.slotOf(type, id, writer, true);
    if (slot < 0) return undefined;
    const m = (this.table[slot]! - 1) * META_WORDS;
    const raw = this.meta[m + 3]!;
    return {
      pack: this.packs[this.meta[m]!]!,
      offset: this.meta[m + 1]!,
      length: this.meta[m + 2]!,
      rawLength: raw & ~COMPRESSED_BIT,
      compressed: (raw & COMPRESSED_BIT) !== 0,
    };
  }

  /** The entry (a number below `size`) where find() finds the blob, or -1: prune and check keep a bit per entry. */
  entryOf(type: BlobType, id: Uint8Array, writer: number): number {
    const slot = this.slotOf(type, id, writer, true);
    return slot < 0 ? -1 : this.table[slot]! - 1;
  }

  /** Entry `n`: its pack (a number into `packs`) and where its blob lies there. */
  entry(n: number): { pack: number; id: Buffer; offset: number; length: number; rawLength: number; compressed: boolean } {
    const m = n * META_WORDS;
    const raw = this.meta[m + 3]!;
    return {
      pack: this.meta[m]!,
      id: this.ids.subarray(n * ID_BYTES, (n + 1) * ID_BYTES),
      offset: this.meta[m + 1]!,
      length: this.meta[m + 2]!,
      rawLength: raw & ~COMPRESSED_BIT,
      compressed: (raw & COMPRESSED_BIT) !== 0,
    };
  }

  /**
   * Marks the packs not among `present` missing; returns how many are, not counting packs a
   * prune marked for deletion (a long-lived reader sees them go as planned, their blobs moved).
   */
  markMissing(present: Set<string>): number {
    let missing = 0;
    for (const pack of this.packs) {
      pack.missing = !present.has(pack.id.toString('hex'));
      if (pack.missing && !pack.markedAt) missing++;
    }
    return missing;
  }

  /** Bytes held by the index's arrays, for measuring the per-blob cost. */
  get memoryBytes(): number {
    return this.ids.byteLength + this.meta.byteLength + this.table.byteLength;
  }

  private reserve(n: number): void {
    if (n * ID_BYTES > this.ids.length) {
      const cap = Math.max(1024, Math.ceil(n * 1.25));
      const ids = Buffer.alloc(cap * ID_BYTES);
      ids.set(this.ids.subarray(0, this.count * ID_BYTES));
      this.ids = ids;
      const meta = new Uint32Array(cap * META_WORDS);
      meta.set(this.meta.subarray(0, this.count * META_WORDS));
      this.meta = meta;
    }
    // Keep the table at most 2/3 full so probes stay short.
    if (n * 3 > this.table.length * 2) {
      let cap = 2048;
      while (n * 3 > cap * 2) cap *= 2;
      this.table = new Int32Array(cap);
      for (let i = 0; i < this.count; i++) this.insert(i);
    }
  }

  private insert(n: number): void {
    const mask = this.table.length - 1;
    let slot = this.ids.readUInt32LE(n * ID_BYTES) & mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = n + 1;
  }

  /** IDs are keyed hashes, so their first bytes are uniformly distributed: no further hashing needed. */
  private slotOf(type: BlobType, id: Uint8Array, writer: number, marked: boolean): number {
    if (this.table.length === 0) return -1;
    const mask = this.table.length - 1;
    let slot = (id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) & mask;
    for (;;) {
      const e = this.table[slot]!;
      if (e === 0) return -1;
      if (this.ids.compare(id, 0, ID_BYTES, (e - 1) * ID_BYTES, e * ID_BYTES) === 0) {
        const pack = this.packs[this.meta[(e - 1) * META_WORDS]!]!;
        if (pack.type === type && pack.writer === writer && !pack.missing && (marked || !pack.markedAt)) return slot;
      }
      slot = (slot + 1) & mask;
    }
  }
}
