/*
 * FastCDC's search loop (src/chunker/fastcdc.ts): roll the per-byte gear hash
 * H = sum G[b[j]] << (p - j) (mod 2^64) and stop at the first byte where it passes the mask.
 * In JavaScript H had to be rolled in 32-bit halves (~0.6 GB/s a core); here it is one
 * 64-bit shift and add per byte (~2-3 GB/s). Shared by gear.c (FastCDC.cut) and pipeline.c.
 */
#ifndef SCRATE_GEAR_SEARCH_H
#define SCRATE_GEAR_SEARCH_H
#include <stdint.h>

/* table: the seeded gear table G (256 words), then the masks before and after avg. */
#define GEAR_TABLE_WORDS 258

/* The first p in [hash_start, window_end) where H passes the first mask (p < center_end) or the second; -1 if none. */
static inline int64_t gear_search(const uint64_t *gear, const uint8_t *b, uint32_t hash_start, uint32_t center_end, uint32_t window_end) {
  const uint64_t mask_s = gear[256], mask_l = gear[257];
  uint64_t h = 0;
  uint32_t p = hash_start;
  for (; p < center_end; p++) {
    h = (h << 1) + gear[b[p]];
    if (!(h & mask_s)) return p;
  }
  for (; p < window_end; p++) {
    h = (h << 1) + gear[b[p]];
    if (!(h & mask_l)) return p;
  }
  return -1;
}

#endif
