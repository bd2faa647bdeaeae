import { randomBytes } from 'node:crypto';
import { ScrateError } from '../../errors.js';
import { counterNonce, deriveKey, openInto, sealInto, TAG_BYTES } from '../../crypto/primitives.js';

/*
 * A log segment: a header, then records back to back.
 *
 *   header (80): "SCVL" | version u8 | 0 (3) | segment number u64 | volume id (16) | session (8) | salt (32) | 0 (8)
 *   record:      seq u64 | kind u8 | 0 (3) | volume offset u64 | length u32 | sealed length u32   (28, the AAD)
 *                AES-256-GCM(segment key, nonce = record position in the segment, payload)   (payload only for writes)
 *
 * The segment key is HKDF(cache key, salt = the whole header): a random salt per segment makes a
 * key that no other segment uses, so position nonces never repeat even when seqs do after a
 * crash, and any change to the header (number, volume, session) makes every record fail. A zero
 * record seals an empty payload: its tag still authenticates its header.
 */

export const SEGMENT_MAGIC = 'SCVL';
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 80;
export const RECORD_HEADER_BYTES = 28;

export const RecordKind = { write: 1, zero: 2 } as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

export interface RecordHead {
  seq: number;
  kind: RecordKind;
  /** Byte offset in the volume. */
  offset: number;
  length: number;
}

export interface SegmentHeader {
  number: number;
  volumeId: string;
  session: string;
}

const SEGMENT_INFO = 'scrate v3 volume cache segment';

export function recordBytes(kind: RecordKind, length: number): number {
  return RECORD_HEADER_BYTES + (kind === RecordKind.write ? length : 0) + TAG_BYTES;
}

/** u64 fields hold numbers below 2^48: the high 16 bits are written and checked as zero. */
function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt16BE(0, at);
  buf.writeUIntBE(value, at + 2, 6);
}

function readU64(buf: Buffer, at: number): number | null {
  return buf.readUInt16BE(at) === 0 ? buf.readUIntBE(at + 2, 6) : null;
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  buf.write(SEGMENT_MAGIC, 0, 'latin1');
  buf[4] = SEGMENT_VERSION;
  writeU64(buf, h.number, 8);
  Buffer.from(h.volumeId, 'hex').copy(buf, 16);
  Buffer.from(h.session, 'hex').copy(buf, 32);
  randomBytes(32).copy(buf, 40);
  return buf;
}

/**
 * The header of a segment file, or null when it is torn (shorter than a header or never written:
 * a crash right after the file was created, before anything in it was synced). A header that is
 * there but not ours is refused: appending to or replaying another volume's log would be wrong.
 */
export function parseSegmentHeader(buf: Buffer, file: string): SegmentHeader | null {
  if (buf.length < SEGMENT_HEADER_BYTES || buf.subarray(0, SEGMENT_HEADER_BYTES).every((b) => b === 0)) return null;
  const number = readU64(buf, 8);
  if (buf.toString('latin1', 0, 4) !== SEGMENT_MAGIC || number === null) {
    throw new ScrateError(`${file} is not a scrate volume cache segment`);
  }
  if (buf[4] !== SEGMENT_VERSION) throw new ScrateError(`${file}: volume cache segment version ${buf[4]} is not supported`);
  return { number, volumeId: buf.toString('hex', 16, 32), session: buf.toString('hex', 32, 40) };
}

export function segmentKey(cacheKey: Buffer, header: Buffer): Buffer {
  return deriveKey(cacheKey, header.subarray(0, SEGMENT_HEADER_BYTES), SEGMENT_INFO);
}

/** One record, sealed for position `pos` of the segment whose key is `key`. */
export function sealRecord(key: Buffer, pos: number, head: RecordHead, payload: Buffer | null): Buffer {
  const sealed = (payload?.length ?? 0) + TAG_BYTES;
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + sealed);
  writeU64(out, head.seq, 0);
  out.writeUInt32BE(head.kind << 24, 8);
  writeU64(out, head.offset, 12);
  out.writeUInt32BE(head.length, 20);
  out.writeUInt32BE(sealed, 24);
  const aad = out.subarray(0, RECORD_HEADER_BYTES);
  sealInto(key, counterNonce(pos), payload ?? Buffer.alloc(0), out, RECORD_HEADER_BYTES, aad);
  return out;
}

/** Decodes a record header; null when it cannot be one (zeros of a torn tail, garbage). */
export function parseRecordHead(buf: Buffer, at: number): (RecordHead & { sealed: number }) | null {
  if (buf.length - at < RECORD_HEADER_BYTES) return null;
  const seq = readU64(buf, at);
  const offset = readU64(buf, at + 12);
  const kindWord = buf.readUInt32BE(at + 8);
  const kind = kindWord >>> 24;
  const length = buf.readUInt32BE(at + 20);
  const sealed = buf.readUInt32BE(at + 24);
  if (seq === null || seq === 0 || offset === null || (kindWord & 0xffffff) !== 0 || length === 0) return null;
  if (kind !== RecordKind.write && kind !== RecordKind.zero) return null;
  if (sealed !== recordBytes(kind, length) - RECORD_HEADER_BYTES) return null;
  return { seq, kind, offset, length, sealed };
}

/**
 * Opens a sealed record (header at `at` of `buf`, decoded as `head`) into `out` (its payload
 * length, or empty for a zero record); false when the tag fails.
 */
export function openRecord(key: Buffer, pos: number, buf: Buffer, at: number, sealed: number, out: Buffer): boolean {
  const aad = buf.subarray(at, at + RECORD_HEADER_BYTES);
  const body = buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + sealed);
  return openInto(key, counterNonce(pos), body, out, aad);
}
