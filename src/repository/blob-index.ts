import { TAG_BYTES } from '../crypto/primitives.js';
import { IntegrityError } from '../errors.js';
import { ID_BYTES } from './ids.js';
import { MAX_BLOB_BYTES } from './limits.js';
import { BlobType, type PackEntry } from './pack.js';

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
}

export interface BlobLocation {
  pack: PackInfo;
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

const META_WORDS = 4;
const COMPRESSED_BIT = 0x80000000;

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
    if (this.packNumbers.has(key)) return;
    const packNo = this.packs.length;
    this.packs.push(pack);
    this.packNumbers.set(key, packNo);
    this.reserve(this.count + entries.length);
    for (const e of entries) {
      const n = this.count++;
      e.id.copy(this.ids, n * ID_BYTES);
      const m = n * META_WORDS;
      this.meta[m] = packNo;
      this.meta[m + 1] = e.offset;
      this.meta[m + 2] = e.length;
      this.meta[m + 3] = (e.rawLength | (e.compressed ? COMPRESSED_BIT : 0)) >>> 0;
      this.insert(n);
    }
  }

  has(type: BlobType, id: Uint8Array, writer: number): boolean {
    return this.slotOf(type, id, writer) >= 0;
  }

  find(type: BlobType, id: Uint8Array, writer: number): BlobLocation | undefined {
    const slot = this.slotOf(type, id, writer);
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

  /** Marks the packs not among `present` missing; returns how many are. */
  markMissing(present: Set<string>): number {
    let missing = 0;
    for (const pack of this.packs) {
      pack.missing = !present.has(pack.id.toString('hex'));
      if (pack.missing) missing++;
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
      this.ids.copy(ids, 0, 0, this.count * ID_BYTES);
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
  private slotOf(type: BlobType, id: Uint8Array, writer: number): number {
    if (this.table.length === 0) return -1;
    const mask = this.table.length - 1;
    let slot = (id[0]! | (id[1]! << 8) | (id[2]! << 16) | (id[3]! << 24)) & mask;
    for (;;) {
      const e = this.table[slot]!;
      if (e === 0) return -1;
      if (this.ids.compare(id, 0, ID_BYTES, (e - 1) * ID_BYTES, e * ID_BYTES) === 0) {
        const pack = this.packs[this.meta[(e - 1) * META_WORDS]!]!;
        if (pack.type === type && pack.writer === writer && !pack.missing) return slot;
      }
      slot = (slot + 1) & mask;
    }
  }
}

/** The plaintext of an index object: a list of packs and their blobs. */
export interface IndexFile {
  packs: { pack: PackInfo; entries: PackEntry[] }[];
}

const BLOB_RECORD = ID_BYTES + 12;

/**
 * One pack's part of an index object, encoded when the pack is stored: a writer holds a few
 * bytes per blob until its next index object, not an object per blob (the first backup of a
 * source tree held ~90,000 of them to the end).
 */
export function encodePackRecord(pack: PackInfo, entries: readonly PackEntry[]): Buffer {
  const out = Buffer.alloc(ID_BYTES + 1 + 1 + pack.envelope.length + 4 + entries.length * BLOB_RECORD);
  let at = pack.id.copy(out, 0);
  out[at++] = pack.type;
  out[at++] = pack.envelope.length;
  at += pack.envelope.copy(out, at);
  at = out.writeUInt32LE(entries.length, at);
  for (const e of entries) {
    at += e.id.copy(out, at);
    at = out.writeUInt32LE(e.offset, at);
    at = out.writeUInt32LE(e.length, at);
    at = out.writeUInt32LE((e.rawLength | (e.compressed ? COMPRESSED_BIT : 0)) >>> 0, at);
  }
  return out;
}

/** The plaintext of an index object: how many packs, then their records (in parts, for encodeObject). */
export function encodeIndexFile(records: readonly Buffer[]): Buffer[] {
  const count = Buffer.alloc(4);
  count.writeUInt32LE(records.length);
  return [count, ...records];
}

/**
 * An index object's payload (the same layout in format versions 2 and 3), every length
 * checked: an index comes from the repository, and a malformed one is damage, never a crash.
 * Its packs are `writer`'s.
 */
export function decodeIndexFile(buf: Buffer, writer: number, what: string): IndexFile {
  const bad = (detail: string) => new IntegrityError(what, detail);
  const need = (n: number) => {
    if (at + n > buf.length) throw bad('truncated');
  };
  const packs: IndexFile['packs'] = [];
  let at = 0;
  need(4);
  const count = buf.readUInt32LE(0);
  at = 4;
  for (let i = 0; i < count; i++) {
    need(ID_BYTES + 2);
    const id = Buffer.from(buf.subarray(at, at + ID_BYTES));
    at += ID_BYTES;
    const type = buf[at++]!;
    if (type !== BlobType.data && type !== BlobType.tree) throw bad(`unknown blob type ${type}`);
    const envLength = buf[at++]!;
    need(envLength + 4);
    const envelope = Buffer.from(buf.subarray(at, at + envLength));
    at += envLength;
    const n = buf.readUInt32LE(at);
    at += 4;
    need(n * BLOB_RECORD);
    const entries: PackEntry[] = [];
    for (let j = 0; j < n; j++, at += BLOB_RECORD) {
      const offset = buf.readUInt32LE(at + ID_BYTES);
      const length = buf.readUInt32LE(at + ID_BYTES + 4);
      const raw = buf.readUInt32LE(at + ID_BYTES + 8);
      const rawLength = raw & ~COMPRESSED_BIT;
      const compressed = (raw & COMPRESSED_BIT) !== 0;
      // A blob is stored compressed only when that is smaller, else as it is: its tag on top.
      if (rawLength > MAX_BLOB_BYTES || length < TAG_BYTES || length > rawLength + TAG_BYTES) throw bad('blob lengths out of range');
      entries.push({ type: type as BlobType, id: Buffer.from(buf.subarray(at, at + ID_BYTES)), offset, length, rawLength, compressed });
    }
    packs.push({ pack: { id, type: type as BlobType, writer, envelope }, entries });
  }
  if (at !== buf.length) throw bad('trailing bytes');
  return { packs };
}
