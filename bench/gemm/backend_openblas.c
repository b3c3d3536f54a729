/* backend_openblas.c: OpenBLAS through CBLAS. Which build runs (pthread or
 * OpenMP) is decided by the dynamic loader (LD_LIBRARY_PATH), so describe()
 * reports the file the symbols came from and what the library says of itself. */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>

#include "bench_gemm.h"

static const char *parallel_name(int p)
{
  switch (p) {
  case 0: return "sequential";
  case 1: return "pthreads";
  case 2: return "OpenMP";
  default: return "unknown";
  }
}

static void ob_describe(FILE *out)
{
  Dl_info info;
  const char *path = "?";
  if (dladdr((void *)cblas_sgemm, &info) && info.dli_fname)
    path = info.dli_fname;
  fprintf(out, "library: %s\n", path);
  fprintf(out, "openblas_get_config: %s\n", openblas_get_config());
  fprintf(out, "openblas_get_corename: %s\n", openblas_get_corename());
  fprintf(out, "openblas_get_parallel: %s; num_procs %d; num_threads %d\n",
          parallel_name(openblas_get_parallel()), openblas_get_num_procs(),
          openblas_get_num_threads());
}

static void ob_set_threads(int n) { openblas_set_num_threads(n); }

static void ob_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, float *c, int ldc)
{
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
              0.0f, c, ldc);
}

static void ob_sgemv(int tb, int n, int k, const float *b, int ldb,
                     const float *x, float *y)
{
  /* tb: B is stored [k, n], y = B^T x; else B is [n, k], y = B x. */
  if (tb)
    cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, b, ldb, x, 1, 0.0f, y, 1);
  else
    cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, b, ldb, x, 1, 0.0f, y,
                1);
}

static void ob_dgemm(int ta, int tb, int m, int n, int k, const double *a,
                     int lda, const double *b, int ldb, double *c, int ldc)
{
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
              tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b, ldb, 0.0,
              c, ldc);
}

const bench_backend bench_backend_impl = {
  "openblas", ob_describe, ob_set_threads, ob_sgemm, ob_sgemv, ob_dgemm,
};
