import { createRequire } from 'node:module';

/** Blob sealing, opening and naming in C; implemented in blobs.c, built by node-gyp at install. */
interface BlobsBinding {
  /** AES-256-GCM: ciphertext then the 16-byte tag into out[at, at + plaintext.length + 16). */
  gcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, out: Uint8Array, at: number, aad?: Uint8Array): void;
  /** Keyed BLAKE3 of `data` under `key` (32 bytes) into `out` (32 bytes): a blob's ID. */
  blobId(key: Uint8Array, data: Uint8Array, out: Uint8Array): void;
  /** AES-256-GCM open of ciphertext-then-tag into `out` (sealed.length - 16 bytes); false when authentication fails. */
  gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array, aad?: Uint8Array): boolean;
}

const require = createRequire(import.meta.url);
// dist/src/native/blobs.js → build/Release at the package root
export const blobsNative: BlobsBinding = require('../../../build/Release/scrate_blobs.node');
