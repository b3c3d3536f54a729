/* cpu_internal.h: what the CPU backend's files share (not installed). */
#ifndef FSQ_CPU_INTERNAL_H
#define FSQ_CPU_INTERNAL_H

#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"

/* Below this many elements a loop stays on one thread: waking the team
 * costs more than the work. */
#define FSQ_PAR_MIN 32768

/* Each ISA copy of cpu_isa.c fills the float kernels of a table. */
void fsq_kcpu_fill_generic(fsq_kernels *k);
void fsq_kcpu_fill_avx2(fsq_kernels *k);
void fsq_kcpu_fill_avx512(fsq_kernels *k);

/* ---- float math the compiler can vectorize -------------------------------------
 * libm's expf/tanhf/erff are opaque calls that keep a loop scalar; these are
 * branch-free inline versions, accurate to a few ulp (expf: Cephes' minimax
 * polynomial; erff: Numerical Recipes' erfc with fractional error < 1.2e-7).
 * NaN in gives NaN out, so overflow checks downstream still see it. The f64
 * kernels keep libm. */
static inline float fsq_k_expf(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.7f ? 88.7f : x;
  float fx = x * 1.44269504088896341f;
  union {
    float f;
    uint32_t u;
  } t, scale;
  t.f = fx + 12582912.0f; /* 1.5 * 2^23: rounds fx to an integer in the low bits */
  float n = t.f - 12582912.0f;
  uint32_t ni = t.u - 0x4B400000u;
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  scale.u = (ni + 127u) << 23;
  return y * scale.f;
}

static inline float fsq_k_tanhf(float x) {
  float ax = x < 0 ? -x : x;
  /* small |x|: odd polynomial (Cephes tanhf); large: 1 - 2 / (e^2x + 1) */
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float e = fsq_k_expf(2.0f * ax);
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.625f ? small : big;
}

static inline float fsq_k_erff(float x) {
  float z = x < 0 ? -x : x;
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float erfc = t * fsq_k_expf(-z * z + p);
  float r = 1.0f - erfc;
  return x < 0 ? -r : r;
}

/* Philox4x32-10 of one counter block, inline so kernels can keep it in
 * registers; identical to fsq_philox (framework/core/rng.c), which the
 * dropout test checks through fsq_rng_u32_at. */
static inline void fsq_k_philox(uint64_t key, uint64_t hi, uint64_t lo, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)lo, c1 = (uint32_t)(lo >> 32), c2 = (uint32_t)hi,
           c3 = (uint32_t)(hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

#endif
