/* bench_gemm.h: the interface between the GEMM benchmark driver
 * (bench_gemm.c) and one library backend (backend_openblas.c,
 * backend_dnnl.c). Measurement code only: not part of libfsq. */
#ifndef BENCH_GEMM_H
#define BENCH_GEMM_H

#include <stdio.h>

/* C[M,N] = op(A) op(B), row-major, alpha = 1, beta = 0.
 * op(A): [M,K]; A is stored [M,K] (lda = K) or, transposed, [K,M] (lda = M).
 * op(B): [K,N]; B is stored [K,N] (ldb = N) or, transposed, [N,K] (ldb = K). */
typedef struct {
  const char *name;
  /* Prints library, version, kernel/core type and threading model. */
  void (*describe)(FILE *out);
  /* Number of threads the library itself uses for one GEMM call. */
  void (*set_threads)(int n);
  void (*sgemm)(int ta, int tb, int m, int n, int k, const float *a, int lda,
                const float *b, int ldb, float *c, int ldc);
  /* y[n] = B x, B [n, k] row-major (or its transpose, B [k, n], when tb);
   * NULL when the library has none. Used for --gemv: a GEMM with small M
   * as M matrix-vector products. */
  void (*sgemv)(int tb, int n, int k, const float *b, int ldb, const float *x,
                float *y);
  /* NULL when the library has no double GEMM. */
  void (*dgemm)(int ta, int tb, int m, int n, int k, const double *a, int lda,
                const double *b, int ldb, double *c, int ldc);
} bench_backend;

extern const bench_backend bench_backend_impl;

#endif
