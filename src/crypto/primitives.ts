import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** AES-256-GCM; the returned buffer is ciphertext followed by the 16-byte tag. */
export function seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plaintext.length + TAG_BYTES);
  sealInto(key, nonce, plaintext, out, 0, aad);
  return out;
}

/** seal() written into `out` at `at` (plaintext.length + TAG_BYTES bytes), so a pack is assembled without copies of copies. */
export function sealInto(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, out: Buffer, at: number, aad?: Uint8Array): void {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) cipher.setAAD(aad);
  const n = cipher.update(plaintext).copy(out, at);
  cipher.final().copy(out, at + n);
  cipher.getAuthTag().copy(out, at + plaintext.length);
}

/** Inverse of seal; returns null when authentication fails (wrong key or tampered bytes). */
export function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (sealed.length < TAG_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  try {
    const tail = decipher.final();
    return tail.length ? Buffer.concat([body, tail]) : body;
  } catch {
    return null;
  }
}

/** Derives a one-purpose key; `info` names the purpose so keys for different uses never coincide. */
export function deriveKey(ikm: Uint8Array, salt: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, KEY_BYTES));
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
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
