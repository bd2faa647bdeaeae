/*
 * Sealing, opening and naming blobs without node:crypto objects. A backup seals and names, and
 * a restore opens and checks, one blob per small file, and a Cipher or Decipher object per blob
 * (each with its stream and key set-up) cost more than the AES-GCM work on a 16 KiB blob. These
 * use the OpenSSL that Node itself exports, with one cipher context per thread, and BLAKE3 for
 * IDs, and write into buffers the caller provides (a pack, a reused scratch buffer).
 */
#include <node_api.h>
#include "blob-crypto.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* An optional trailing argument: associated data to authenticate, or undefined for none. */
static int get_aad(napi_env env, size_t argc, napi_value *argv, size_t index, uint8_t **aad, size_t *aad_len) {
  *aad = NULL;
  *aad_len = 0;
  if (argc <= index) return 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[index], &t) != napi_ok) return -1;
  if (t == napi_undefined) return 0;
  return get_bytes(env, argv[index], aad, aad_len) || *aad_len > INT32_MAX ? -1 : 0;
}

/* The arguments every AES-GCM call shares: key (32 bytes) and nonce (12 bytes) first, optional associated data at aad_index. */
static int get_gcm_args(napi_env env, size_t argc, napi_value *argv, size_t aad_index, uint8_t **key, uint8_t **nonce, uint8_t **aad, size_t *aad_len) {
  size_t key_len, nonce_len;
  return get_bytes(env, argv[0], key, &key_len) || get_bytes(env, argv[1], nonce, &nonce_len) || key_len != 32 ||
                 nonce_len != 12 || get_aad(env, argc, argv, aad_index, aad, aad_len)
             ? -1
             : 0;
}

static napi_value boolean(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/*
 * gcmOpen(key: Uint8Array(32), nonce: Uint8Array(12), sealed: Uint8Array, out: Uint8Array, aad?: Uint8Array) -> boolean
 * AES-256-GCM: sealed is ciphertext then tag; out receives sealed.length - 16 bytes of plaintext.
 * False when authentication fails (out then holds garbage).
 */
static napi_value gcm_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  Instance *inst;
  napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&inst);
  uint8_t *key, *nonce, *sealed, *out, *aad;
  size_t sealed_len, out_len, aad_len;
  if (argc < 4 || get_gcm_args(env, argc, argv, 4, &key, &nonce, &aad, &aad_len) ||
      get_bytes(env, argv[2], &sealed, &sealed_len) || get_bytes(env, argv[3], &out, &out_len) ||
      sealed_len < TAG_BYTES || out_len != sealed_len - TAG_BYTES || sealed_len - TAG_BYTES > INT32_MAX) {
    napi_throw_type_error(env, NULL, "gcmOpen(key: 32 bytes, nonce: 12 bytes, sealed: ≥ 16 bytes, out: sealed.length - 16 bytes, aad?)");
    return NULL;
  }
  int n, ok = EVP_DecryptInit_ex(inst->ctx, inst->gcm, NULL, key, nonce) == 1 &&
              (!aad || EVP_DecryptUpdate(inst->ctx, NULL, &n, aad, (int)aad_len) == 1) &&
              EVP_DecryptUpdate(inst->ctx, out, &n, sealed, (int)out_len) == 1 &&
              EVP_CIPHER_CTX_ctrl(inst->ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, sealed + out_len) == 1 &&
              EVP_DecryptFinal_ex(inst->ctx, out + n, &n) == 1;
  return boolean(env, ok);
}

/* blobId(key: Uint8Array(32), data: Uint8Array, out: Uint8Array(32)): the blob's ID into out */
static napi_value blob_id_of(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint8_t *key, *data, *out;
  size_t key_len, data_len, out_len;
  if (argc < 3 || get_bytes(env, argv[0], &key, &key_len) || key_len != BLAKE3_KEY_LEN || get_bytes(env, argv[1], &data, &data_len) ||
      get_bytes(env, argv[2], &out, &out_len) || out_len != BLAKE3_OUT_LEN) {
    napi_throw_type_error(env, NULL, "blobId(key: 32 bytes, data: Uint8Array, out: 32 bytes)");
    return NULL;
  }
  blob_id(key, data, data_len, out);
  return NULL;
}

/*
 * gcmSeal(key: Uint8Array(32), nonce: Uint8Array(12), plaintext: Uint8Array, out: Uint8Array, at: number, aad?: Uint8Array)
 * AES-256-GCM: ciphertext then the 16-byte tag into out[at, at + plaintext.length + 16).
 */
static napi_value gcm_seal(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  Instance *inst;
  napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&inst);
  uint8_t *key, *nonce, *plain, *out, *aad;
  size_t plain_len, out_len, aad_len;
  uint32_t at;
  if (argc < 5 || get_gcm_args(env, argc, argv, 5, &key, &nonce, &aad, &aad_len) ||
      get_bytes(env, argv[2], &plain, &plain_len) || get_bytes(env, argv[3], &out, &out_len) ||
      napi_get_value_uint32(env, argv[4], &at) != napi_ok || plain_len > INT32_MAX ||
      (uint64_t)at + plain_len + TAG_BYTES > out_len) {
    napi_throw_type_error(env, NULL, "gcmSeal(key: 32 bytes, nonce: 12 bytes, plaintext, out, at): out too small");
    return NULL;
  }
  if (!gcm_seal_into(inst->ctx, inst->gcm, key, nonce, aad, aad_len, plain, plain_len, out + at)) {
    napi_throw_error(env, NULL, "AES-256-GCM encryption failed");
    return NULL;
  }
  return NULL;
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
    {"gcmSeal", NULL, gcm_seal, NULL, NULL, NULL, napi_default, inst},
    {"blobId", NULL, blob_id_of, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
