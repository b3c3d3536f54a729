/* grads.c: gradient norm, scaling and clipping over flat f32 buffers. */
#include <math.h>

#include "train/fsq_grads.h"

/* Sum of squares of g[0..m) in fixed chunks added in a fixed order, so the
 * result is the same bit for bit whatever the number of threads (an OpenMP
 * reduction may combine partial sums in any order). */
#define NORM_CHUNK 16384

static double chunk_squares(const float *g, size_t m) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < m; i++) sum += (double)g[i] * (double)g[i];
  return sum;
}

static double buffer_squares(const float *g, size_t m) {
  size_t chunks = (m + NORM_CHUNK - 1) / NORM_CHUNK;
  if (chunks <= 1) return chunk_squares(g, m);
  double partial[64];
  double total = 0.0;
  for (size_t base = 0; base < chunks; base += 64) {
    size_t count = chunks - base < 64 ? chunks - base : 64;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < count; c++) {
      size_t start = (base + c) * NORM_CHUNK;
      size_t len = m - start < NORM_CHUNK ? m - start : NORM_CHUNK;
      partial[c] = chunk_squares(g + start, len);
    }
    for (size_t c = 0; c < count; c++) total += partial[c];
  }
  return total;
}

double fsq_grads_norm(const fsq_grad_buffer *grads, size_t n) {
  double total = 0.0;
  for (size_t b = 0; b < n; b++) total += buffer_squares(grads[b].data, grads[b].numel);
  return sqrt(total);
}

void fsq_grads_scale(const fsq_grad_buffer *grads, size_t n, float factor) {
  for (size_t b = 0; b < n; b++) {
    float *g = grads[b].data;
    size_t m = grads[b].numel;
#pragma omp parallel for simd schedule(static) if (m > 65536)
    for (size_t i = 0; i < m; i++) g[i] *= factor;
  }
}

double fsq_grads_clip(const fsq_grad_buffer *grads, size_t n, double max_norm) {
  double norm = fsq_grads_norm(grads, n);
  if (max_norm > 0 && isfinite(norm)) {
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) fsq_grads_scale(grads, n, (float)coef);
  }
  return norm;
}
