import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../errors.js';
import { counterNonce, deriveKey, open, sealInto, TAG_BYTES } from '../crypto/primitives.js';
import { compressInto, decompress } from './compression.js';

/**
 * Every stored object that is not a pack or a key file (config, snapshots, index, locks) has this form:
 *   "SCOB" | version u8 | kind u8 | flags u8 | salt[32] | AES-256-GCM(payload)
 * The key is derived from the metadata key and the object's own random salt, so no key is
 * ever used for two objects; the first 39 bytes are authenticated as associated data.
 */
export const ObjectKind = { config: 1, snapshot: 2, index: 3, lock: 4 } as const;
export type ObjectKind = (typeof ObjectKind)[keyof typeof ObjectKind];

const MAGIC = Buffer.from('SCOB');
const VERSION = 1;
const FLAG_ZSTD = 1;
const HEADER_BYTES = 4 + 1 + 1 + 1 + 32;
const NONCE = counterNonce(0);
const INFO = 'scrate v1 object';
const LEVEL = 3;

/**
 * `payload` may come in parts (an index object's records), joined only in the object itself.
 * An index is not compressed: its random IDs are most of it (zstd saved 4.6%), and zstd's
 * buffers for it, at the end of a backup, were that backup's peak memory.
 */
export function encodeObject(metadataKey: Buffer, kind: ObjectKind, payload: Buffer | readonly Buffer[]): Buffer {
  // Compressed (or copied) and sealed in place after the header, in one buffer.
  const parts = Buffer.isBuffer(payload) ? [payload] : payload;
  const length = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(HEADER_BYTES + length + TAG_BYTES);
  const packed = kind === ObjectKind.index ? 0 : compressInto(parts.length === 1 ? parts[0]! : Buffer.concat(parts), LEVEL, out, HEADER_BYTES);
  if (packed === 0) parts.reduce((at, p) => at + p.copy(out, at), HEADER_BYTES);
  const plain = out.subarray(HEADER_BYTES, HEADER_BYTES + (packed || length));
  const header = out.subarray(0, HEADER_BYTES);
  MAGIC.copy(header, 0);
  header[4] = VERSION;
  header[5] = kind;
  header[6] = packed > 0 ? FLAG_ZSTD : 0;
  randomBytes(32).copy(header, 7);
  const key = deriveKey(metadataKey, header.subarray(7), INFO);
  sealInto(key, NONCE, plain, out, HEADER_BYTES, header);
  return out.subarray(0, HEADER_BYTES + plain.length + TAG_BYTES);
}

/** Decrypts and authenticates; `what` names the object in errors. */
export function decodeObject(metadataKey: Buffer, kind: ObjectKind, stored: Buffer, what: string): Buffer {
  if (stored.length < HEADER_BYTES || !stored.subarray(0, 4).equals(MAGIC)) throw new IntegrityError(what, 'not a scrate object');
  if (stored[4] !== VERSION) throw new IntegrityError(what, `unsupported object version ${stored[4]}`);
  if (stored[5] !== kind) throw new IntegrityError(what, 'object of the wrong kind');
  const header = stored.subarray(0, HEADER_BYTES);
  const key = deriveKey(metadataKey, header.subarray(7), INFO);
  const plain = open(key, NONCE, stored.subarray(HEADER_BYTES), header);
  if (!plain) throw new IntegrityError(what, 'authentication failed (damaged, or not from this repository)');
  return stored[6]! & FLAG_ZSTD ? decompress(plain) : plain;
}
