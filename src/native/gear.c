/* FastCDC.cut's native search (see gear-search.h) and the PRF that keys its table. */
#include <node_api.h>
#include "gear-search.h"

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok || type != want ? -1 : 0;
}

/*
 * gearCut(table, buf, start, hashStart, centerEnd, windowEnd) -> position or -1.
 * Positions are relative to buf[start]: bytes from hashStart up to centerEnd are tested
 * with the first masks, then up to windowEnd with the second.
 */
static napi_value gear_cut(napi_env env, napi_callback_info info) {
  size_t argc = 6, table_len, buf_len;
  napi_value argv[6], result;
  void *table, *buf;
  uint32_t start, hash_start, center_end, window_end;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 6 ||
      get_typed(env, argv[0], napi_biguint64_array, &table, &table_len) || table_len != GEAR_TABLE_WORDS ||
      get_typed(env, argv[1], napi_uint8_array, &buf, &buf_len) ||
      napi_get_value_uint32(env, argv[2], &start) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &hash_start) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &center_end) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &window_end) != napi_ok ||
      hash_start > center_end || center_end > window_end || (uint64_t)start + window_end > buf_len) {
    napi_throw_type_error(env, NULL, "gearCut(table, buf, start, hashStart, centerEnd, windowEnd): bad arguments");
    return NULL;
  }
  napi_create_int64(env, gear_search(table, (const uint8_t *)buf + start, hash_start, center_end, window_end), &result);
  return result;
}

/* sipHash24(key: 16 bytes, message) -> bigint: SipHash-2-4 of message, the key read as two little-endian words. */
static napi_value sip_hash24(napi_env env, napi_callback_info info) {
  size_t argc = 2, key_len, msg_len;
  napi_value argv[2], result;
  void *key, *msg;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_typed(env, argv[0], napi_uint8_array, &key, &key_len) || key_len != 16 ||
      get_typed(env, argv[1], napi_uint8_array, &msg, &msg_len)) {
    napi_throw_type_error(env, NULL, "sipHash24(key: 16 bytes, message: Uint8Array): bad arguments");
    return NULL;
  }
  napi_create_bigint_uint64(env, siphash24(sip_load(key, 8), sip_load((const uint8_t *)key + 8, 8), msg, msg_len), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"gearCut", NULL, gear_cut, NULL, NULL, NULL, napi_default, NULL},
    {"sipHash24", NULL, sip_hash24, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
