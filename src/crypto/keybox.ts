import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { deriveKey, KEY_BYTES, NONCE_BYTES, open, seal } from './primitives.js';

/**
 * Keys agreed with an X25519 public key (ephemeral-static ECDH, then HKDF): anyone holding the
 * repository's public key can encrypt a pack or an object that only the private key opens. This
 * is what lets a write-only host store backups it cannot read back.
 */
export const EPHEMERAL_BYTES = KEY_BYTES;

/** PKCS#8 DER of an X25519 private key, up to its 32 bytes (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519Keys {
  /** Raw 32 bytes. */
  readonly public: Buffer;
  readonly private: KeyObject;
}

/** The key pair of a 32-byte private key (any 32 bytes are one: X25519 clamps them). */
export function x25519Keys(privateRaw: Uint8Array): X25519Keys {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, privateRaw]), format: 'der', type: 'pkcs8' });
  return { private: priv, public: rawPublic(createPublicKey(priv)) };
}

function rawPublic(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length));
}

function freshKeys(): X25519Keys {
  const pair = generateKeyPairSync('x25519');
  return { private: pair.privateKey, public: rawPublic(pair.publicKey) };
}

function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/**
 * A fresh key for one pack or object, and the ephemeral public key that lets the holder of
 * `recipient`'s private key derive it again. The ephemeral pair is used once, so the key is too.
 * With `ephemeralSecret` the pair is that secret's (a deterministic object, FORMAT.md §7.1): the
 * caller derives it from the very plaintext it seals, so it too serves one message only.
 */
export function agreeKey(recipient: Uint8Array, info: string, ephemeralSecret?: Uint8Array): { key: Buffer; ephemeral: Buffer } {
  const eph = ephemeralSecret ? x25519Keys(ephemeralSecret) : freshKeys();
  const ephemeral = eph.public;
  const shared = diffieHellman({ privateKey: eph.private, publicKey: publicKeyObject(recipient) });
  return { key: deriveKey(shared, Buffer.concat([ephemeral, recipient]), info), ephemeral };
}

/** The key agreeKey gave for `ephemeral`; null when `ephemeral` is not a usable public key. */
export function recoverKey(ephemeral: Uint8Array, recipient: X25519Keys, info: string): Buffer | null {
  if (ephemeral.length !== EPHEMERAL_BYTES) return null;
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: recipient.private, publicKey: publicKeyObject(ephemeral) });
  } catch {
    // A low-order point planted in a pack or object: no key, rather than a crash.
    return null;
  }
  return deriveKey(shared, Buffer.concat([ephemeral, recipient.public]), info);
}

const ZERO_NONCE = Buffer.alloc(NONCE_BYTES);

/** A small message only `recipient`'s private key opens: ephemeral public key ‖ AES-GCM (the key is used once). */
export function sealBox(recipient: Uint8Array, info: string, plaintext: Uint8Array): Buffer {
  const { key, ephemeral } = agreeKey(recipient, info);
  return Buffer.concat([ephemeral, seal(key, ZERO_NONCE, plaintext)]);
}

/** What sealBox sealed; null when it was not sealed to these keys or was altered. */
export function openBox(box: Uint8Array, recipient: X25519Keys, info: string): Buffer | null {
  const key = recoverKey(box.subarray(0, EPHEMERAL_BYTES), recipient, info);
  return key && open(key, ZERO_NONCE, box.subarray(EPHEMERAL_BYTES));
}
