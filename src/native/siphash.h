/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012): the keyed PRF of the chunker, for its gear table
 * (gear.c's sipHash24, called by src/chunker/fastcdc.ts) and for its cut test (gear-search.h).
 * A PRF with a 128-bit key and a 64-bit output, cheap on one word, which node:crypto lacks.
 */
#ifndef SCRATE_SIPHASH_H
#define SCRATE_SIPHASH_H
#include <stddef.h>
#include <stdint.h>

static inline uint64_t sip_rotl(uint64_t x, int b) {
  return (x << b) | (x >> (64 - b));
}

static inline void sip_round(uint64_t *v0, uint64_t *v1, uint64_t *v2, uint64_t *v3) {
  *v0 += *v1; *v1 = sip_rotl(*v1, 13); *v1 ^= *v0; *v0 = sip_rotl(*v0, 32);
  *v2 += *v3; *v3 = sip_rotl(*v3, 16); *v3 ^= *v2;
  *v0 += *v3; *v3 = sip_rotl(*v3, 21); *v3 ^= *v0;
  *v2 += *v1; *v1 = sip_rotl(*v1, 17); *v1 ^= *v2; *v2 = sip_rotl(*v2, 32);
}

/* Bytes read as a little-endian word whatever the host's order: the paper's vectors fix it. */
static inline uint64_t sip_load(const uint8_t *p, size_t n) {
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++) w |= (uint64_t)p[i] << (8 * i);
  return w;
}

/* SipHash-2-4 of m[0, len) under the key k0 ‖ k1 (each the little-endian word of 8 key bytes). */
static inline uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *m, size_t len) {
  uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
  uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
  size_t whole = len & ~(size_t)7;
  for (size_t i = 0; i <= whole; i += 8) {
    /* The last block holds the bytes left over and the length's low byte on top. */
    uint64_t w = i < whole ? sip_load(m + i, 8) : sip_load(m + i, len - whole) | (uint64_t)len << 56;
    v3 ^= w;
    sip_round(&v0, &v1, &v2, &v3);
    sip_round(&v0, &v1, &v2, &v3);
    v0 ^= w;
  }
  v2 ^= 0xff;
  for (int r = 0; r < 4; r++) sip_round(&v0, &v1, &v2, &v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

#endif
