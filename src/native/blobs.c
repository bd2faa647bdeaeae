/*
 * Opening and verifying data blobs without node:crypto objects. A restore decodes one blob per
 * small file, and a Decipher and an Hmac object per blob (each with its stream and key set-up)
 * cost more than the AES-GCM and SHA-256 work on a 16 KiB blob. These use the OpenSSL that
 * Node itself exports, with one cipher context per thread.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends: plain structs, no provider look-up */
#include <node_api.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TAG_BYTES 16

typedef struct {
  EVP_CIPHER *gcm;
  EVP_CIPHER_CTX *ctx;
} Instance;

static int get_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint8_array) return -1;
  *data = p;
  return 0;
}

static napi_value boolean(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/*
 * gcmOpen(key: Uint8Array(32), nonce: Uint8Array(12), sealed: Uint8Array, out: Uint8Array) -> boolean
 * AES-256-GCM: sealed is ciphertext then tag; out receives sealed.length - 16 bytes of plaintext.
 * False when authentication fails (out then holds garbage).
 */
static napi_value gcm_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  Instance *inst;
  napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&inst);
  uint8_t *key, *nonce, *sealed, *out;
  size_t key_len, nonce_len, sealed_len, out_len;
  if (argc < 4 || get_bytes(env, argv[0], &key, &key_len) || get_bytes(env, argv[1], &nonce, &nonce_len) ||
      get_bytes(env, argv[2], &sealed, &sealed_len) || get_bytes(env, argv[3], &out, &out_len) || key_len != 32 ||
      nonce_len != 12 || sealed_len < TAG_BYTES || out_len != sealed_len - TAG_BYTES || sealed_len - TAG_BYTES > INT32_MAX) {
    napi_throw_type_error(env, NULL, "gcmOpen(key: 32 bytes, nonce: 12 bytes, sealed: ≥ 16 bytes, out: sealed.length - 16 bytes)");
    return NULL;
  }
  int n, ok = EVP_DecryptInit_ex(inst->ctx, inst->gcm, NULL, key, nonce) == 1 &&
              EVP_DecryptUpdate(inst->ctx, out, &n, sealed, (int)out_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(inst->ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, sealed + out_len) == 1 &&
              EVP_DecryptFinal_ex(inst->ctx, out + n, &n) == 1;
  return boolean(env, ok);
}

/* hmacSha256Equals(key: Uint8Array, data: Uint8Array, mac: Uint8Array(32)) -> boolean (HMAC-SHA-256 of data equals mac) */
static napi_value hmac_equals(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *key, *data, *mac;
  size_t key_len, data_len, mac_len;
  if (argc < 3 || get_bytes(env, argv[0], &key, &key_len) || get_bytes(env, argv[1], &data, &data_len) ||
      get_bytes(env, argv[2], &mac, &mac_len)) {
    napi_throw_type_error(env, NULL, "hmacSha256Equals(key: Uint8Array, data: Uint8Array, mac: Uint8Array)");
    return NULL;
  }
  if (mac_len != SHA256_DIGEST_LENGTH) return boolean(env, false);
  uint8_t k[SHA256_CBLOCK] = {0}, pad[SHA256_CBLOCK], inner[SHA256_DIGEST_LENGTH], outer[SHA256_DIGEST_LENGTH];
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
  SHA256_Final(outer, &c);
  /* The ID is no secret (it names the blob in the index): no need for a constant-time compare. */
  return boolean(env, memcmp(outer, mac, SHA256_DIGEST_LENGTH) == 0);
}

static void free_instance(napi_env env, void *data, void *hint) {
  Instance *inst = data;
  EVP_CIPHER_CTX_free(inst->ctx);
  EVP_CIPHER_free(inst->gcm);
  free(inst);
}

static napi_value init(napi_env env, napi_value exports) {
  Instance *inst = calloc(1, sizeof *inst);
  if (!inst || !(inst->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL)) || !(inst->ctx = EVP_CIPHER_CTX_new())) {
    if (inst) free_instance(env, inst, NULL);
    napi_throw_error(env, NULL, "cannot set up AES-256-GCM");
    return NULL;
  }
  napi_set_instance_data(env, inst, free_instance, NULL);
  napi_property_descriptor props[] = {
    {"gcmOpen", NULL, gcm_open, NULL, NULL, NULL, napi_default, inst},
    {"hmacSha256Equals", NULL, hmac_equals, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
