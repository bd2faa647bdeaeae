import type { KeyObject } from 'node:crypto';
import { WRITER_ID_BYTES } from '../crypto/access.js';
import { agreeKey, EPHEMERAL_BYTES, recoverKey, type X25519Keys } from '../crypto/keybox.js';
import { counterNonce, deriveKey, open, sealInto, sha256, TAG_BYTES } from '../crypto/primitives.js';
import { seedOf, signMessage, SIGNATURE_BYTES, verifySignature, type SigningKey } from '../crypto/signing.js';
import { IntegrityError } from '../errors.js';
import { compressInto, decompress } from './compression.js';
import { MAX_OBJECT_PLAIN_BYTES } from './limits.js';
import { paddedLength } from './padding.js';

/**
 * Snapshots, index files, writer records and volume records (docs/FORMAT.md §7.1):
 *   "SCO3" | kind u8 | ephemeral X25519 public key (32) | AES-256-GCM(inner), AAD = those 37 bytes
 *   inner = writer (16) | signature (64) | flags u8 | body length u32 | body | zero padding
 * Encrypted to the repository's public key, so a write-only host can store objects it cannot
 * read back; signed by the writer inside the encryption, so nobody can tell writers apart from
 * the bucket, and full keys accept only what a registered writer signed.
 */
export const ObjectKind = { snapshot: 2, index: 3, writer: 5, volume: 6 } as const;
export type ObjectKind = (typeof ObjectKind)[keyof typeof ObjectKind];

const MAGIC = Buffer.from('SCO3');
const HEADER_BYTES = 4 + 1 + EPHEMERAL_BYTES;
const INNER_HEADER = WRITER_ID_BYTES + SIGNATURE_BYTES + 1 + 4;
const FLAG_ZSTD = 1;
const NONCE = counterNonce(0);
const KEY_INFO = 'scrate v3 object';
const SIGNED_AS = Buffer.from('scrate v3 object\0');
const LEVEL = 3;
const DETERMINISTIC_INFO = 'scrate v3 deterministic ephemeral';

export interface ObjectSigner {
  writer: Buffer;
  signing: SigningKey;
}

/** The signature covers the kind and this object's ephemeral key, so it cannot be moved to another object. */
function signedPart(kind: ObjectKind, ephemeral: Uint8Array, flags: number, body: Uint8Array): Buffer {
  return Buffer.concat([SIGNED_AS, Buffer.from([kind]), ephemeral, Buffer.from([flags]), sha256(body)]);
}

/**
 * `payload` may come in parts (an index object's records), joined only in the object itself.
 * An index is not compressed: its random IDs are most of it (zstd saved 4.6%), and zstd's
 * buffers for it, at the end of a backup, were that backup's peak memory.
 *
 * `deterministic`: the same payload by the same signer gives the same bytes, hence the same
 * name (FORMAT.md §7.1), so a copy finds itself with one HEAD. The ephemeral key then derives
 * from the signer's own signing seed (which nobody else holds, not even a writer sharing its
 * blob keys) and the body; the body is not compressed (zstd's output may change between
 * versions); Ed25519 and the zero padding are deterministic already.
 */
export function encodeObject(kind: ObjectKind, payload: Buffer | readonly Buffer[], sealPublic: Buffer, signer: ObjectSigner, deterministic = false): Buffer {
  const parts = Buffer.isBuffer(payload) ? [payload] : payload;
  const length = parts.reduce((n, p) => n + p.length, 0);
  // Room for the body as it is; compressed (or copied) in place after the inner header.
  const out = Buffer.allocUnsafe(paddedLength(HEADER_BYTES + INNER_HEADER + length + TAG_BYTES));
  const bodyAt = HEADER_BYTES + INNER_HEADER;
  const packed = kind === ObjectKind.index || deterministic ? 0 : compressInto(parts.length === 1 ? parts[0]! : Buffer.concat(parts), LEVEL, out, bodyAt);
  if (packed === 0) parts.reduce((at, p) => at + p.copy(out, at), bodyAt);
  const bodyLength = packed || length;
  const flags = packed > 0 ? FLAG_ZSTD : 0;
  const stored = paddedLength(HEADER_BYTES + INNER_HEADER + bodyLength + TAG_BYTES);
  out.fill(0, bodyAt + bodyLength, stored - TAG_BYTES);
  const secret = deterministic ? deriveKey(seedOf(signer.signing), Buffer.concat([signer.writer, Buffer.from([kind]), sha256(out.subarray(bodyAt, bodyAt + bodyLength))]), DETERMINISTIC_INFO) : undefined;
  const { key, ephemeral } = agreeKey(sealPublic, KEY_INFO, secret);
  MAGIC.copy(out, 0);
  out[4] = kind;
  ephemeral.copy(out, 5);
  let at = HEADER_BYTES + signer.writer.copy(out, HEADER_BYTES);
  at += signMessage(signer.signing, signedPart(kind, ephemeral, flags, out.subarray(bodyAt, bodyAt + bodyLength))).copy(out, at);
  out[at++] = flags;
  out.writeUInt32LE(bodyLength, at);
  const inner = out.subarray(HEADER_BYTES, stored - TAG_BYTES);
  sealInto(key, NONCE, inner, out, HEADER_BYTES, out.subarray(0, HEADER_BYTES));
  return out.subarray(0, stored);
}

/** A decrypted object whose signature is still to be checked against its writer's key. */
export interface OpenedObject {
  writer: Buffer;
  payload: Buffer;
  signedBy(key: KeyObject): boolean;
}

/** Decrypts an object; `what` names it in errors. The caller checks the signature (see Repository.loadObject). */
export function decodeObject(kind: ObjectKind, stored: Buffer, seal: X25519Keys, what: string): OpenedObject {
  if (stored.length < HEADER_BYTES + INNER_HEADER + TAG_BYTES || !stored.subarray(0, 4).equals(MAGIC)) throw new IntegrityError(what, 'not a scrate object');
  if (stored[4] !== kind) throw new IntegrityError(what, 'object of the wrong kind');
  const ephemeral = stored.subarray(5, HEADER_BYTES);
  const key = recoverKey(ephemeral, seal, KEY_INFO);
  const inner = key && open(key, NONCE, stored.subarray(HEADER_BYTES), stored.subarray(0, HEADER_BYTES));
  if (!inner) throw new IntegrityError(what, 'authentication failed (damaged, or not from this repository)');
  const writer = Buffer.from(inner.subarray(0, WRITER_ID_BYTES));
  const signature = inner.subarray(WRITER_ID_BYTES, WRITER_ID_BYTES + SIGNATURE_BYTES);
  const flags = inner[WRITER_ID_BYTES + SIGNATURE_BYTES]!;
  const bodyLength = inner.readUInt32LE(WRITER_ID_BYTES + SIGNATURE_BYTES + 1);
  if (bodyLength > inner.length - INNER_HEADER || (flags & ~FLAG_ZSTD) !== 0) throw new IntegrityError(what, 'malformed object');
  const body = inner.subarray(INNER_HEADER, INNER_HEADER + bodyLength);
  return {
    writer,
    signedBy: (publicKey) => verifySignature(publicKey, signedPart(kind, ephemeral, flags, body), signature),
    get payload() {
      if (!(flags & FLAG_ZSTD)) return body;
      try {
        return decompress(body, MAX_OBJECT_PLAIN_BYTES);
      } catch {
        throw new IntegrityError(what, 'does not decompress');
      }
    },
  };
}
