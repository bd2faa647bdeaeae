import { WRITER_ID_BYTES } from '../crypto/access.js';
import { agreeKey, EPHEMERAL_BYTES, recoverKey, type X25519Keys } from '../crypto/keybox.js';
import { counterNonce, open, seal, sealInto, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { IntegrityError } from '../errors.js';
import { ID_BYTES } from './ids.js';
import { paddedLength } from './padding.js';

/**
 * A pack holds encrypted blobs of one type and ends with its own encrypted header, so the
 * index can always be rebuilt from packs alone (docs/FORMAT.md §5):
 *   "SCPK" | version u8 = 2 | ephemeral X25519 public key (32) | blob… | header | u32 LE header length
 * Each pack has its own key, agreed with the repository's public key through the ephemeral one
 * (a write-only host can write packs it cannot read); blob i is sealed with the nonce counter =
 * its offset in the pack, the header with the all-ones nonce, so no nonce repeats. The header
 * names the pack's writer and type and is padded (padding.ts).
 */
export const BlobType = { data: 0, tree: 1 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export interface PackEntry {
  type: BlobType;
  id: Buffer;
  offset: number;
  /** Bytes in the pack: the sealed, possibly compressed blob including its tag. */
  length: number;
  /** Plaintext bytes. */
  rawLength: number;
  compressed: boolean;
}

export const PACK_MAGIC = Buffer.from('SCPK');
const VERSION = 2;
/** Magic and version: where the envelope starts. */
export const PACK_PREFIX_BYTES = 5;
export const HEADER_NONCE = Buffer.alloc(12, 0xff);
const HEADER_FIXED = WRITER_ID_BYTES + 1 + 4;
const ENTRY_BYTES = 1 + 4 + 4 + ID_BYTES;
const FLAG_ZSTD = 1;
const KEY_INFO = 'scrate v3 pack key';
/** IDs a pack keeps in one allocation: 16 KiB, 512 entries. */
const ID_STORE_BYTES = 512 * ID_BYTES;

export function blobNonce(offset: number): Buffer {
  return counterNonce(offset);
}

/** Where a streamed pack's bytes go, each once it is sealed, front to back; and their SHA-256. */
export interface PackOut {
  write(bytes: Uint8Array, offset: number): void;
  digest(): Buffer;
}

/**
 * Assembles one pack in one buffer: each blob is encrypted into place as it arrives (sync
 * AES-GCM costs ~11 µs per small blob here; a WebCrypto job cost ~86 µs), so a pack is never
 * held twice. With an `out`, the buffer is only a window that starts over whenever the next
 * bytes would take it past `windowAt`, so a pack of any size needs a window's memory. Blobs
 * sealed into room() go out from sealBlobs (given the out's sink), as they are sealed; the
 * bytes written here go out before the window starts over, before room() and at the end.
 */
export class PackWriter {
  private readonly entries: PackEntry[] = [];
  /**
   * The entries' IDs, copied out of the caller's buffers: a tree's ID is a 32-byte slice of
   * Node's 8 KiB Buffer pool, so the tree pack, open for a whole backup, kept a slab alive per
   * tree it held (12 MiB of the kernel tree's backup five seconds in, a tenth of its peak RSS).
   */
  private idStore = Buffer.alloc(0);
  private idsStored = 0;
  private buffer: Buffer;
  /** Bytes in `buffer`; those before them are out. */
  private used = 0;
  private flushed = 0;
  /** Where the bytes in `buffer` that are not out yet begin. */
  private pendingFrom = 0;

  /** Where the window starts over (a larger blob goes alone). */
  private readonly windowAt: number;

  /**
   * `capacity`: the expected pack size (a larger last blob grows the buffer once), or a buffer
   * to reuse. A window may be larger than `windowAt` (default: all of it) for the largest blob:
   * pages never written cost no memory.
   */
  constructor(
    /** The pack's own key: blobs sealed elsewhere (sealBlobs) are sealed with it. */
    readonly key: Buffer,
    readonly envelope: Buffer,
    readonly type: BlobType,
    private readonly writer: Buffer,
    capacity: number | Buffer,
    private readonly out?: PackOut,
    windowAt?: number,
  ) {
    this.buffer = typeof capacity === 'number' ? Buffer.allocUnsafeSlow(capacity) : capacity;
    this.windowAt = windowAt ?? this.buffer.length;
    this.append(PACK_MAGIC);
    this.append(Buffer.from([VERSION]));
    this.append(envelope);
  }

  get bytes(): number {
    return this.flushed + this.used;
  }

  add(id: Buffer, stored: Uint8Array, rawLength: number, compressed: boolean): void {
    const length = stored.length + TAG_BYTES;
    const offset = this.bytes;
    this.reserve(length);
    sealInto(this.key, blobNonce(offset), stored, this.buffer, this.used);
    this.record(id, length, rawLength, compressed);
  }

  /**
   * Where blobs sealed elsewhere go (see src/native/pipeline.c's sealBlobs): `free` bytes at
   * `at` in `buffer`, at least `length` (the window started over or grown for it, as add
   * does). With an out, sealBlobs writes them there (given its sink).
   */
  room(length: number): { buffer: Buffer; at: number; free: number } {
    this.reserve(length);
    // Before the blobs that go out from sealBlobs: a pack's bytes are hashed front to back.
    this.flushPending();
    return { buffer: this.buffer, at: this.used, free: Math.max(this.windowEnd, this.used + length) - this.used };
  }

  /** Blobs sealed into room()'s place, one after another: their pack lengths and compressed flags at fields[2i…]. */
  sealed(ids: Buffer[], rawLengths: number[], fields: Uint32Array): void {
    ids.forEach((id, i) => this.record(id, fields[2 * i]!, rawLengths[i]!, fields[2 * i + 1] === 1));
    this.pendingFrom = this.used;
  }

  private record(id: Buffer, length: number, rawLength: number, compressed: boolean): void {
    this.entries.push({ type: this.type, id: this.keep(id), offset: this.bytes, length, rawLength, compressed });
    this.used += length;
  }

  private keep(id: Buffer): Buffer {
    if (this.idsStored === this.idStore.length) {
      this.idStore = Buffer.allocUnsafeSlow(ID_STORE_BYTES);
      this.idsStored = 0;
    }
    const kept = this.idStore.subarray(this.idsStored, (this.idsStored += ID_BYTES));
    id.copy(kept);
    return kept;
  }

  /**
   * The pack's entries, its size and its name: the SHA-256 of its bytes. `bytes` are the
   * pack's bytes, or none when they went out. The header is padded so that the pack's size
   * is a padded length.
   */
  finish(): { bytes: Buffer; entries: PackEntry[]; id: Buffer; size: number } {
    const plain = HEADER_FIXED + this.entries.length * ENTRY_BYTES;
    const padding = packSize(this.bytes, this.entries.length) - (this.bytes + plain + TAG_BYTES + 4);
    const header = Buffer.alloc(plain + padding);
    let at = this.writer.copy(header, 0);
    header[at++] = this.type;
    at = header.writeUInt32LE(this.entries.length, at);
    for (const e of this.entries) {
      header[at++] = e.compressed ? FLAG_ZSTD : 0;
      at = header.writeUInt32LE(e.rawLength, at);
      at = header.writeUInt32LE(e.length, at);
      at += e.id.copy(header, at);
    }
    const sealedHeader = seal(this.key, HEADER_NONCE, header);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(sealedHeader.length);
    this.append(sealedHeader);
    this.append(trailer);
    const size = this.bytes;
    this.flushPending();
    if (this.out) return { bytes: this.buffer.subarray(0, 0), entries: this.entries, id: this.out.digest(), size };
    const bytes = this.buffer.subarray(0, this.used);
    return { bytes, entries: this.entries, id: sha256(bytes), size };
  }

  private append(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.used);
    this.used += data.length;
  }

  private flushPending(): void {
    if (this.out && this.used > this.pendingFrom) this.out.write(this.buffer.subarray(this.pendingFrom, this.used), this.flushed + this.pendingFrom);
    this.pendingFrom = this.used;
  }

  /** How far the buffer is filled before the window starts over (all of it, for a pack in memory). */
  private get windowEnd(): number {
    return this.out ? Math.min(this.windowAt, this.buffer.length) : this.buffer.length;
  }

  private reserve(length: number): void {
    if (this.out && this.used > 0 && this.used + length > this.windowEnd) {
      this.flushPending();
      this.flushed += this.used;
      this.used = this.pendingFrom = 0;
    }
    if (this.used + length <= this.buffer.length) return;
    // A window (empty now) grows to the one blob that needs it: doubling took an 8 MiB window
    // to 16 MiB for a chunk of 8 MiB and its tag. A pack in memory doubles, to copy seldom.
    const grown = Buffer.allocUnsafeSlow(this.out ? length : Math.max(this.buffer.length * 2, this.used + length));
    this.buffer.copy(grown, 0, 0, this.used);
    this.buffer = grown;
  }
}

/** The size of a pack whose blobs end at `blobsEnd` and whose header lists `count` of them: its header is padded to make it so. */
export function packSize(blobsEnd: number, count: number): number {
  return paddedLength(blobsEnd + HEADER_FIXED + count * ENTRY_BYTES + TAG_BYTES + 4);
}

/** A writer for a new pack of `type` by `writer`: a fresh key, agreed with the repository's public key. */
export function newPack(type: BlobType, sealPublic: Buffer, writer: Buffer, capacity: number | Buffer, out?: PackOut, windowAt?: number): PackWriter {
  const { key, ephemeral } = agreeKey(sealPublic, KEY_INFO);
  return new PackWriter(key, ephemeral, type, writer, capacity, out, windowAt);
}

/** The key of a pack, from its envelope (the ephemeral public key); null when that is no key. */
export function packKeyOf(envelope: Uint8Array, seal: X25519Keys): Buffer | null {
  return recoverKey(envelope, seal, KEY_INFO);
}

/** The envelope stored at the start of a pack: the ephemeral public key its key was agreed with. */
export function readEnvelope(pack: Buffer, what: string): Buffer {
  if (pack.length < PACK_PREFIX_BYTES || !pack.subarray(0, 4).equals(PACK_MAGIC)) throw new IntegrityError(what, 'not a scrate pack');
  if (pack[4] !== VERSION) throw new IntegrityError(what, `unsupported pack version ${pack[4]}`);
  if (pack.length < PACK_PREFIX_BYTES + EPHEMERAL_BYTES) throw new IntegrityError(what, 'truncated key envelope');
  return Buffer.from(pack.subarray(PACK_PREFIX_BYTES, PACK_PREFIX_BYTES + EPHEMERAL_BYTES));
}

/** What a pack's own header says: who wrote it, the type of its blobs, and where each lies. */
export interface PackHeader {
  writer: Buffer;
  type: BlobType;
  entries: PackEntry[];
}

/** The sealed header at the end of a pack whose blobs start at `firstBlob`, opened: its plaintext, or IntegrityError. */
export function openPackHeader(pack: Buffer, key: Buffer, firstBlob: number, what: string): { plain: Buffer; headerStart: number } {
  if (pack.length < firstBlob + TAG_BYTES + 4) throw new IntegrityError(what, 'truncated');
  const headerLength = pack.readUInt32LE(pack.length - 4);
  const headerStart = pack.length - 4 - headerLength;
  if (headerLength < TAG_BYTES || headerStart < firstBlob) throw new IntegrityError(what, 'header length out of range');
  const plain = open(key, HEADER_NONCE, pack.subarray(headerStart, pack.length - 4));
  if (!plain) throw new IntegrityError(what, 'pack header failed authentication');
  return { plain, headerStart };
}

/** Lists a whole pack's blobs from its own header (used to rebuild the index and by check). */
export function readPackHeader(pack: Buffer, key: Buffer, what: string): PackHeader {
  const firstBlob = PACK_PREFIX_BYTES + readEnvelope(pack, what).length;
  const { plain, headerStart } = openPackHeader(pack, key, firstBlob, what);
  if (plain.length < HEADER_FIXED) throw new IntegrityError(what, 'pack header too short');
  const writer = Buffer.from(plain.subarray(0, WRITER_ID_BYTES));
  const type = plain[WRITER_ID_BYTES]!;
  const count = plain.readUInt32LE(WRITER_ID_BYTES + 1);
  if (type !== BlobType.data && type !== BlobType.tree) throw new IntegrityError(what, `unknown blob type ${type}`);
  if (count > (plain.length - HEADER_FIXED) / ENTRY_BYTES) throw new IntegrityError(what, 'pack header too short for its entries');
  const entries: PackEntry[] = [];
  let offset = firstBlob;
  for (let i = 0, at = HEADER_FIXED; i < count; i++, at += ENTRY_BYTES) {
    const length = plain.readUInt32LE(at + 5);
    entries.push({
      type: type as BlobType,
      compressed: (plain[at]! & FLAG_ZSTD) !== 0,
      rawLength: plain.readUInt32LE(at + 1),
      length,
      id: Buffer.from(plain.subarray(at + 9, at + 9 + ID_BYTES)),
      offset,
    });
    offset += length;
  }
  if (offset !== headerStart) throw new IntegrityError(what, 'pack header does not match the pack size');
  return { writer, type: type as BlobType, entries };
}
