/* cpu_internal.h: what the CPU backend's files share (not installed). */
#ifndef FSQ_CPU_INTERNAL_H
#define FSQ_CPU_INTERNAL_H

#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"
#include "kernels/fsq_kernel_math.h"

/* Below this many elements a loop stays on one thread: waking the team
 * costs more than the work. */
#define FSQ_PAR_MIN 32768

/* Each ISA copy of cpu_isa.c fills the float kernels of a table. */
void fsq_kcpu_fill_generic(fsq_kernels *k);
void fsq_kcpu_fill_avx2(fsq_kernels *k);
void fsq_kcpu_fill_avx512(fsq_kernels *k);

/* FSQ_PHILOX_LANES consecutive blocks (counters lo0, lo0 + 1, ...) at once,
 * written as out[4 * lane + word] like fsq_k_philox. The state lives in one
 * array per word so each round is a plain SIMD loop over lanes. */
#define FSQ_PHILOX_LANES 16
#if defined(__AVX512F__)
#include <immintrin.h>
/* hi and lo 32-bit halves of the 16 products m * c (vpmuludq on even and
 * odd lanes: GCC would otherwise use the slow 64-bit vpmullq). */
static inline void fsq_k_mulhilo16(__m512i m, __m512i c, __m512i *hi, __m512i *lo) {
  __m512i even = _mm512_mul_epu32(c, m);
  __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(c, 32), m);
  *hi = _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(even, 32), odd);
  *lo = _mm512_mullo_epi32(c, m);
}

static inline void fsq_k_philox_lanes(uint64_t key, uint64_t hi, uint64_t lo0, uint32_t *out) {
  /* lo0 + lane must not carry into the upper counter word within one call
   * for the fast path; otherwise use the scalar reference */
  if ((uint32_t)lo0 > UINT32_MAX - FSQ_PHILOX_LANES) {
    for (int l = 0; l < FSQ_PHILOX_LANES; l++) fsq_k_philox(key, hi, lo0 + (uint64_t)l, out + 4 * l);
    return;
  }
  __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)lo0), lane);
  __m512i c1 = _mm512_set1_epi32((int)(uint32_t)(lo0 >> 32));
  __m512i c2 = _mm512_set1_epi32((int)(uint32_t)hi);
  __m512i c3 = _mm512_set1_epi32((int)(uint32_t)(hi >> 32));
  __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
    __m512i hi0, lo0v, hi1, lo1;
    fsq_k_mulhilo16(m0, c0, &hi0, &lo0v);
    fsq_k_mulhilo16(m1, c2, &hi1, &lo1);
    __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
    __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0v;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  /* transpose the four words into out[4 * lane + word]: pair words 0,1 and
   * 2,3 lane by lane, then interleave the 64-bit pairs */
  __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  __m512i hi_idx = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  __m512i a = _mm512_permutex2var_epi32(c0, lo_idx, c1), b = _mm512_permutex2var_epi32(c0, hi_idx, c1);
  __m512i c = _mm512_permutex2var_epi32(c2, lo_idx, c3), d = _mm512_permutex2var_epi32(c2, hi_idx, c3);
  __m512i q_lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  __m512i q_hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  _mm512_storeu_si512(out, _mm512_permutex2var_epi64(a, q_lo, c));
  _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi64(a, q_hi, c));
  _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi64(b, q_lo, d));
  _mm512_storeu_si512(out + 48, _mm512_permutex2var_epi64(b, q_hi, d));
}
#else
static inline void fsq_k_philox_lanes(uint64_t key, uint64_t hi, uint64_t lo0, uint32_t *out) {
  uint32_t c0[FSQ_PHILOX_LANES], c1[FSQ_PHILOX_LANES], c2[FSQ_PHILOX_LANES],
      c3[FSQ_PHILOX_LANES];
  for (int l = 0; l < FSQ_PHILOX_LANES; l++) {
    uint64_t lo = lo0 + (uint64_t)l;
    c0[l] = (uint32_t)lo;
    c1[l] = (uint32_t)(lo >> 32);
    c2[l] = (uint32_t)hi;
    c3[l] = (uint32_t)(hi >> 32);
  }
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
#pragma omp simd
    for (int l = 0; l < FSQ_PHILOX_LANES; l++) {
      uint64_t p0 = (uint64_t)0xD2511F53u * c0[l], p1 = (uint64_t)0xCD9E8D57u * c2[l];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = (uint32_t)p1;
      c3[l] = (uint32_t)p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int l = 0; l < FSQ_PHILOX_LANES; l++) {
    out[4 * l] = c0[l];
    out[4 * l + 1] = c1[l];
    out[4 * l + 2] = c2[l];
    out[4 * l + 3] = c3[l];
  }
}
#endif

#endif
