/*
 * Naming and sealing a blob, shared by blobs.c (one call at a time on a JS thread) and
 * pipeline.c (batches on libuv's pool): the OpenSSL Node itself exports.
 */
#ifndef SCRATE_BLOB_CRYPTO_H
#define SCRATE_BLOB_CRYPTO_H
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends: plain structs, no provider look-up */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define TAG_BYTES 16

/* HMAC-SHA-256 with plain SHA256 structs: no EVP_MAC look-up per call. */
static inline void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len, uint8_t *mac) {
  uint8_t k[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH];
  if (key_len > SHA256_CBLOCK) SHA256(key, key_len, k);
  else memcpy(k, key, key_len);
  SHA256_CTX c;
  for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = k[i] ^ 0x36;
  SHA256_Init(&c);
  SHA256_Update(&c, pad, SHA256_CBLOCK);
  SHA256_Update(&c, data, data_len);
  SHA256_Final(inner, &c);
  for (int i = 0; i < SHA256_CBLOCK; i++) pad[i] = k[i] ^ 0x5c;
  SHA256_Init(&c);
  SHA256_Update(&c, pad, SHA256_CBLOCK);
  SHA256_Update(&c, inner, SHA256_DIGEST_LENGTH);
  SHA256_Final(mac, &c);
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
