/* backend_dnnl.c: oneDNN's dnnl_sgemm (row-major, like our CBLAS calls).
 * The Debian build uses the GNU OpenMP runtime, so its thread count is
 * omp_set_num_threads(). oneDNN has no double GEMM. */
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>

#include "bench_gemm.h"

static const char *isa_name(dnnl_cpu_isa_t isa)
{
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

static void dn_describe(FILE *out)
{
  const dnnl_version_t *v = dnnl_version();
  fprintf(out, "library: oneDNN %d.%d.%d (%s), cpu runtime %s\n", v->major,
          v->minor, v->patch, v->hash ? v->hash : "",
          v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other");
  fprintf(out, "dnnl_get_effective_cpu_isa: %s\n",
          isa_name(dnnl_get_effective_cpu_isa()));
}

static void dn_set_threads(int n) { omp_set_num_threads(n); }

static void dn_sgemm(int ta, int tb, int m, int n, int k, const float *a, int lda,
                     const float *b, int ldb, float *c, int ldc)
{
  dnnl_status_t s = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f,
                               a, lda, b, ldb, 0.0f, c, ldc);
  if (s != dnnl_success) {
    fprintf(stderr, "bench_gemm: dnnl_sgemm failed (status %d) for %dx%dx%d\n",
            (int)s, m, n, k);
    exit(1);
  }
}

const bench_backend bench_backend_impl = {
  "onednn", dn_describe, dn_set_threads, dn_sgemm, NULL, NULL,
};
