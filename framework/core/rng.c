/* rng.c: Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random numbers:
 * as easy as 1, 2, 3", SC 2011), the generator cuRAND and PyTorch also use for
 * counter-based streams. A 64-bit key and a 128-bit counter give 4 values. */
#include "core/fsq_core.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
  uint64_t p = (uint64_t)a * b;
  *hi = (uint32_t)(p >> 32);
  *lo = (uint32_t)p;
}

fsq_philox_out fsq_philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
  uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int round = 0; round < 10; round++) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(PHILOX_M0, c0, &hi0, &lo0);
    mulhilo(PHILOX_M1, c2, &hi1, &lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  fsq_philox_out out = {{c0, c1, c2, c3}};
  return out;
}

fsq_rng fsq_rng_make(uint64_t seed, uint64_t stream) {
  fsq_rng r = {seed, stream, 0};
  return r;
}

uint32_t fsq_rng_u32_at(uint64_t seed, uint64_t stream, uint64_t i) {
  fsq_philox_out o = fsq_philox(seed, stream, i >> 2);
  return o.v[i & 3];
}

float fsq_rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t i) {
  return (float)(fsq_rng_u32_at(seed, stream, i) >> 8) * (1.0f / 16777216.0f);
}

uint32_t fsq_rng_u32(fsq_rng *r) { return fsq_rng_u32_at(r->seed, r->stream, r->offset++); }

float fsq_rng_uniform(fsq_rng *r) {
  return (float)(fsq_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

/* Lemire's nearly-divisionless bounded integers, exactly unbiased. */
uint32_t fsq_rng_below(fsq_rng *r, uint32_t n) {
  if (n == 0) return 0;
  uint64_t m = (uint64_t)fsq_rng_u32(r) * n;
  uint32_t low = (uint32_t)m;
  if (low < n) {
    uint32_t threshold = (uint32_t)(-n) % n;
    while (low < threshold) {
      m = (uint64_t)fsq_rng_u32(r) * n;
      low = (uint32_t)m;
    }
  }
  return (uint32_t)(m >> 32);
}

void fsq_rng_permutation(fsq_rng *r, uint32_t *perm, size_t n) {
  for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) {
    uint32_t j = fsq_rng_below(r, (uint32_t)i);
    uint32_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}
