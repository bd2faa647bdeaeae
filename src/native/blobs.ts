import { createRequire } from 'node:module';

/** Blob decryption and verification in C; implemented in blobs.c, built by node-gyp at install. */
interface BlobsBinding {
  /** AES-256-GCM open of ciphertext-then-tag into `out` (sealed.length - 16 bytes); false when authentication fails. */
  gcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, out: Uint8Array): boolean;
  /** Whether HMAC-SHA-256 of `data` under `key` equals `mac`. */
  hmacSha256Equals(key: Uint8Array, data: Uint8Array, mac: Uint8Array): boolean;
}

const require = createRequire(import.meta.url);
// dist/src/native/blobs.js → build/Release at the package root
export const blobsNative: BlobsBinding = require('../../../build/Release/scrate_blobs.node');
