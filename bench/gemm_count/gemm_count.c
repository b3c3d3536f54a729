/* gemm_count.c: an LD_PRELOAD library that counts the floating-point work
 * of every cblas_sgemm / cblas_dgemm call of a program (2 m n k per call,
 * k multiply-adds per output element) and passes each call on to the real
 * BLAS. At exit each process that multiplied anything appends one line to
 * the file $FSQ_GEMM_COUNT_FILE (stderr without it; a benchmark script may
 * send the program's stderr elsewhere):
 *   gemm-count: F GFLOP in N calls (S of them under 100 kFLOP)
 * so that a benchmark's figure can be set against the GEMM peak (the most
 * the machine could do with that work). Built and used by
 * scripts/count-gemm-flops; not part of the library. Needs OpenBLAS's cblas.h
 * (blasint, CBLAS_LAYOUT), the BLAS the project links. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

typedef void sgemm_fn(CBLAS_LAYOUT, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint,
                      float, const float *, blasint, const float *, blasint, float, float *,
                      blasint);
typedef void dgemm_fn(CBLAS_LAYOUT, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint,
                      double, const double *, blasint, const double *, blasint, double, double *,
                      blasint);

/* Sums in units of 1 multiply-add (fits 2^63 for any realistic run). */
static atomic_llong mul_adds, calls, small_calls;

static void count(blasint m, blasint n, blasint k) {
  long long w = (long long)m * (long long)n * (long long)k;
  atomic_fetch_add(&mul_adds, w);
  atomic_fetch_add(&calls, 1);
  if (2 * w < 100000) atomic_fetch_add(&small_calls, 1);
}

void cblas_sgemm(CBLAS_LAYOUT o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n,
                 blasint k, float alpha, const float *a, blasint lda, const float *b, blasint ldb,
                 float beta, float *c, blasint ldc) {
  static sgemm_fn *real;
  if (real == NULL) real = (sgemm_fn *)dlsym(RTLD_NEXT, "cblas_sgemm");
  count(m, n, k);
  real(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cblas_dgemm(CBLAS_LAYOUT o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n,
                 blasint k, double alpha, const double *a, blasint lda, const double *b,
                 blasint ldb, double beta, double *c, blasint ldc) {
  static dgemm_fn *real;
  if (real == NULL) real = (dgemm_fn *)dlsym(RTLD_NEXT, "cblas_dgemm");
  count(m, n, k);
  real(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* Only processes that multiplied anything report (a libtool wrapper's
 * shell and its helpers load this library too; mpirun's ranks each add a
 * line). */
__attribute__((destructor)) static void report(void) {
  if (atomic_load(&calls) == 0) return;
  const char *path = getenv("FSQ_GEMM_COUNT_FILE");
  FILE *f = path != NULL ? fopen(path, "a") : NULL;
  fprintf(f != NULL ? f : stderr,
          "gemm-count: %.3f GFLOP in %lld calls (%lld of them under 100 kFLOP)\n",
          2.0 * (double)atomic_load(&mul_adds) / 1e9, (long long)atomic_load(&calls),
          (long long)atomic_load(&small_calls));
  if (f != NULL) fclose(f);
}
