import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** Ed25519 (node:crypto): who wrote an object, checkable by whoever holds the public key. */
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;

/** PKCS#8 DER of an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SubjectPublicKeyInfo DER of an Ed25519 public key, up to its 32 bytes. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKey {
  readonly private: KeyObject;
  /** Raw 32 bytes. */
  readonly public: Buffer;
}

/** The signing key of a 32-byte seed (random, or derived from a repository's master secret). */
export function signingKey(seed: Uint8Array): SigningKey {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  return { private: priv, public: Buffer.from(pub) };
}

/** The seed a signing key was made from: a secret only its holder has, for deriving keys of its own. */
export function seedOf(key: SigningKey): Buffer {
  return Buffer.from(key.private.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length));
}

export function verifyingKey(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new RangeError('an Ed25519 public key is 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function signMessage(key: SigningKey, message: Uint8Array): Buffer {
  return sign(null, message, key.private);
}

export function verifySignature(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  return signature.length === SIGNATURE_BYTES && verify(null, message, key, signature);
}
