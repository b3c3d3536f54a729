/* ops_linalg.c: (batched) matmul, fairseq's ConvTBC and the LSTM cell. All
 * products go through the backend's GEMM; backward passes accumulate with
 * beta = 1 straight into the gradients. */
#include "tensor/tensor_internal.h"

#include <string.h>

/* Geometry of one matmul, kept in node->i. */
typedef struct mm_geom {
  int64_t batch;   /* GEMM calls */
  int64_t m, n, k; /* per call */
  int ta, tb;
  int b_shared; /* b is 2-D and used by every batch */
  int64_t lda, ldb; /* leading dimensions of the stored operands */
} mm_geom;

static void mm_save(fsq_node *nd, const mm_geom *g) {
  int64_t v[9] = {g->batch, g->m, g->n, g->k, g->ta, g->tb, g->b_shared, g->lda, g->ldb};
  memcpy(nd->i, v, sizeof(v));
}

static mm_geom mm_load(const fsq_node *nd) {
  mm_geom g = {nd->i[0], nd->i[1], nd->i[2], nd->i[3], (int)nd->i[4], (int)nd->i[5], (int)nd->i[6],
               nd->i[7], nd->i[8]};
  return g;
}

/* Element offset of each of batch matrices of x (its dims before the last
 * two, row-major), from x's strides; NULL when out of memory. */
static int64_t *mm_batch_offsets(fsq_ctx *ctx, const fsq_tensor *x, int64_t batch) {
  int nd = x->ndim;
  int64_t *o = fsq_ctx_alloc(ctx, (size_t)(batch ? batch : 1) * sizeof(int64_t));
  if (!o) return NULL;
  for (int64_t i = 0; i < batch; i++) {
    int64_t rem = i, e = 0;
    for (int d = nd - 3; d >= 0; d--) {
      e += (rem % x->shape[d]) * x->stride[d];
      rem /= x->shape[d];
    }
    o[i] = e;
  }
  return o;
}

/* An operand read in place: each batch's matrix has unit stride along its
 * last dim and a fixed stride (its leading dimension) along the other, as
 * the heads of attention ([B, H, T, Dh] views of [T, B, H * Dh]) do; then
 * *ld is that stride and off[i] the element offset of batch i. Otherwise
 * (and for a plain contiguous x) 0: the caller uses a contiguous copy. */
static int mm_strided(fsq_ctx *ctx, const fsq_tensor *x, int64_t batch, int64_t *ld,
                      int64_t **off) {
  int nd = x->ndim;
  if (nd < 3 || fsq_is_contiguous(x) || x->stride[nd - 1] != 1 || x->shape[nd - 1] < 1 ||
      x->stride[nd - 2] < x->shape[nd - 1])
    return 0;
  int64_t *o = mm_batch_offsets(ctx, x, batch);
  if (!o) return 0;
  *ld = x->stride[nd - 2];
  *off = o;
  return 1;
}

/* 1 when stride lays the elements of shape out densely (each once, no
 * gaps): a permutation of a contiguous layout. */
static int mm_dense(int nd, const int64_t *shape, const int64_t *stride) {
  int used[FSQ_MAX_DIMS] = {0};
  int64_t want = 1;
  for (int k = 0; k < nd; k++) { /* the dims from the innermost out */
    int best = -1;
    for (int d = 0; d < nd; d++)
      if (!used[d] && (best < 0 || stride[d] < stride[best])) best = d;
    used[best] = 1;
    if (shape[best] != 1 && stride[best] != want) return 0;
    want *= shape[best];
  }
  return 1;
}

/* off, or i * stride for each of batch products (NULL when out of memory). */
static const int64_t *mm_offsets(fsq_ctx *ctx, int64_t batch, const int64_t *off, int64_t stride) {
  if (off) return off;
  int64_t *o = fsq_ctx_alloc(ctx, (size_t)(batch ? batch : 1) * sizeof(int64_t));
  if (o)
    for (int64_t i = 0; i < batch; i++) o[i] = i * stride;
  return o;
}

/* saved[0], saved[1]: a's and b's data (contiguous copies, or the views'
 * storage); saved[2], saved[3]: per-batch element offsets into them (NULL:
 * i * the matrix size). */
static void matmul_backward(fsq_ctx *ctx, fsq_node *nd) {
  mm_geom g = mm_load(nd);
  fsq_tensor *y = nd->out;
  fsq_dtype t = y->dtype;
  size_t es = fsq_dtype_size(t);
  double alpha = nd->f[0]; /* y = alpha op(A) op(B): both gradients carry it */
  const char *A = nd->saved[0], *B = nd->saved[1], *G = y->grad->data;
  const int64_t *offa = nd->saved[2], *offb = nd->saved[3];
  /* A gradient that does not exist yet is written (beta 0) instead of
   * zeroed and then accumulated; a and b the same tensor accumulate. */
  int fresh_a = 0, fresh_b = 0;
  char *dA, *dB;
  if (nd->in[0] == nd->in[1] || g.n == 0) {
    dA = fsq_grad_data(ctx, nd->in[0]);
    dB = fsq_grad_data(ctx, nd->in[1]);
  } else {
    dA = fsq_grad_data_fresh(ctx, nd->in[0], &fresh_a);
    dB = fsq_grad_data_fresh(ctx, nd->in[1], &fresh_b);
  }
  /* gradients are contiguous over the operands' logical shapes */
  int64_t gda = g.ta ? g.m : g.k, gdb = g.tb ? g.k : g.n;
  int64_t sa = g.m * g.k, sb = g.b_shared ? 0 : g.k * g.n, sy = g.m * g.n;
  if (dB && fresh_b && g.batch == 0) ctx->k->mem_zero(dB, (size_t)(g.k * g.n) * es);
  const int64_t *oa = mm_offsets(ctx, g.batch, offa, sa), *ob = mm_offsets(ctx, g.batch, offb, sb);
  const int64_t *oy = mm_offsets(ctx, g.batch, NULL, sy), *oga = mm_offsets(ctx, g.batch, NULL, sa);
  const int64_t *ogb = mm_offsets(ctx, g.batch, NULL, sb);
  if (!oa || !ob || !oy || !oga || !ogb) return;
  if (dA) {
    double beta = fresh_a ? 0.0 : 1.0;
    if (!g.ta) /* dA[M,K] += dY[M,N] op(B)^T */
      ctx->k->gemm_batched(t, 0, !g.tb, g.m, g.k, g.n, alpha, G, g.n, oy, B, g.ldb, ob, beta, dA,
                           gda, oga, g.batch);
    else /* A stored [K,M]: dA += op(B) dY^T */
      ctx->k->gemm_batched(t, g.tb, 1, g.k, g.m, g.n, alpha, B, g.ldb, ob, G, g.n, oy, beta, dA,
                           gda, oga, g.batch);
  }
  if (dB && !g.b_shared) {
    double beta = fresh_b ? 0.0 : 1.0;
    if (!g.tb) /* dB[K,N] += op(A)^T dY */
      ctx->k->gemm_batched(t, !g.ta, 0, g.k, g.n, g.m, alpha, A, g.lda, oa, G, g.n, oy, beta, dB,
                           gdb, ogb, g.batch);
    else /* B stored [N,K]: dB += dY^T op(A) */
      ctx->k->gemm_batched(t, 1, g.ta, g.n, g.k, g.m, alpha, G, g.n, oy, A, g.lda, oa, beta, dB,
                           gdb, ogb, g.batch);
  } else if (dB) { /* a shared b sums over the batch: in order, the first product writes */
    for (int64_t i = 0; i < g.batch; i++) {
      const char *a = A + oa[i] * (int64_t)es, *gy = G + i * sy * (int64_t)es;
      double beta = fresh_b && i == 0 ? 0.0 : 1.0;
      if (!g.tb) /* dB[K,N] += op(A)^T dY */
        ctx->k->gemm(t, !g.ta, 0, g.k, g.n, g.m, alpha, a, g.lda, gy, g.n, beta, dB, gdb);
      else /* B stored [N,K]: dB += dY^T op(A) */
        ctx->k->gemm(t, 1, g.ta, g.n, g.k, g.m, alpha, gy, g.n, a, g.lda, beta, dB, gdb);
    }
  }
}

/* The product's output [..., M, N]: contiguous, or, when like is given (a
 * b read in place, not transposed), laid out as like is, its rows of M in
 * place of like's rows: attention's w @ v over heads that are views of
 * [S, B, H * Dh] then comes out as [T, B, H * Dh] already, and the heads'
 * merge is a view instead of a copy. *ldy and *oy (batch offsets) are set
 * for that layout; they stay as they are for a contiguous one. */
static fsq_tensor *mm_output(fsq_ctx *ctx, fsq_dtype t, int nd, const int64_t *shape,
                             const fsq_tensor *like, int64_t *ldy, const int64_t **oy) {
  fsq_tensor *y = fsq_empty(ctx, t, nd, shape);
  if (!y || !like || !mm_dense(nd, shape, like->stride)) return y;
  int64_t batch = 1;
  for (int d = 0; d < nd - 2; d++) batch *= shape[d];
  memcpy(y->stride, like->stride, (size_t)nd * sizeof(int64_t));
  *oy = mm_batch_offsets(ctx, y, batch);
  if (!*oy) return NULL;
  *ldy = y->stride[nd - 2];
  return y;
}

fsq_tensor *fsq_matmul_scaled(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b, int trans_a,
                              int trans_b, double alpha) {
  if (!a || !b) return NULL;
  if (!fsq_check_float(ctx, a, "matmul") || !fsq_check_float(ctx, b, "matmul")) return NULL;
  if (a->dtype != b->dtype || a->ndim < 2 || b->ndim < 2)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "matmul: need two float tensors of >= 2 dims and one dtype");
  int na = a->ndim, nb = b->ndim;
  mm_geom g = {1, 0, 0, 0, trans_a != 0, trans_b != 0, nb == 2 && na > 2, 0, 0};
  g.m = a->shape[na - (g.ta ? 1 : 2)];
  g.k = a->shape[na - (g.ta ? 2 : 1)];
  int64_t kb = b->shape[nb - (g.tb ? 1 : 2)];
  g.n = b->shape[nb - (g.tb ? 2 : 1)];
  if (kb != g.k)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "matmul: inner sizes %lld and %lld differ",
                        (long long)g.k, (long long)kb);
  if (!g.b_shared) {
    if (na != nb)
      return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "matmul: %d-D by %d-D batches", na, nb);
    for (int d = 0; d < na - 2; d++)
      if (a->shape[d] != b->shape[d])
        return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "matmul: batch dim %d: %lld vs %lld", d,
                            (long long)a->shape[d], (long long)b->shape[d]);
  }
  for (int d = 0; d < na - 2; d++) g.batch *= a->shape[d];
  int64_t shape[FSQ_MAX_DIMS];
  memcpy(shape, a->shape, sizeof(shape));
  shape[na - 2] = g.m;
  shape[na - 1] = g.n;
  /* a shared weight under a plain a: one GEMM over all rows */
  mm_geom run = g;
  if (g.b_shared && !g.ta) {
    run.m *= g.batch;
    run.batch = 1;
  }
  run.lda = run.ta ? run.m : run.k;
  run.ldb = run.tb ? run.k : run.n;
  /* batched operands are read in place when their matrices allow it (no
   * copy of attention's heads), else from contiguous copies */
  int64_t *offa = NULL, *offb = NULL;
  const char *A = NULL, *B = NULL;
  if (run.batch > 1 && mm_strided(ctx, a, run.batch, &run.lda, &offa)) A = a->data;
  if (run.batch > 1 && !run.b_shared && mm_strided(ctx, b, run.batch, &run.ldb, &offb)) B = b->data;
  if (!A) A = fsq_contig_data(ctx, a);
  if (!B) B = fsq_contig_data(ctx, b);
  int64_t ldy = run.n;
  const int64_t *oy = NULL;
  fsq_tensor *y = A && B ? mm_output(ctx, a->dtype, na, shape, !run.tb && offb ? b : NULL,
                                     &ldy, &oy) : NULL;
  if (!y) return NULL;
  int64_t sa = run.m * run.k, sb = run.b_shared ? 0 : run.k * run.n, sy = run.m * run.n;
  const int64_t *oa = mm_offsets(ctx, run.batch, offa, sa), *ob = mm_offsets(ctx, run.batch, offb, sb);
  oy = mm_offsets(ctx, run.batch, oy, sy);
  if (!oa || !ob || !oy) return NULL;
  ctx->k->gemm_batched(a->dtype, run.ta, run.tb, run.m, run.n, run.k, alpha, A, run.lda, oa, B,
                       run.ldb, ob, 0.0, y->data, ldy, oy, run.batch);
  fsq_tensor *in[2] = {a, b};
  if (fsq_needs_grad(ctx, 2, in)) {
    fsq_node *nd = fsq_record(ctx, y, matmul_backward, 2, in);
    if (!nd) return NULL;
    nd->reads = FSQ_NODE_READS_INPUTS;
    nd->f[0] = alpha;
    mm_save(nd, &run);
    nd->saved[0] = A;
    nd->saved[1] = B;
    nd->saved[2] = offa;
    nd->saved[3] = offb;
  }
  return y;
}

fsq_tensor *fsq_matmul(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b, int trans_a, int trans_b) {
  return fsq_matmul_scaled(ctx, a, b, trans_a, trans_b, 1.0);
}

/* ---- linear ---------------------------------------------------------------------- */
/* saved[0] = contiguous x [M, K], saved[1] = contiguous w [N, K];
 * i: M, N, K, relu, bias */
static void linear_backward(fsq_ctx *ctx, fsq_node *nd) {
  fsq_tensor *y = nd->out;
  fsq_dtype t = y->dtype;
  int64_t m = nd->i[0], n = nd->i[1], k = nd->i[2];
  void *g = y->grad->data; /* [M, N] */
  /* y's gradient is dead once this node has run (fsq_backward releases it),
   * so ReLU's mask is applied to it in place */
  if (nd->i[3]) ctx->k->relu_mask(t, m * n, g, y->data);
  fsq_tensor *x = nd->in[0], *w = nd->in[1], *b = nd->i[4] ? nd->in[2] : NULL;
  int fresh_x = 0, fresh_w = 0;
  void *dx, *dw;
  if (x == w || n == 0 || m == 0) {
    dx = fsq_grad_data(ctx, x);
    dw = fsq_grad_data(ctx, w);
  } else {
    dx = fsq_grad_data_fresh(ctx, x, &fresh_x);
    dw = fsq_grad_data_fresh(ctx, w, &fresh_w);
  }
  if (dx) /* dx[M, K] (+)= g[M, N] w[N, K] */
    ctx->k->gemm(t, 0, 0, m, k, n, 1.0, g, n, nd->saved[1], k, fresh_x ? 0.0 : 1.0, dx, k);
  if (dw) /* dw[N, K] (+)= g^T x */
    ctx->k->gemm(t, 1, 0, n, k, m, 1.0, g, n, nd->saved[0], k, fresh_w ? 0.0 : 1.0, dw, k);
  void *db = b ? fsq_grad_data(ctx, b) : NULL;
  if (db) { /* db[N] += column sums of g */
    int64_t shape[2] = {m, n}, ds[2] = {0, 1}, ss[2] = {n, 1};
    ctx->k->copy(t, 2, shape, db, ds, g, ss, 1);
  }
}

fsq_tensor *fsq_linear(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *w, fsq_tensor *bias, int relu) {
  if (!x || !w) return NULL;
  if (!fsq_check_float(ctx, x, "linear") || !fsq_check_float(ctx, w, "linear")) return NULL;
  if (x->ndim < 1 || w->ndim != 2 || x->shape[x->ndim - 1] != w->shape[1] ||
      w->dtype != x->dtype ||
      (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0] || bias->dtype != x->dtype)))
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "linear: want x [..., K], w [N, K], bias [N]");
  int64_t n = w->shape[0], k = w->shape[1], m = 1;
  for (int d = 0; d < x->ndim - 1; d++) m *= x->shape[d];
  int64_t shape[FSQ_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(shape));
  shape[x->ndim - 1] = n;
  const char *X = fsq_contig_data(ctx, x), *W = X ? fsq_contig_data(ctx, w) : NULL;
  fsq_tensor *y = W ? fsq_empty(ctx, x->dtype, x->ndim, shape) : NULL;
  if (!y) return NULL;
  double beta = 0.0;
  if (bias) { /* every row of y starts as the bias; the product adds to it */
    int64_t bshape[2] = {m, n}, ds[2] = {n, 1}, ss[2] = {0, bias->stride[0]};
    ctx->k->copy(x->dtype, 2, bshape, y->data, ds, bias->data, ss, 0);
    beta = 1.0;
  }
  if (k == 0 && !bias) ctx->k->mem_zero(y->data, (size_t)(m * n) * fsq_dtype_size(x->dtype));
  if (k > 0) ctx->k->gemm(x->dtype, 0, 1, m, n, k, 1.0, X, k, W, k, beta, y->data, n);
  if (relu) ctx->k->unary(x->dtype, FSQ_UN_RELU, m * n, y->data, y->data, 0.0);
  fsq_tensor *in[3] = {x, w, bias};
  int n_in = bias ? 3 : 2;
  if (fsq_needs_grad(ctx, n_in, in)) {
    fsq_node *nd = fsq_record(ctx, y, linear_backward, n_in, in);
    if (!nd) return NULL;
    /* x and w; y only for ReLU's mask */
    nd->reads = FSQ_NODE_READS_INPUTS | (relu ? FSQ_NODE_READS_OUTPUT : 0u);
    int64_t v[5] = {m, n, k, relu != 0, bias != NULL};
    memcpy(nd->i, v, sizeof(v));
    nd->saved[0] = X;
    nd->saved[1] = W;
  }
  return y;
}

/* ---- ConvTBC ------------------------------------------------------------------ */
/* Output rows [lo, hi) read input rows t + k - pad for tap k. */
static void conv_rows(int64_t k, int64_t pad, int64_t t_in, int64_t t_out, int64_t *lo, int64_t *hi) {
  *lo = pad - k > 0 ? pad - k : 0;
  *hi = t_in + pad - k < t_out ? t_in + pad - k : t_out;
}

/* i: T, B, Cin, Cout, K, pad, To; saved[0] = x, saved[1] = w (contiguous) */
static void conv_tbc_backward(fsq_ctx *ctx, fsq_node *nd) {
  int64_t T = nd->i[0], B = nd->i[1], ci = nd->i[2], co = nd->i[3], K = nd->i[4], pad = nd->i[5],
          To = nd->i[6];
  fsq_tensor *y = nd->out;
  fsq_dtype t = y->dtype;
  int64_t es = (int64_t)fsq_dtype_size(t);
  const char *X = nd->saved[0], *W = nd->saved[1], *G = y->grad->data;
  char *dX = fsq_grad_data(ctx, nd->in[0]), *dW = fsq_grad_data(ctx, nd->in[1]);
  char *dBias = nd->n_in > 2 ? fsq_grad_data(ctx, nd->in[2]) : NULL;
  for (int64_t k = 0; k < K; k++) {
    int64_t lo, hi;
    conv_rows(k, pad, T, To, &lo, &hi);
    if (hi <= lo) continue;
    int64_t rows = (hi - lo) * B;
    const char *g = G + lo * B * co * es, *x = X + (lo + k - pad) * B * ci * es;
    const char *w = W + k * ci * co * es;
    if (dX) /* dx[rows, Cin] += dy[rows, Cout] w_k^T */
      ctx->k->gemm(t, 0, 1, rows, ci, co, 1.0, g, co, w, co, 1.0, dX + (lo + k - pad) * B * ci * es, ci);
    if (dW) /* dw_k[Cin, Cout] += x^T dy */
      ctx->k->gemm(t, 1, 0, ci, co, rows, 1.0, x, ci, g, co, 1.0, dW + k * ci * co * es, co);
  }
  if (dBias) {
    int64_t shape[2] = {To * B, co}, ds[2] = {0, 1}, ss[2] = {co, 1};
    ctx->k->copy(t, 2, shape, dBias, ds, G, ss, 1);
  }
}

fsq_tensor *fsq_conv_tbc(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *w, fsq_tensor *bias, int64_t pad) {
  if (!x || !w) return NULL;
  if (!fsq_check_float(ctx, x, "conv_tbc") || !fsq_check_float(ctx, w, "conv_tbc")) return NULL;
  if (x->ndim != 3 || w->ndim != 3 || w->shape[1] != x->shape[2] || w->dtype != x->dtype ||
      (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[2] || bias->dtype != x->dtype)))
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "conv_tbc: want x [T, B, Cin], w [K, Cin, Cout], bias [Cout]");
  int64_t T = x->shape[0], B = x->shape[1], ci = x->shape[2], K = w->shape[0], co = w->shape[2];
  int64_t To = T + 2 * pad - K + 1;
  if (pad < 0 || To < 0)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "conv_tbc: kernel %lld too wide for %lld steps",
                        (long long)K, (long long)T);
  const char *X = fsq_contig_data(ctx, x), *W = fsq_contig_data(ctx, w);
  int64_t shape[3] = {To, B, co};
  fsq_tensor *y = X && W ? fsq_zeros(ctx, x->dtype, 3, shape) : NULL;
  if (!y) return NULL;
  int64_t es = (int64_t)fsq_dtype_size(x->dtype);
  if (bias) {
    int64_t bshape[2] = {To * B, co}, ds[2] = {co, 1}, ss[2] = {0, bias->stride[0]};
    ctx->k->copy(x->dtype, 2, bshape, y->data, ds, bias->data, ss, 0);
  }
  for (int64_t k = 0; k < K; k++) {
    int64_t lo, hi;
    conv_rows(k, pad, T, To, &lo, &hi);
    if (hi <= lo) continue;
    ctx->k->gemm(x->dtype, 0, 0, (hi - lo) * B, co, ci, 1.0, X + (lo + k - pad) * B * ci * es, ci,
                 W + k * ci * co * es, co, 1.0, (char *)y->data + lo * B * co * es, co);
  }
  fsq_tensor *in[3] = {x, w, bias};
  int n_in = bias ? 3 : 2;
  if (fsq_needs_grad(ctx, n_in, in)) {
    fsq_node *nd = fsq_record(ctx, y, conv_tbc_backward, n_in, in);
    if (!nd) return NULL;
    int64_t v[7] = {T, B, ci, co, K, pad, To};
    memcpy(nd->i, v, sizeof(v));
    nd->saved[0] = X;
    nd->saved[1] = W;
  }
  return y;
}

/* ---- LSTM cell (composed of recorded ops) ------------------------------------- */
fsq_status fsq_lstm_cell(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *h, fsq_tensor *c,
                         fsq_tensor *w_ih, fsq_tensor *w_hh, fsq_tensor *b_ih,
                         fsq_tensor *b_hh, fsq_tensor **h_out, fsq_tensor **c_out) {
  *h_out = *c_out = NULL;
  if (!x || !h || !c || !w_ih || !w_hh)
    return ctx->status ? ctx->status : fsq_error(FSQ_ERR_INVALID, "lstm_cell: NULL input");
  fsq_tensor *gates = fsq_add(ctx, fsq_matmul(ctx, x, w_ih, 0, 1), fsq_matmul(ctx, h, w_hh, 0, 1));
  if (b_ih) gates = fsq_bias_add(ctx, gates, b_ih);
  if (b_hh) gates = fsq_bias_add(ctx, gates, b_hh);
  fsq_tensor *part[4] = {NULL, NULL, NULL, NULL};
  if (!gates || fsq_split(ctx, gates, 1, 4, part) != FSQ_OK) return ctx->status;
  fsq_tensor *ig = fsq_sigmoid(ctx, part[0]), *fg = fsq_sigmoid(ctx, part[1]);
  fsq_tensor *gg = fsq_tanh(ctx, part[2]), *og = fsq_sigmoid(ctx, part[3]);
  fsq_tensor *c2 = fsq_add(ctx, fsq_mul(ctx, fg, c), fsq_mul(ctx, ig, gg));
  fsq_tensor *h2 = fsq_mul(ctx, og, fsq_tanh(ctx, c2));
  if (!h2) return ctx->status;
  *h_out = h2;
  *c_out = c2;
  return FSQ_OK;
}
