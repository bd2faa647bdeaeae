/*
 * Naming and sealing a blob, shared by blobs.c (one call at a time on a JS thread) and
 * pipeline.c (batches on libuv's pool): BLAKE3 (deps/blake3) and the OpenSSL Node itself exports.
 */
#ifndef SCRATE_BLOB_CRYPTO_H
#define SCRATE_BLOB_CRYPTO_H
#include <blake3.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define TAG_BYTES 16

/*
 * A blob's ID: BLAKE3 in keyed mode under the repository's 32-byte chunkIdKey. It runs at
 * ~2.9 GB/s on one core here against HMAC-SHA-256's ~1.15 GB/s (SHA-NI), over the kernel
 * tree's files as blobs; docs/PERFORMANCE.md, "Blob IDs by BLAKE3".
 */
static inline void blob_id(const uint8_t key[BLAKE3_KEY_LEN], const uint8_t *data, size_t data_len, uint8_t id[BLAKE3_OUT_LEN]) {
  blake3_hasher h;
  blake3_hasher_init_keyed(&h, key);
  blake3_hasher_update(&h, data, data_len);
  blake3_hasher_finalize(&h, id, BLAKE3_OUT_LEN);
}

/* AES-256-GCM of plain into out: ciphertext, then the 16-byte tag. False if OpenSSL failed. */
static inline bool gcm_seal_into(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *gcm, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len, const uint8_t *plain, size_t plain_len, uint8_t *out) {
  int n, m;
  return EVP_EncryptInit_ex(ctx, gcm, NULL, key, nonce) == 1 &&
         (!aad || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
         EVP_EncryptUpdate(ctx, out, &n, plain, (int)plain_len) == 1 &&
         EVP_EncryptFinal_ex(ctx, out + n, &m) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, out + plain_len) == 1;
}

#endif
