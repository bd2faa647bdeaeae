import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { deriveKey, open, randomKey, seal, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './primitives.js';

/**
 * Seals a symmetric key to an X25519 public key (ephemeral-static ECDH, HKDF, AES-GCM).
 * This is what lets a host write data packs it cannot read back: it holds only the public key.
 */
export const SEALED_KEY_BYTES = KEY_BYTES + KEY_BYTES + TAG_BYTES;

const ZERO_NONCE = Buffer.alloc(NONCE_BYTES);
const INFO = 'scrate v1 pack key';

export interface X25519Pair {
  publicKey: Buffer;
  privateKey: Buffer;
}

export function generateX25519(): X25519Pair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: rawPublic(publicKey), privateKey: rawPrivate(privateKey) };
}

function rawPublic(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).x!, 'base64url');
}

function rawPrivate(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

function privateKeyObject(priv: Uint8Array, pub: Uint8Array): KeyObject {
  return createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(pub).toString('base64url'), d: Buffer.from(priv).toString('base64url') },
    format: 'jwk',
  });
}

/** Returns a fresh random key and its sealed form (ephemeral public key ‖ wrapped key). */
export function newSealedKey(recipientPublic: Uint8Array): { key: Buffer; sealed: Buffer } {
  const key = randomKey();
  const eph = generateKeyPairSync('x25519');
  const ephPublic = rawPublic(eph.publicKey);
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: publicKeyObject(recipientPublic) });
  // A fresh ephemeral key per seal makes the wrap key single-use, so a zero nonce is safe.
  const wrapKey = deriveKey(shared, Buffer.concat([ephPublic, recipientPublic]), INFO);
  return { key, sealed: Buffer.concat([ephPublic, seal(wrapKey, ZERO_NONCE, key)]) };
}

/** Recovers a key sealed by newSealedKey; null if it was not sealed to this key pair or was altered. */
export function openSealedKey(sealed: Uint8Array, pair: X25519Pair): Buffer | null {
  if (sealed.length !== SEALED_KEY_BYTES) return null;
  const ephPublic = sealed.subarray(0, KEY_BYTES);
  const shared = diffieHellman({ privateKey: privateKeyObject(pair.privateKey, pair.publicKey), publicKey: publicKeyObject(ephPublic) });
  const wrapKey = deriveKey(shared, Buffer.concat([ephPublic, pair.publicKey]), INFO);
  return open(wrapKey, ZERO_NONCE, sealed.subarray(KEY_BYTES));
}
