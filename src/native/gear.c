/* FastCDC.cut's native search (see gear-search.h). */
#include <node_api.h>
#include "gear-search.h"

/*
 * gearCut(table, buf, start, hashStart, centerEnd, windowEnd) -> position or -1.
 * Positions are relative to buf[start]: bytes from hashStart up to centerEnd are tested
 * with the first mask, then up to windowEnd with the second.
 */
static napi_value gear_cut(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_typedarray_type type;
  size_t table_len, buf_len;
  void *table_data, *buf_data;
  uint32_t start, hash_start, center_end, window_end;
  if (argc < 6 ||
      napi_get_typedarray_info(env, argv[0], &type, &table_len, &table_data, NULL, NULL) != napi_ok ||
      type != napi_biguint64_array || table_len != GEAR_TABLE_WORDS ||
      napi_get_typedarray_info(env, argv[1], &type, &buf_len, &buf_data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array ||
      napi_get_value_uint32(env, argv[2], &start) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &hash_start) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &center_end) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &window_end) != napi_ok ||
      hash_start > center_end || center_end > window_end || (uint64_t)start + window_end > buf_len) {
    napi_throw_type_error(env, NULL, "gearCut(table, buf, start, hashStart, centerEnd, windowEnd): bad arguments");
    return NULL;
  }
  int64_t cut = gear_search(table_data, (const uint8_t *)buf_data + start, hash_start, center_end, window_end);
  napi_value result;
  napi_create_int64(env, cut, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"gearCut", NULL, gear_cut, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 1, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
