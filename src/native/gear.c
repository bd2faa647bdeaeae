/*
 * The search loop of FastCDC's cut (src/chunker/fastcdc.ts): roll the per-byte gear hash
 * H = sum G[b[j]] << (p - j) (mod 2^64) and stop at the first byte where it passes the mask.
 * In JavaScript H had to be rolled in 32-bit halves (~0.6 GB/s a core); here it is one
 * 64-bit shift and add per byte (~2-3 GB/s), and chunking is a large part of a backup's CPU.
 */
#include <node_api.h>
#include <stdint.h>

/* table: BigUint64Array of 258: the seeded gear table, then the masks before and after avg. */
#define TABLE_WORDS 258

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
      type != napi_biguint64_array || table_len != TABLE_WORDS ||
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
  const uint64_t *gear = table_data;
  const uint64_t mask_s = gear[256], mask_l = gear[257];
  const uint8_t *b = (const uint8_t *)buf_data + start;
  uint64_t h = 0;
  int64_t cut = -1;
  uint32_t p = hash_start;
  for (; p < center_end; p++) {
    h = (h << 1) + gear[b[p]];
    if (!(h & mask_s)) { cut = p; goto done; }
  }
  for (; p < window_end; p++) {
    h = (h << 1) + gear[b[p]];
    if (!(h & mask_l)) { cut = p; goto done; }
  }
done:;
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
