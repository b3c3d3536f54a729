/* bench_ops.c: speed of the CPU backend's kernels at transformer shapes.
 * GEMMs report GFLOP/s against the best GEMM rate measured on this machine;
 * the other kernels report GB/s (bytes each must read + write once) against
 * a measured memory bandwidth (an OpenMP triad over buffers far larger than
 * the caches). Prints markdown table rows.
 *
 *   bench_ops [--quick]      (--quick: fewer shapes, for CI smoke runs) */
#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fsq_kernels *K;
static double min_seconds = 0.3;

typedef void (*bench_fn)(void *arg);

/* Best time of repeated runs after one warm-up; repeats until min_seconds. */
static double time_best(bench_fn fn, void *arg) {
  fn(arg);
  double best = 1e30, start = fsq_time_now();
  int runs = 0;
  do {
    double t0 = fsq_time_now();
    fn(arg);
    double dt = fsq_time_now() - t0;
    if (dt < best) best = dt;
    runs++;
  } while (fsq_time_now() - start < min_seconds || runs < 3);
  return best;
}

static float *buf(int64_t n, float v) {
  float *p = aligned_alloc(64, ((size_t)n * 4 + 63) & ~(size_t)63);
  if (!p) {
    fprintf(stderr, "bench_ops: out of memory\n");
    exit(1);
  }
  for (int64_t i = 0; i < n; i++) p[i] = v + (float)(i % 17) * 0.01f;
  return p;
}

/* ---- peaks --------------------------------------------------------------------- */
typedef struct triad_arg {
  int64_t n;
  float *a, *b, *c;
} triad_arg;

static void triad(void *p) {
  triad_arg *t = p;
  float *a = t->a;
  const float *b = t->b, *c = t->c;
  int64_t n = t->n;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) a[i] = b[i] + 0.5f * c[i];
}

static double measure_bandwidth(void) {
  triad_arg t = {1 << 25, NULL, NULL, NULL}; /* 3 x 128 MiB */
  t.a = buf(t.n, 0);
  t.b = buf(t.n, 1);
  t.c = buf(t.n, 2);
  double s = time_best(triad, &t);
  free(t.a);
  free(t.b);
  free(t.c);
  return 3.0 * 4.0 * (double)t.n / s / 1e9;
}

typedef struct gemm_arg {
  int64_t m, n, k;
  int ta, tb;
  float *a, *b, *c;
} gemm_arg;

static void run_gemm(void *p) {
  gemm_arg *g = p;
  K->gemm(FSQ_F32, g->ta, g->tb, g->m, g->n, g->k, 1.0, g->a, g->ta ? g->m : g->k, g->b,
          g->tb ? g->k : g->n, 0.0, g->c, g->n);
}

static double gemm_gflops(int64_t m, int64_t n, int64_t k, int ta, int tb) {
  gemm_arg g = {m, n, k, ta, tb, buf(m * k, 0.1f), buf(k * n, 0.2f), buf(m * n, 0)};
  double s = time_best(run_gemm, &g);
  free(g.a);
  free(g.b);
  free(g.c);
  return 2.0 * (double)m * (double)n * (double)k / s / 1e9;
}

/* ---- memory-bound kernels ------------------------------------------------------ */
typedef struct op_arg {
  int kind;
  int64_t rows, cols;
  float *x, *y, *w, *b, *g, *stats, *dw, *db;
  int64_t *idx;
} op_arg;

enum { OP_SOFTMAX, OP_SOFTMAX_CAUSAL, OP_SOFTMAX_BWD, OP_LN, OP_LN_BWD, OP_BIAS_ADD, OP_ADD,
       OP_GELU, OP_RELU, OP_DROPOUT, OP_LS_NLL, OP_EMBED, OP_TRANSPOSE };

static void run_op(void *p) {
  op_arg *a = p;
  int64_t n = a->rows * a->cols;
  int64_t shape[2] = {a->rows, a->cols}, cs[2] = {a->cols, 1}, bs[2] = {0, 1}, ts[2] = {1, a->rows};
  switch (a->kind) {
  case OP_SOFTMAX: K->softmax(FSQ_F32, a->rows, a->cols, a->y, a->x, NULL, a->rows, a->rows, 0, 0); break;
  case OP_SOFTMAX_CAUSAL:
    K->softmax(FSQ_F32, a->rows, a->cols, a->y, a->x, NULL, a->rows, a->cols, 1, 0);
    break;
  case OP_SOFTMAX_BWD: K->softmax_backward(FSQ_F32, a->rows, a->cols, a->g, a->x, a->y, 0); break;
  case OP_LN:
    K->layer_norm(FSQ_F32, a->rows, a->cols, a->y, a->stats, a->stats + a->rows, a->x, a->w, a->b, 1e-5);
    break;
  case OP_LN_BWD:
    K->layer_norm_backward(FSQ_F32, a->rows, a->cols, a->g, a->dw, a->db, a->y, a->x, a->w,
                           a->stats, a->stats + a->rows);
    break;
  case OP_BIAS_ADD: K->binary(FSQ_F32, FSQ_BIN_ADD, 2, shape, a->y, a->x, cs, a->b, bs); break;
  case OP_ADD: K->binary(FSQ_F32, FSQ_BIN_ADD, 2, shape, a->y, a->x, cs, a->g, cs); break;
  case OP_GELU: K->unary(FSQ_F32, FSQ_UN_GELU, n, a->y, a->x, 0); break;
  case OP_RELU: K->unary(FSQ_F32, FSQ_UN_RELU, n, a->y, a->x, 0); break;
  case OP_DROPOUT: K->dropout(FSQ_F32, n, a->y, a->x, 0.1, 1, 2, 0); break;
  case OP_LS_NLL:
    K->label_smoothed_nll(FSQ_F32, a->rows, a->cols, a->x, a->idx, 0.1, -100, a->y, a->y + 1);
    break;
  case OP_EMBED: K->embedding(FSQ_F32, a->rows, a->cols, a->y, a->x, a->idx, 22.6); break;
  case OP_TRANSPOSE: K->copy(FSQ_F32, 2, shape, a->y, ts, a->x, cs, 0); break;
  }
}

/* Bytes each op must move at least once. */
static double op_bytes(const op_arg *a) {
  double n = (double)a->rows * (double)a->cols * 4;
  switch (a->kind) {
  case OP_SOFTMAX_BWD: return 3 * n;
  case OP_LN_BWD: return 3 * n;
  case OP_ADD: return 3 * n;
  case OP_LS_NLL: return n;
  default: return 2 * n;
  }
}

static void bench_op(const char *name, const char *shape, int kind, int64_t rows, int64_t cols,
                     double peak_bw) {
  op_arg a = {kind, rows, cols, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  int64_t n = rows * cols;
  a.x = buf(n, -0.5f);
  a.y = buf(n, 0.25f);
  a.g = buf(n, 0.1f);
  a.w = buf(cols, 1);
  a.b = buf(cols, 0);
  a.stats = buf(2 * rows, 1);
  a.dw = buf(cols, 0);
  a.db = buf(cols, 0);
  a.idx = malloc((size_t)rows * sizeof(int64_t));
  for (int64_t i = 0; i < rows; i++) a.idx[i] = (i * 7919) % (kind == OP_EMBED ? 1000 : cols);
  if (kind == OP_EMBED) { /* the table is [1000, cols]; output rows gather from it */
    free(a.x);
    a.x = buf(1000 * cols, 0.3f);
  }
  double s = time_best(run_op, &a);
  double gbs = op_bytes(&a) / s / 1e9;
  printf("| %s | %s | %.3f | %.1f GB/s | %.0f%% |\n", name, shape, s * 1e3, gbs, 100 * gbs / peak_bw);
  fflush(stdout);
  free(a.x);
  free(a.y);
  free(a.g);
  free(a.w);
  free(a.b);
  free(a.stats);
  free(a.dw);
  free(a.db);
  free(a.idx);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  if (quick) min_seconds = 0.05;
  K = fsq_kernels_cpu();
  printf("backend %s, %d threads\n\n", K->name, fsq_num_threads());

  double peak_gemm = 0;
  int64_t big = quick ? 1024 : 4096;
  for (int r = 0; r < 2; r++) {
    double g = gemm_gflops(big, big, big, 0, 0);
    if (g > peak_gemm) peak_gemm = g;
  }
  double peak_bw = measure_bandwidth();
  printf("measured peaks: sgemm %lldx%lldx%lld %.1f GFLOP/s; triad bandwidth %.1f GB/s\n\n",
         (long long)big, (long long)big, (long long)big, peak_gemm, peak_bw);

  printf("| GEMM (f32) | M x N x K | ms | GFLOP/s | %% of GEMM peak |\n|---|---|---|---|---|\n");
  static const int64_t tokens_all[] = {512, 1024, 2048, 4096};
  static const int64_t nk[][2] = {{512, 512}, {2048, 512}, {512, 2048}, {1024, 1024}, {4096, 1024}};
  int nt = quick ? 2 : 4, nn = quick ? 2 : 5;
  for (int t = 0; t < nt; t++)
    for (int j = 0; j < nn; j++) {
      int64_t m = tokens_all[t], n = nk[j][0], k = nk[j][1];
      for (int tb = 0; tb < 2; tb++) {
        if (tb && j != 0 && j != 1) continue; /* x W^T for the linear shapes */
        gemm_arg g = {m, n, k, 0, tb, buf(m * k, 0.1f), buf(k * n, 0.2f), buf(m * n, 0)};
        double s = time_best(run_gemm, &g);
        double gf = 2.0 * (double)m * (double)n * (double)k / s / 1e9;
        printf("| %s | %lld x %lld x %lld | %.3f | %.1f | %.0f%% |\n", tb ? "x W^T" : "x W",
               (long long)m, (long long)n, (long long)k, s * 1e3, gf, 100 * gf / peak_gemm);
        fflush(stdout);
        free(g.a);
        free(g.b);
        free(g.c);
      }
    }

  printf("\n| op (f32) | shape | ms | rate | %% of bandwidth |\n|---|---|---|---|---|\n");
  static const int64_t seq[] = {128, 256};
  for (int i = 0; i < (quick ? 1 : 2); i++) {
    int64_t T = seq[i], bh = 8 * 8; /* batch 8, 8 heads */
    char shape[64];
    snprintf(shape, sizeof shape, "[B*H=%lld, T=%lld, T]", (long long)bh, (long long)T);
    bench_op("softmax", shape, OP_SOFTMAX, bh * T, T, peak_bw);
    bench_op("softmax causal", shape, OP_SOFTMAX_CAUSAL, bh * T, T, peak_bw);
    bench_op("softmax backward", shape, OP_SOFTMAX_BWD, bh * T, T, peak_bw);
  }
  for (int t = 0; t < nt; t++) {
    int64_t m = tokens_all[t];
    char shape[64];
    snprintf(shape, sizeof shape, "[%lld, 512]", (long long)m);
    bench_op("layer_norm", shape, OP_LN, m, 512, peak_bw);
    bench_op("layer_norm backward", shape, OP_LN_BWD, m, 512, peak_bw);
    bench_op("bias_add", shape, OP_BIAS_ADD, m, 512, peak_bw);
    bench_op("add (residual)", shape, OP_ADD, m, 512, peak_bw);
    bench_op("dropout p=0.1", shape, OP_DROPOUT, m, 512, peak_bw);
    bench_op("embedding x scale", shape, OP_EMBED, m, 512, peak_bw);
    snprintf(shape, sizeof shape, "[%lld, 2048]", (long long)m);
    bench_op("relu", shape, OP_RELU, m, 2048, peak_bw);
    bench_op("gelu (erf)", shape, OP_GELU, m, 2048, peak_bw);
    snprintf(shape, sizeof shape, "[%lld, 1024] -> [1024, %lld]", (long long)m, (long long)m);
    bench_op("transpose copy", shape, OP_TRANSPOSE, m, 1024, peak_bw);
    snprintf(shape, sizeof shape, "[%lld, V=8000]", (long long)m);
    bench_op("label_smoothed_nll", shape, OP_LS_NLL, m, 8000, peak_bw);
  }
  return 0;
}
