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

/* GB/s of a triad whose three arrays together hold `bytes`. */
static double triad_bandwidth(double bytes) {
  triad_arg t = {(int64_t)(bytes / 12) + 16, NULL, NULL, NULL};
  t.a = buf(t.n, 0);
  t.b = buf(t.n, 1);
  t.c = buf(t.n, 2);
  double s = time_best(triad, &t);
  free(t.a);
  free(t.b);
  free(t.c);
  return 3.0 * 4.0 * (double)t.n / s / 1e9;
}

static double measure_bandwidth(void) { return triad_bandwidth(3.0 * 4.0 * (1 << 25)); }

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
       OP_GELU, OP_RELU, OP_DROPOUT, OP_LS_NLL, OP_EMBED, OP_TRANSPOSE, OP_HEADS };

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
  case OP_HEADS: { /* [B=8, T, H=8, 64] -> [B, H, T, 64]: attention's head split */
    int64_t t = a->rows / 8;
    int64_t hs[4] = {8, 8, t, 64}, dst[4] = {8 * t * 64, t * 64, 64, 1},
            src[4] = {t * 8 * 64, 64, 8 * 64, 1};
    K->copy(FSQ_F32, 4, hs, a->y, dst, a->x, src, 0);
    break;
  }
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

/* One row of the op table; best time kept over all rounds. */
typedef struct op_row {
  const char *name;
  char shape[96];
  int kind;
  int64_t rows, cols;
  double best;
  double triad; /* best triad GB/s over the same number of bytes */
} op_row;

static double time_op(int kind, int64_t rows, int64_t cols) {
  op_arg a = {kind, rows, cols, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  int64_t n = rows * cols;
  a.x = buf(kind == OP_EMBED ? 1000 * cols : n, -0.5f); /* embedding: a [1000, cols] table */
  a.y = buf(n, 0.25f);
  a.g = buf(n, 0.1f);
  a.w = buf(cols, 1);
  a.b = buf(cols, 0);
  a.stats = buf(2 * rows, 1);
  a.dw = buf(cols, 0);
  a.db = buf(cols, 0);
  a.idx = malloc((size_t)rows * sizeof(int64_t));
  for (int64_t i = 0; i < rows; i++) a.idx[i] = (i * 7919) % (kind == OP_EMBED ? 1000 : cols);
  double s = time_best(run_op, &a);
  free(a.x);
  free(a.y);
  free(a.g);
  free(a.w);
  free(a.b);
  free(a.stats);
  free(a.dw);
  free(a.db);
  free(a.idx);
  return s;
}

typedef struct gemm_row {
  int64_t m, n, k;
  int tb;
  double best;
} gemm_row;

#define MAX_ROWS 128

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int rounds = quick ? 1 : 3;
  if (quick) min_seconds = 0.05;
  K = fsq_kernels_cpu();
  printf("backend %s, BLAS: %s, %d threads; best of %d rounds of >= %.2f s per row\n\n",
         K->name, fsq_kernels_blas_name(), fsq_num_threads(), rounds, min_seconds);

  static gemm_row gemms[MAX_ROWS];
  static op_row ops[MAX_ROWS];
  int ng = 0, no = 0;
  static const int64_t tokens_all[] = {512, 1024, 2048, 4096};
  static const int64_t nk[][2] = {{512, 512}, {2048, 512}, {512, 2048}, {1024, 1024}, {4096, 1024}};
  int nt = quick ? 2 : 4, nn = quick ? 2 : 5;
  for (int t = 0; t < nt; t++)
    for (int j = 0; j < nn; j++)
      for (int tb = 0; tb < 2; tb++) {
        if (tb && j > 1) continue; /* x W^T (fairseq's Linear) on two shapes */
        gemm_row g = {tokens_all[t], nk[j][0], nk[j][1], tb, 1e30};
        gemms[ng++] = g;
      }
#define ADD_OP(nm, knd, r, c, ...) \
  do { \
    op_row o_ = {nm, "", knd, r, c, 1e30, 0}; \
    snprintf(o_.shape, sizeof o_.shape, __VA_ARGS__); \
    ops[no++] = o_; \
  } while (0)
  static const int64_t seq[] = {128, 256};
  for (int i = 0; i < (quick ? 1 : 2); i++) {
    int64_t T = seq[i], bh = 64; /* batch 8 x 8 heads */
    ADD_OP("softmax", OP_SOFTMAX, bh * T, T, "[B*H=64, T=%lld, T]", (long long)T);
    ADD_OP("softmax causal", OP_SOFTMAX_CAUSAL, bh * T, T, "[B*H=64, T=%lld, T]", (long long)T);
    ADD_OP("softmax backward", OP_SOFTMAX_BWD, bh * T, T, "[B*H=64, T=%lld, T]", (long long)T);
  }
  for (int t = 0; t < nt; t++) {
    long long m = (long long)tokens_all[t];
    ADD_OP("layer_norm", OP_LN, m, 512, "[%lld, 512]", m);
    ADD_OP("layer_norm backward", OP_LN_BWD, m, 512, "[%lld, 512]", m);
    ADD_OP("bias_add", OP_BIAS_ADD, m, 512, "[%lld, 512]", m);
    ADD_OP("add (residual)", OP_ADD, m, 512, "[%lld, 512]", m);
    ADD_OP("dropout p=0.1", OP_DROPOUT, m, 512, "[%lld, 512]", m);
    ADD_OP("embedding x scale", OP_EMBED, m, 512, "[%lld, 512] from [1000, 512]", m);
    ADD_OP("head split permute", OP_HEADS, m, 512, "[8, %lld, 8, 64] -> [8, 8, %lld, 64]", m / 8, m / 8);
    ADD_OP("relu", OP_RELU, m, 2048, "[%lld, 2048]", m);
    ADD_OP("gelu (erf)", OP_GELU, m, 2048, "[%lld, 2048]", m);
    ADD_OP("transpose 2-D", OP_TRANSPOSE, m, 1024, "[%lld, 1024] -> [1024, %lld]", m, m);
    ADD_OP("label_smoothed_nll", OP_LS_NLL, m, 8000, "[%lld, V=8000]", m);
  }

  double peak_gemm = 0, peak_bw = 0;
  int64_t big = quick ? 1024 : 4096;
  for (int r = 0; r < rounds; r++) {
    double g = gemm_gflops(big, big, big, 0, 0), bw = measure_bandwidth();
    peak_gemm = g > peak_gemm ? g : peak_gemm;
    peak_bw = bw > peak_bw ? bw : peak_bw;
    for (int i = 0; i < ng; i++) {
      gemm_row *q = &gemms[i];
      gemm_arg ga = {q->m, q->n, q->k, 0, q->tb, buf(q->m * q->k, 0.1f), buf(q->k * q->n, 0.2f),
                     buf(q->m * q->n, 0)};
      double s = time_best(run_gemm, &ga);
      q->best = s < q->best ? s : q->best;
      free(ga.a);
      free(ga.b);
      free(ga.c);
    }
    for (int i = 0; i < no; i++) {
      double s = time_op(ops[i].kind, ops[i].rows, ops[i].cols);
      ops[i].best = s < ops[i].best ? s : ops[i].best;
      op_arg probe = {ops[i].kind, ops[i].rows, ops[i].cols, NULL, NULL, NULL, NULL, NULL, NULL,
                      NULL, NULL, NULL};
      double tb = triad_bandwidth(op_bytes(&probe));
      ops[i].triad = tb > ops[i].triad ? tb : ops[i].triad;
    }
  }

  /* the GEMM peak is the best rate any GEMM reached in this run */
  for (int i = 0; i < ng; i++) {
    double gf = 2.0 * (double)gemms[i].m * (double)gemms[i].n * (double)gemms[i].k / gemms[i].best / 1e9;
    peak_gemm = gf > peak_gemm ? gf : peak_gemm;
  }
  printf("measured peaks: GEMM %.1f GFLOP/s (best of every sgemm below and %lld^3); "
         "DRAM triad (a = b + s*c over 3 x 128 MiB) %.1f GB/s\n\n",
         peak_gemm, (long long)big, peak_bw);
  printf("| GEMM (f32) | M x N x K | ms | GFLOP/s | %% of GEMM peak |\n|---|---|---|---|---|\n");
  for (int i = 0; i < ng; i++) {
    gemm_row *q = &gemms[i];
    double gf = 2.0 * (double)q->m * (double)q->n * (double)q->k / q->best / 1e9;
    printf("| %s | %lld x %lld x %lld | %.3f | %.1f | %.0f%% |\n", q->tb ? "x W^T" : "x W",
           (long long)q->m, (long long)q->n, (long long)q->k, q->best * 1e3, gf, 100 * gf / peak_gemm);
  }
  printf("\nGB/s counts the bytes each op must read and write once. The triad column is\n"
         "the best rate of a triad over the same number of bytes (the copy speed of that\n"
         "footprint: cache-resident shapes run above DRAM speed).\n\n");
  printf("| op (f32) | shape | ms | GB/s | triad GB/s, same bytes | %% of triad |\n"
         "|---|---|---|---|---|---|\n");
  for (int i = 0; i < no; i++) {
    op_arg probe = {ops[i].kind, ops[i].rows, ops[i].cols, NULL, NULL, NULL, NULL, NULL, NULL,
                    NULL, NULL, NULL};
    double gbs = op_bytes(&probe) / ops[i].best / 1e9;
    printf("| %s | %s | %.3f | %.1f | %.1f | %.0f%% |\n", ops[i].name, ops[i].shape,
           ops[i].best * 1e3, gbs, ops[i].triad, 100 * gbs / ops[i].triad);
  }
  return 0;
}
