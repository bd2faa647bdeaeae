/*
 * The chunker's search loop (src/chunker/fastcdc.ts): roll the per-byte gear hash
 * H = sum G[b[j]] << (p - j) (mod 2^64) and stop at the first byte where it passes the cut test.
 * In JavaScript H had to be rolled in 32-bit halves (~0.6 GB/s a core); here it is one
 * 64-bit shift and add per byte (~2-3 GB/s). Shared by gear.c (FastCDC.cut) and pipeline.c.
 *
 * The cut test has two stages: H & candidate mask == 0, then SipHash-2-4 of H under the PRF
 * key & PRF mask == 0. With PRF masks of 0 every candidate is a cut: FastCDC as the reference.
 * A keyed chunker's candidate masks are a prefilter of a few bits, so the PRF runs at about one
 * hashed byte in a thousand, and it decides the rest: boundaries, even with the gear table,
 * tell nothing of the PRF's outputs at other values of H, and so nothing of boundaries elsewhere.
 */
#ifndef SCRATE_GEAR_SEARCH_H
#define SCRATE_GEAR_SEARCH_H
#include <stdint.h>
#include "siphash.h"

/* The table's words: the gear table G, then masks (before and after avg) and the PRF key. */
enum {
  GEAR_CANDIDATE_S = 256, GEAR_CANDIDATE_L, GEAR_PRF_S, GEAR_PRF_L, GEAR_PRF_K0, GEAR_PRF_K1,
  GEAR_TABLE_WORDS
};

static inline int gear_prf_passes(const uint64_t *table, uint64_t h, uint64_t prf_mask) {
  if (!prf_mask) return 1;
  uint8_t m[8];
  for (int i = 0; i < 8; i++) m[i] = (uint8_t)(h >> (8 * i));
  return !(siphash24(table[GEAR_PRF_K0], table[GEAR_PRF_K1], m, sizeof m) & prf_mask);
}

/*
 * The first p in [p, end) where H, rolled on to it, passes the candidate mask; end if none.
 * A loop of its own so that a byte that is no candidate costs what it did in FastCDC's loop (one
 * branch taken): with the PRF's test inside one loop, GCC laid out two branches a byte and the
 * search ran a third slower, keyed or not.
 */
static inline uint32_t gear_candidate(const uint64_t *table, const uint8_t *b, uint32_t p, uint32_t end, uint64_t mask, uint64_t *h) {
  uint64_t x = *h;
  for (; p < end; p++) {
    x = (x << 1) + table[b[p]];
    if (!(x & mask)) break;
  }
  *h = x;
  return p;
}

/* The first p in [hash_start, window_end) where H passes the first masks (p < center_end) or the second; -1 if none. */
static inline int64_t gear_search(const uint64_t *table, const uint8_t *b, uint32_t hash_start, uint32_t center_end, uint32_t window_end) {
  uint64_t h = 0;
  uint32_t p = hash_start;
  for (; (p = gear_candidate(table, b, p, center_end, table[GEAR_CANDIDATE_S], &h)) < center_end; p++) {
    if (gear_prf_passes(table, h, table[GEAR_PRF_S])) return p;
  }
  for (; (p = gear_candidate(table, b, p, window_end, table[GEAR_CANDIDATE_L], &h)) < window_end; p++) {
    if (gear_prf_passes(table, h, table[GEAR_PRF_L])) return p;
  }
  return -1;
}

#endif
