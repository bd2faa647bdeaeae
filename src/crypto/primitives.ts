import { createHash, hkdfSync, randomBytes } from 'node:crypto';
import { blobsNative } from '../native/blobs.js';
import { ID_BYTES } from '../repository/ids.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/*
 * AES-256-GCM goes through src/native/blobs.c (the OpenSSL Node exports) rather than
 * node:crypto's Cipher objects, whose set-up per call cost more than sealing a 16 KiB blob; the
 * output goes straight where the caller wants it (a pack). Blob IDs are keyed BLAKE3, which
 * node:crypto does not have, from the same addon.
 */

/** AES-256-GCM; the returned buffer is ciphertext followed by the 16-byte tag. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES);
  sealInto(key, nonce, plaintext, out, 0, aad);
  return out;
}

/** seal() written into `out` at `at` (plaintext.length + TAG_BYTES bytes), so a pack is assembled without copies. */
export function sealInto(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, out: Buffer, at: number, aad?: Uint8Array): void {
  blobsNative.gcmSeal(key, nonce, plaintext, out, at, aad);
}

/** Inverse of seal; returns null when authentication fails (wrong key or tampered bytes). */
export function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (sealed.length < TAG_BYTES) return null;
  const out = Buffer.allocUnsafe(sealed.length - TAG_BYTES);
  return openInto(key, nonce, sealed, out, aad) ? out : null;
}

/** open() into `out` (sealed.length - TAG_BYTES bytes, e.g. a reused buffer); false when authentication fails. */
export function openInto(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array, aad?: Uint8Array): boolean {
  return blobsNative.gcmOpen(key, nonce, sealed, out, aad);
}

/** Derives a one-purpose key; `info` names the purpose so keys for different uses never coincide. */
export function deriveKey(ikm: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, KEY_BYTES));
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** A blob's ID: BLAKE3 of `data` keyed with the repository's 32-byte chunkIdKey (docs/FORMAT.md). */
export function blobId(chunkIdKey: Uint8Array, data: Uint8Array): Buffer {
  const id = Buffer.allocUnsafe(ID_BYTES);
  blobsNative.blobId(chunkIdKey, data, id);
  return id;
}

export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** A 96-bit GCM nonce holding a counter; unique per message as long as the key is used for one object. */
export function counterNonce(counter: number): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeUIntBE(counter, NONCE_BYTES - 6, 6);
  return nonce;
}
