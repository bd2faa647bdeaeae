import { IntegrityError } from '../errors.js';
import type { webcrypto } from 'node:crypto';
import { counterNonce, importSealKey, open, seal, sealAsync, TAG_BYTES } from '../crypto/primitives.js';

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
const ENTRY_BYTES = 1 + 1 + 4 + 4 + 32;
const FLAG_ZSTD = 1;

export function blobNonce(offset: number): Buffer {
  return counterNonce(offset);
}

/** Assembles one pack in memory; blobs are encrypted on the thread pool as they arrive. */
export class PackWriter {
  private readonly parts: Promise<Buffer>[];
  private readonly entries: PackEntry[] = [];
  private readonly cryptoKey: Promise<webcrypto.CryptoKey>;
  private size: number;

  constructor(
    private readonly key: Buffer,
    readonly envelope: Buffer,
  ) {
    const prefix = Buffer.concat([MAGIC, Buffer.from([VERSION]), envelope]);
    this.parts = [Promise.resolve(prefix)];
    this.size = prefix.length;
    this.cryptoKey = importSealKey(key);
  }

  get bytes(): number {
    return this.size;
  }

  /** `stored` must stay unchanged until finish(). */
  add(type: BlobType, id: Buffer, stored: Uint8Array, rawLength: number, compressed: boolean): void {
    // The sealed size is known before the encryption runs, so offsets (and nonces) are assigned now.
    const nonce = blobNonce(this.size);
    const sealed = this.cryptoKey.then((k) => sealAsync(k, nonce, stored));
    sealed.catch(() => undefined); // awaited in finish(); never an unhandled rejection
    const length = stored.length + TAG_BYTES;
    this.entries.push({ type, id, offset: this.size, length, rawLength, compressed });
    this.parts.push(sealed);
    this.size += length;
  }

  async finish(): Promise<{ bytes: Buffer; entries: PackEntry[] }> {
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
    return { bytes: Buffer.concat([...(await Promise.all(this.parts)), sealedHeader, trailer]), entries: this.entries };
  }
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

/** Decrypts one blob read from a pack. */
export function openBlob(key: Buffer, offset: number, sealed: Buffer, what: string): Buffer {
  const plain = open(key, blobNonce(offset), sealed);
  if (!plain) throw new IntegrityError(what, 'blob failed authentication');
  return plain;
}
