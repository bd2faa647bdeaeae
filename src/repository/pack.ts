import { IntegrityError } from '../errors.js';
import { newSealedKey } from '../crypto/keybox.js';
import { counterNonce, open, seal, sealInto, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { ID_BYTES } from './ids.js';

/**
 * A pack holds encrypted blobs of one type and ends with its own encrypted header, so the
 * index can always be rebuilt from packs alone:
 *   "SCPK" | version u8 | envelope (key kind u8 + body) | blob… | header | u32 LE header length
 * Each pack has its own key, given by the envelope; blob i is sealed with the nonce
 * counter = its offset in the pack, the header with the all-ones nonce, so no nonce repeats.
 */
export const BlobType = { data: 0, tree: 1 } as const;
export type BlobType = (typeof BlobType)[keyof typeof BlobType];

export const KeyKind = {
  /** The pack key is sealed to the repository's data public key (file contents). */
  sealed: 1,
  /** The pack key is derived from the metadata key and a salt (trees). */
  derived: 2,
} as const;

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

const MAGIC = Buffer.from('SCPK');
const VERSION = 1;
const HEADER_NONCE = Buffer.alloc(12, 0xff);
const ENTRY_BYTES = 1 + 1 + 4 + 4 + ID_BYTES;
const FLAG_ZSTD = 1;
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
    capacity: number | Buffer,
    private readonly out?: PackOut,
    windowAt?: number,
  ) {
    this.buffer = typeof capacity === 'number' ? Buffer.allocUnsafeSlow(capacity) : capacity;
    this.windowAt = windowAt ?? this.buffer.length;
    this.append(MAGIC);
    this.append(Buffer.from([VERSION]));
    this.append(envelope);
  }

  get bytes(): number {
    return this.flushed + this.used;
  }

  add(type: BlobType, id: Buffer, stored: Uint8Array, rawLength: number, compressed: boolean): void {
    const length = stored.length + TAG_BYTES;
    const offset = this.bytes;
    this.reserve(length);
    sealInto(this.key, blobNonce(offset), stored, this.buffer, this.used);
    this.record(type, id, length, rawLength, compressed);
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
  sealed(type: BlobType, ids: Buffer[], rawLengths: number[], fields: Uint32Array): void {
    ids.forEach((id, i) => this.record(type, id, fields[2 * i]!, rawLengths[i]!, fields[2 * i + 1] === 1));
    this.pendingFrom = this.used;
  }

  private record(type: BlobType, id: Buffer, length: number, rawLength: number, compressed: boolean): void {
    this.entries.push({ type, id: this.keep(id), offset: this.bytes, length, rawLength, compressed });
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
   * pack's bytes, or none when they went out.
   */
  finish(): { bytes: Buffer; entries: PackEntry[]; id: Buffer; size: number } {
    const header = Buffer.alloc(this.entries.length * ENTRY_BYTES);
    this.entries.forEach((e, i) => {
      const at = i * ENTRY_BYTES;
      header[at] = e.type;
      header[at + 1] = e.compressed ? FLAG_ZSTD : 0;
      header.writeUInt32LE(e.rawLength, at + 2);
      header.writeUInt32LE(e.length, at + 6);
      e.id.copy(header, at + 10);
    });
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

/** A writer for a new data pack: a fresh key, sealed to the repository's data public key. */
export function newDataPack(dataPublicKey: Buffer, capacity: number | Buffer, out?: PackOut, windowAt?: number): PackWriter {
  const { key, sealed } = newSealedKey(dataPublicKey);
  return new PackWriter(key, Buffer.concat([Buffer.from([KeyKind.sealed]), sealed]), capacity, out, windowAt);
}

/** The envelope stored at the start of a pack: key kind and its body. */
export function readEnvelope(pack: Buffer, what: string): Buffer {
  if (pack.length < 6 || !pack.subarray(0, 4).equals(MAGIC)) throw new IntegrityError(what, 'not a scrate pack');
  if (pack[4] !== VERSION) throw new IntegrityError(what, `unsupported pack version ${pack[4]}`);
  const len = envelopeLength(pack[5]!);
  if (len === 0 || pack.length < 5 + len) throw new IntegrityError(what, 'unknown or truncated key envelope');
  return Buffer.from(pack.subarray(5, 5 + len));
}

export function envelopeLength(kind: number): number {
  if (kind === KeyKind.sealed) return 1 + 80;
  if (kind === KeyKind.derived) return 1 + 32;
  return 0;
}

/** Lists a whole pack's blobs from its own header (used to rebuild the index and by check). */
export function readPackHeader(pack: Buffer, key: Buffer, what: string): PackEntry[] {
  const envelope = readEnvelope(pack, what);
  if (pack.length < 5 + envelope.length + TAG_BYTES + 4) throw new IntegrityError(what, 'truncated');
  const headerLength = pack.readUInt32LE(pack.length - 4);
  const headerStart = pack.length - 4 - headerLength;
  if (headerStart < 5 + envelope.length) throw new IntegrityError(what, 'header length out of range');
  const header = open(key, HEADER_NONCE, pack.subarray(headerStart, pack.length - 4));
  if (!header || header.length % ENTRY_BYTES !== 0) throw new IntegrityError(what, 'pack header failed authentication');
  const entries: PackEntry[] = [];
  let offset = 5 + envelope.length;
  for (let at = 0; at < header.length; at += ENTRY_BYTES) {
    const length = header.readUInt32LE(at + 6);
    entries.push({
      type: header[at] as BlobType,
      compressed: (header[at + 1]! & FLAG_ZSTD) !== 0,
      rawLength: header.readUInt32LE(at + 2),
      length,
      id: Buffer.from(header.subarray(at + 10, at + 10 + 32)),
      offset,
    });
    offset += length;
  }
  if (offset !== headerStart) throw new IntegrityError(what, 'pack header does not match the pack size');
  return entries;
}
