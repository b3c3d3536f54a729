/* cpu_backend.c: the CPU backend table: GEMM through OpenBLAS, casts, and
 * the run-time choice among the ISA copies of cpu_isa.c. f16 and bf16
 * storage goes through cpu_half.c. */
#include "config.h"
#include "kernels/cpu/cpu_half.h"
#include "kernels/cpu/cpu_internal.h"

#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef _OPENMP
#include <omp.h>
#endif

size_t fsq_dtype_size(fsq_dtype t) {
  static const size_t sizes[FSQ_DTYPE_COUNT] = {4, 8, 2, 2, 4, 8, 1};
  return (unsigned)t < FSQ_DTYPE_COUNT ? sizes[t] : 0;
}

const char *fsq_dtype_name(fsq_dtype t) {
  static const char *names[FSQ_DTYPE_COUNT] = {"f32", "f64", "f16", "bf16", "i32", "i64", "u8"};
  return (unsigned)t < FSQ_DTYPE_COUNT ? names[t] : "?";
}

/* ---- f16 / bf16, round to nearest even (kernels/fsq_kernel_math.h) ------ */
uint16_t fsq_f32_to_bf16(float f) { return fsq_k_f32_to_bf16(f); }
float fsq_bf16_to_f32(uint16_t h) { return fsq_k_bf16_to_f32(h); }
uint16_t fsq_f32_to_f16(float f) { return fsq_k_f32_to_f16(f); }
float fsq_f16_to_f32(uint16_t h) { return fsq_k_f16_to_f32(h); }

static void k_cast(fsq_dtype dt, void *dst, fsq_dtype st, const void *src, int64_t n) {
  if (dt == st) {
    memcpy(dst, src, (size_t)n * fsq_dtype_size(dt));
    return;
  }
  if (st == FSQ_I64 && dt == FSQ_I32) { /* exact, no double detour */
    for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)((const int64_t *)src)[i];
    return;
  }
  if (st == FSQ_F32 && (dt == FSQ_F16 || dt == FSQ_BF16)) {
    uint16_t (*conv)(float) = dt == FSQ_F16 ? fsq_f32_to_f16 : fsq_f32_to_bf16;
#pragma omp parallel for if (n >= FSQ_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = conv(((const float *)src)[i]);
    return;
  }
#pragma omp parallel for if (n >= FSQ_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) fsq_k_store_double(dt, dst, i, fsq_k_load_as_double(st, src, i));
}

static void gemm_one(fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                     int64_t ldc) {
  enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if (t == FSQ_F64)
    cblas_dgemm(CblasRowMajor, opa, opb, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
  else
    cblas_sgemm(CblasRowMajor, opa, opb, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a,
                (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
}

/* BLAS runs single-threaded inside our OpenMP team: each thread takes a
 * block of C's rows (or columns, when C is wide), so the process has one set
 * of worker threads and BLAS threads never compete with OpenMP threads for
 * the cores (spinning OpenBLAS workers doubled the time of a GEMM followed by
 * a layer_norm on two cores). */
static void k_gemm(fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                   int64_t ldc) {
  if (fsq_kcpu_is_half(t)) { /* widened to f32 and back (cpu_half.c) */
    fsq_kcpu_half.gemm(t, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  if (m == 0 || n == 0) return;
  size_t es = t == FSQ_F64 ? 8 : 4;
  double work = (double)m * (double)n * (double)k;
  int by_rows = m >= n;
#pragma omp parallel if (work >= 2e6)
  {
    int64_t len = by_rows ? m : n, lo = 0, hi = len;
#ifdef _OPENMP
    int th = omp_get_thread_num(), nth = omp_get_num_threads();
    /* blocks in multiples of 16 keep the BLAS kernels on full panels */
    int64_t units = (len + 15) / 16;
    lo = units * th / nth * 16;
    hi = units * (th + 1) / nth * 16;
    if (hi > len) hi = len;
    if (lo > len) lo = len;
#endif
    if (hi > lo) {
      if (by_rows) /* rows lo..hi of op(A) and C */
        gemm_one(t, ta, tb, hi - lo, n, k, alpha,
                 (const char *)a + (size_t)(ta ? lo : lo * lda) * es, lda, b, ldb, beta,
                 (char *)c + (size_t)(lo * ldc) * es, ldc);
      else /* columns lo..hi of op(B) and C */
        gemm_one(t, ta, tb, m, hi - lo, k, alpha, a, lda,
                 (const char *)b + (size_t)(tb ? lo * ldb : lo) * es, ldb, beta,
                 (char *)c + (size_t)lo * es, ldc);
    }
  }
}

/* Attention multiplies B * H small matrices (T x Dh by Dh x S, ~12k
 * multiply-adds each): too small to split, so the batch is split instead. */
static void k_gemm_batched(fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k,
                           double alpha, const void *a, int64_t lda, const int64_t *a_off,
                           const void *b, int64_t ldb, const int64_t *b_off, double beta,
                           void *c, int64_t ldc, const int64_t *c_off, int64_t batch) {
  if (fsq_kcpu_is_half(t)) {
    fsq_kcpu_half.gemm_batched(t, ta, tb, m, n, k, alpha, a, lda, a_off, b, ldb, b_off, beta, c,
                               ldc, c_off, batch);
    return;
  }
  size_t es = t == FSQ_F64 ? 8 : 4;
  double work = (double)m * (double)n * (double)k;
  if (batch <= 1 || work >= 2e6) {
    for (int64_t i = 0; i < batch; i++)
      k_gemm(t, ta, tb, m, n, k, alpha, (const char *)a + (size_t)a_off[i] * es, lda,
             (const char *)b + (size_t)b_off[i] * es, ldb, beta, (char *)c + (size_t)c_off[i] * es,
             ldc);
    return;
  }
  if (m == 0 || n == 0) return;
#pragma omp parallel for if (work * (double)batch >= 2e6) schedule(static)
  for (int64_t i = 0; i < batch; i++)
    gemm_one(t, ta, tb, m, n, k, alpha, (const char *)a + (size_t)a_off[i] * es, lda,
             (const char *)b + (size_t)b_off[i] * es, ldb, beta, (char *)c + (size_t)c_off[i] * es,
             ldc);
}

/* OpenBLAS's DYNAMIC_ARCH picks its kernels from the CPU model, and a build
 * older than the processor (Debian 12's 0.3.21 on an Emerald Rapids, model
 * 207) falls back to its SSE3 "Prescott" kernels: five times slower than its
 * SkylakeX ones on the same core. When the chosen core lacks AVX-512 but the
 * processor has it, and the user set no OPENBLAS_CORETYPE, re-run OpenBLAS's
 * own selection once with the type forced ($FSQ_OPENBLAS_CORETYPE, default
 * SkylakeX; "keep" disables this). Weak references: a BLAS without these
 * entry points is left alone. */
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

static int core_has_avx512(const char *core) {
  static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Zen4"};
  for (size_t i = 0; i < sizeof(avx512_cores) / sizeof(avx512_cores[0]); i++)
    if (strcasecmp(core, avx512_cores[i]) == 0) return 1;
  return 0;
}

static void blas_fix_coretype(int cpu_has_avx512) {
#ifdef HAVE_OPENBLAS_GET_CORENAME
  const char *want = getenv("FSQ_OPENBLAS_CORETYPE");
  if (!want) want = "SkylakeX";
  if (strcmp(want, "keep") == 0 || getenv("OPENBLAS_CORETYPE") || !cpu_has_avx512) return;
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit) return;
  const char *core = openblas_get_corename();
  if (!core || core_has_avx512(core)) return;
  /* OpenBLAS reads the type from the environment only; restore it after. */
  if (setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  unsetenv("OPENBLAS_CORETYPE");
#else
  (void)cpu_has_avx512;
#endif
}

static fsq_kernels cpu_table;

static void *mem_alloc(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 64) == 0 ? p : NULL;
}
static void mem_free(void *p) { free(p); }
static void mem_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void mem_move(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
static char blas_name[64] = "BLAS";
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

static void cpu_init(void) {
  const char *force = getenv("FSQ_CPU_ISA");
  __builtin_cpu_init();
  int has512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (force && strcmp(force, "generic") == 0) has512 = has2 = 0;
  if (force && strcmp(force, "avx2") == 0) has512 = 0;
  if (has512) {
    fsq_kcpu_fill_avx512(&cpu_table);
    cpu_table.name = "cpu-avx512";
  } else if (has2) {
    fsq_kcpu_fill_avx2(&cpu_table);
    cpu_table.name = "cpu-avx2";
  } else {
    fsq_kcpu_fill_generic(&cpu_table);
    cpu_table.name = "cpu-generic";
  }
  blas_fix_coretype(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"));
  cpu_table.host = 1;
  cpu_table.mem_alloc = mem_alloc;
  cpu_table.mem_free = mem_free;
  cpu_table.mem_zero = mem_zero;
  cpu_table.mem_upload = mem_move;
  cpu_table.mem_download = mem_move;
  cpu_table.status = fsq_kcpu_status; /* f16/bf16 scratch can run out */
  cpu_table.gemm = k_gemm;
  cpu_table.gemm_batched = k_gemm_batched;
  cpu_table.cast = k_cast;
#ifdef _OPENMP
  /* $FSQ_NUM_THREADS sizes our team (OMP_NUM_THREADS already does by itself) */
  if (getenv("FSQ_NUM_THREADS")) omp_set_num_threads(fsq_num_threads());
#endif
  /* BLAS threads stay off: k_gemm splits the work over our OpenMP team. */
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
  openblas_set_num_threads(1);
#endif
#ifdef HAVE_OPENBLAS_GET_CORENAME
  snprintf(blas_name, sizeof(blas_name), "OpenBLAS %s", openblas_get_corename());
#endif
}

const char *fsq_kernels_blas_name(void) {
  fsq_kernels_cpu();
  return blas_name;
}

const fsq_kernels *fsq_kernels_cpu(void) {
  pthread_once(&cpu_once, cpu_init);
  return &cpu_table;
}
