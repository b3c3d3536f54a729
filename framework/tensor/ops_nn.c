/* ops_nn.c: the fused ops of model code: layer_norm, (masked) softmax,
 * embedding lookup, index_select and the label-smoothed loss. */
#include "tensor/tensor_internal.h"

#include <string.h>

/* ---- layer_norm ----------------------------------------------------------------- */
/* saved: x, w (contiguous), mean, rstd; in: x, w?, b? (i[0], i[1] say which) */
static void layer_norm_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *y = n->out, *w = n->i[0] ? n->in[1] : NULL, *b = n->i[1] ? n->in[n->i[0] ? 2 : 1] : NULL;
  int64_t c = y->shape[y->ndim - 1], rows = c ? fsq_numel(y) / c : 0;
  ctx->k->layer_norm_backward(y->dtype, rows, c, fsq_grad_data(ctx, n->in[0]),
                              w ? fsq_grad_data(ctx, w) : NULL, b ? fsq_grad_data(ctx, b) : NULL,
                              y->grad->data, n->saved[0], n->saved[1], n->saved[2], n->saved[3]);
}

fsq_tensor *fsq_layer_norm(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *weight, fsq_tensor *bias,
                           double eps) {
  if (!x) return NULL;
  if (!fsq_check_float(ctx, x, "layer_norm")) return NULL;
  int64_t c = x->ndim ? x->shape[x->ndim - 1] : 0;
  fsq_tensor *wb[2] = {weight, bias};
  for (int k = 0; k < 2; k++)
    if (wb[k] && (wb[k]->ndim != 1 || wb[k]->shape[0] != c || wb[k]->dtype != x->dtype))
      return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "layer_norm: %s must be [%lld] %s",
                          k ? "bias" : "weight", (long long)c, fsq_dtype_name(x->dtype));
  if (c == 0) return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "layer_norm: empty last dim");
  int64_t rows = fsq_numel(x) / c;
  size_t es = fsq_dtype_size(fsq_accum_dtype(x->dtype)); /* of mean and rstd */
  const void *xc = fsq_contig_data(ctx, x);
  const void *wc = weight ? fsq_contig_data(ctx, weight) : NULL;
  const void *bc = bias ? fsq_contig_data(ctx, bias) : NULL;
  void *stats = fsq_ctx_alloc_data(ctx, 2 * (size_t)rows * es);
  fsq_tensor *y = xc && stats ? fsq_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  if (!y || (weight && !wc) || (bias && !bc)) return NULL;
  char *mean = stats, *rstd = (char *)stats + rows * (int64_t)es;
  ctx->k->layer_norm(x->dtype, rows, c, y->data, mean, rstd, xc, wc, bc, eps);
  fsq_tensor *in[3];
  int n_in = 0;
  in[n_in++] = x;
  if (weight) in[n_in++] = weight;
  if (bias) in[n_in++] = bias;
  if (fsq_needs_grad(ctx, n_in, in)) {
    fsq_node *n = fsq_record(ctx, y, layer_norm_backward, n_in, in);
    if (!n) return NULL;
    n->i[0] = weight != NULL;
    n->i[1] = bias != NULL;
    n->saved[0] = xc;
    n->saved[1] = wc;
    n->saved[2] = mean;
    n->saved[3] = rstd;
  }
  return y;
}

/* ---- softmax ------------------------------------------------------------------------ */
/* i[0] = log */
static void softmax_backward(fsq_ctx *ctx, fsq_node *n) {
  void *gx = fsq_grad_data(ctx, n->in[0]);
  if (!gx) return;
  fsq_tensor *y = n->out;
  int64_t s = y->shape[y->ndim - 1], rows = s ? fsq_numel(y) / s : 0;
  ctx->k->softmax_backward(y->dtype, rows, s, gx, y->grad->data, y->data, (int)n->i[0]);
}

fsq_tensor *fsq_softmax_masked(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *mask, int causal, int log) {
  if (!x) return NULL;
  if (!fsq_check_float(ctx, x, "softmax")) return NULL;
  if (x->ndim < 1 || x->shape[x->ndim - 1] == 0)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "softmax: empty last dim");
  int64_t s = x->shape[x->ndim - 1], rows = fsq_numel(x) / s;
  int64_t t_len = x->ndim >= 2 ? x->shape[x->ndim - 2] : 1, rpb = rows ? rows : 1;
  const uint8_t *m = NULL;
  if (mask) {
    if (mask->dtype != FSQ_U8 || mask->ndim != 2 || mask->shape[1] != s || mask->shape[0] <= 0 ||
        rows % mask->shape[0])
      return fsq_ctx_fail(ctx, FSQ_ERR_INVALID,
                          "softmax: key_padding_mask must be u8 [B, %lld] with B dividing %lld rows",
                          (long long)s, (long long)rows);
    m = fsq_contig_data(ctx, mask);
    if (!m) return NULL;
    rpb = rows / mask->shape[0];
  }
  const void *xc = fsq_contig_data(ctx, x);
  fsq_tensor *y = xc ? fsq_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  if (!y) return NULL;
  ctx->k->softmax(x->dtype, rows, s, y->data, xc, m, rpb, t_len, causal, log);
  if (fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, softmax_backward, 1, &x);
    if (!n) return NULL;
    n->i[0] = log;
  }
  return y;
}

fsq_tensor *fsq_softmax(fsq_ctx *ctx, fsq_tensor *x) { return fsq_softmax_masked(ctx, x, NULL, 0, 0); }
fsq_tensor *fsq_log_softmax(fsq_ctx *ctx, fsq_tensor *x) { return fsq_softmax_masked(ctx, x, NULL, 0, 1); }

fsq_tensor *fsq_log_softmax_in_place(fsq_ctx *ctx, fsq_tensor *x) {
  if (!x) return NULL;
  if (!fsq_check_float(ctx, x, "log_softmax in place")) return NULL;
  /* nothing may keep the input for a backward that the overwrite would break */
  if (fsq_ctx_grad_enabled(ctx) || !fsq_is_contiguous(x) || x->ndim < 1 ||
      x->shape[x->ndim - 1] == 0)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID,
                        "log_softmax in place: needs grad mode off and a contiguous, "
                        "non-empty tensor");
  int64_t s = x->shape[x->ndim - 1], rows = fsq_numel(x) / s;
  ctx->k->softmax(x->dtype, rows, s, x->data, x->data, NULL, rows, 1, 0, 1);
  return x;
}

/* ---- indices ---------------------------------------------------------------------- */
/* No index value is exempt from the range check. */
#define NO_SKIP INT64_MIN

/* The indices as contiguous i64 in [0, limit) (skip is allowed too), or NULL.
 * An index out of range would make a kernel write outside its buffer, so
 * they are checked before any kernel runs; on a device, on a host copy
 * (index tensors are small: tokens, targets, beam orders). */
static const int64_t *check_indices(fsq_ctx *ctx, fsq_tensor *idx, int64_t limit, int64_t skip,
                                    const char *op) {
  if (idx->dtype != FSQ_I64)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "%s: indices must be i64, not %s", op,
                        fsq_dtype_name(idx->dtype));
  const int64_t *p = fsq_contig_data(ctx, idx);
  if (!p) return NULL;
  int64_t n = fsq_numel(idx);
  const int64_t *h = ctx->k->host ? p : fsq_host_copy(ctx, p, (size_t)n * sizeof *p);
  if (!h) return NULL;
  for (int64_t i = 0; i < n; i++)
    if ((h[i] < 0 || h[i] >= limit) && h[i] != skip)
      return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "%s: index %lld at %lld outside [0, %lld)", op,
                          (long long)h[i], (long long)i, (long long)limit);
  return p;
}

/* saved[0] = indices; i[0] = padding_idx; f[0] = scale */
static void embedding_backward(fsq_ctx *ctx, fsq_node *n) {
  void *gw = fsq_grad_data(ctx, n->in[0]);
  if (!gw) return;
  fsq_tensor *y = n->out;
  int64_t d = y->shape[y->ndim - 1];
  ctx->k->embedding_backward(y->dtype, fsq_numel(y) / (d ? d : 1), d, gw, y->grad->data,
                             n->saved[0], n->i[0], n->f[0]);
}

fsq_tensor *fsq_embedding(fsq_ctx *ctx, fsq_tensor *weight, fsq_tensor *indices,
                          int64_t padding_idx, double scale) {
  if (!weight || !indices) return NULL;
  if (!fsq_check_float(ctx, weight, "embedding")) return NULL;
  if (weight->ndim != 2 || indices->ndim + 1 > FSQ_MAX_DIMS)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "embedding: weight must be [V, D]");
  int64_t v = weight->shape[0], d = weight->shape[1];
  const int64_t *idx = check_indices(ctx, indices, v, NO_SKIP, "embedding");
  const void *w = idx ? fsq_contig_data(ctx, weight) : NULL;
  if (!w) return NULL;
  int64_t shape[FSQ_MAX_DIMS];
  memcpy(shape, indices->shape, (size_t)indices->ndim * sizeof(int64_t));
  shape[indices->ndim] = d;
  fsq_tensor *y = fsq_empty(ctx, weight->dtype, indices->ndim + 1, shape);
  if (!y) return NULL;
  ctx->k->embedding(weight->dtype, fsq_numel(indices), d, y->data, w, idx, scale);
  if (fsq_needs_grad(ctx, 1, &weight)) {
    fsq_node *n = fsq_record(ctx, y, embedding_backward, 1, &weight);
    if (!n) return NULL;
    n->saved[0] = idx;
    n->i[0] = padding_idx;
    n->f[0] = scale;
  }
  return y;
}

/* saved[0] = indices; i[0] = dim */
static void index_select_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *x = n->in[0], *y = n->out;
  void *gx = fsq_grad_data(ctx, x);
  if (!gx) return;
  int d = (int)n->i[0];
  int64_t outer = 1, inner = 1;
  for (int e = 0; e < d; e++) outer *= x->shape[e];
  for (int e = d + 1; e < x->ndim; e++) inner *= x->shape[e];
  ctx->k->index_select_backward(x->dtype, outer, x->shape[d], inner, gx, y->grad->data,
                                n->saved[0], y->shape[d]);
}

fsq_tensor *fsq_index_select(fsq_ctx *ctx, fsq_tensor *x, int dim, fsq_tensor *indices) {
  if (!x || !indices) return NULL;
  int d = fsq_dim_index(x, dim);
  if (d < 0 || indices->ndim != 1)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "index_select: dim %d or indices not 1-D", dim);
  const int64_t *idx = check_indices(ctx, indices, x->shape[d], NO_SKIP, "index_select");
  const void *xc = idx ? fsq_contig_data(ctx, x) : NULL;
  if (!xc) return NULL;
  int64_t shape[FSQ_MAX_DIMS], outer = 1, inner = 1;
  memcpy(shape, x->shape, sizeof(shape));
  shape[d] = indices->shape[0];
  for (int e = 0; e < d; e++) outer *= x->shape[e];
  for (int e = d + 1; e < x->ndim; e++) inner *= x->shape[e];
  fsq_tensor *y = fsq_empty(ctx, x->dtype, x->ndim, shape);
  if (!y) return NULL;
  ctx->k->index_select(x->dtype, outer, x->shape[d], inner, y->data, xc, idx, shape[d]);
  if (fsq_is_float(x->dtype) && fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, index_select_backward, 1, &x);
    if (!n) return NULL;
    n->saved[0] = idx;
    n->i[0] = d;
  }
  return y;
}

/* saved[0] = index; i[0] = dim */
static void gather_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *x = n->in[0], *y = n->out;
  void *gx = fsq_grad_data(ctx, x);
  if (!gx) return;
  int d = (int)n->i[0];
  int64_t outer = 1, inner = 1;
  for (int e = 0; e < d; e++) outer *= x->shape[e];
  for (int e = d + 1; e < x->ndim; e++) inner *= x->shape[e];
  ctx->k->gather_backward(x->dtype, outer, x->shape[d], inner, y->shape[d], gx, y->grad->data,
                          n->saved[0]);
}

fsq_tensor *fsq_gather(fsq_ctx *ctx, fsq_tensor *x, int dim, fsq_tensor *index) {
  if (!x || !index) return NULL;
  int d = fsq_dim_index(x, dim);
  int same = d >= 0 && index->ndim == x->ndim;
  for (int e = 0; same && e < x->ndim; e++)
    if (e != d && index->shape[e] != x->shape[e]) same = 0;
  if (!same)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID,
                        "gather: index must have the input's shape except along dim %d", dim);
  const int64_t *idx = check_indices(ctx, index, x->shape[d], NO_SKIP, "gather");
  const void *xc = idx ? fsq_contig_data(ctx, x) : NULL;
  fsq_tensor *y = xc ? fsq_empty(ctx, x->dtype, index->ndim, index->shape) : NULL;
  if (!y) return NULL;
  int64_t outer = 1, inner = 1;
  for (int e = 0; e < d; e++) outer *= x->shape[e];
  for (int e = d + 1; e < x->ndim; e++) inner *= x->shape[e];
  ctx->k->gather(x->dtype, outer, x->shape[d], inner, index->shape[d], y->data, xc, idx);
  if (fsq_is_float(x->dtype) && fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, gather_backward, 1, &x);
    if (!n) return NULL;
    n->saved[0] = idx;
    n->i[0] = d;
  }
  return y;
}

/* ---- losses ------------------------------------------------------------------------- */
/* The node of a loss op: outputs loss and nll (shape []), one input;
 * saved[0] = target, f[0] = epsilon, i[0] = ignore_index. */
static fsq_node *record_loss(fsq_ctx *ctx, fsq_tensor *in, fsq_tensor *loss, fsq_tensor *nll,
                             fsq_backward_fn fn, const int64_t *target, double epsilon,
                             int64_t ignore_index) {
  fsq_node *nd = fsq_record(ctx, loss, fn, 1, &in);
  if (!nd) return NULL;
  nd->out2 = nll;
  nll->node = nd;
  nll->requires_grad = 1;
  nd->saved[0] = target;
  nd->f[0] = epsilon;
  nd->i[0] = ignore_index;
  return nd;
}

/* saved[0] = target; f[0] = epsilon; i[0] = ignore_index; out = loss, out2 = nll */
static void ls_nll_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *lp = n->in[0];
  void *g = fsq_grad_data(ctx, lp);
  if (!g) return;
  double g_loss = n->out->grad ? fsq_get(n->out->grad, 0) : 0.0;
  double g_nll = n->out2->grad ? fsq_get(n->out2->grad, 0) : 0.0;
  ctx->k->label_smoothed_nll_backward(lp->dtype, lp->shape[0], lp->shape[1], g, n->saved[0],
                                      n->f[0], n->i[0], g_loss, g_nll);
}

fsq_tensor *fsq_label_smoothed_nll(fsq_ctx *ctx, fsq_tensor *lprobs, fsq_tensor *target,
                                   double epsilon, int64_t ignore_index, fsq_tensor **nll_out) {
  if (nll_out) *nll_out = NULL;
  if (!lprobs || !target) return NULL;
  if (!fsq_check_float(ctx, lprobs, "label_smoothed_nll")) return NULL;
  if (lprobs->ndim != 2 || lprobs->shape[1] < 2 || fsq_numel(target) != lprobs->shape[0])
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID,
                        "label_smoothed_nll: want lprobs [N, V >= 2] and N targets");
  int64_t n = lprobs->shape[0], v = lprobs->shape[1];
  const int64_t *tg = check_indices(ctx, target, v, ignore_index, "label_smoothed_nll");
  const void *lp = tg ? fsq_contig_data(ctx, lprobs) : NULL;
  fsq_dtype acc = fsq_accum_dtype(lprobs->dtype);
  fsq_tensor *loss = lp ? fsq_empty(ctx, acc, 0, NULL) : NULL;
  fsq_tensor *nll = loss ? fsq_empty(ctx, acc, 0, NULL) : NULL;
  if (!nll) return NULL;
  ctx->k->label_smoothed_nll(lprobs->dtype, n, v, lp, tg, epsilon, ignore_index, loss->data,
                             nll->data);
  if (fsq_needs_grad(ctx, 1, &lprobs) &&
      !record_loss(ctx, lprobs, loss, nll, ls_nll_backward, tg, epsilon, ignore_index))
    return NULL;
  if (nll_out) *nll_out = nll;
  return loss;
}

/* The logits' gradient is written over the logits themselves (the step's
 * largest activation: 127 MB in the standard configuration) when nothing
 * else wants them: the logits are an op's output without a gradient yet,
 * their data is step memory, and no node whose backward is still to run
 * reads it, nor is it a leaf's (the kernel reads each element before
 * writing it). NULL: not possible. */
static void *logits_as_gradient(fsq_ctx *ctx, fsq_node *n, int *fresh) {
  fsq_tensor *x = n->in[0];
  void *data = (void *)n->saved[1];
  size_t bytes = (size_t)fsq_numel(x) * fsq_dtype_size(x->dtype);
  if (x->grad || !x->requires_grad || !x->node || !fsq_arena_owns(fsq_ctx_arena(ctx), data) ||
      !fsq_tape_storage_dead(n, data, bytes))
    return NULL;
  x->grad = fsq_wrap(ctx, x->dtype, x->ndim, x->shape, data);
  if (!x->grad) return NULL;
  *fresh = 1;
  return data;
}

/* saved[0] = target, saved[1] = contiguous logits, saved[2] = lse [N];
 * f[0] = epsilon; i[0] = ignore_index; out = loss, out2 = nll */
static void cross_entropy_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *x = n->in[0];
  int fresh;
  void *g = logits_as_gradient(ctx, n, &fresh);
  if (!g) g = fsq_grad_data_fresh(ctx, x, &fresh);
  if (!g) return;
  double g_loss = n->out->grad ? fsq_get(n->out->grad, 0) : 0.0;
  double g_nll = n->out2->grad ? fsq_get(n->out2->grad, 0) : 0.0;
  ctx->k->cross_entropy_backward(x->dtype, x->shape[0], x->shape[1], g, n->saved[1], n->saved[2],
                                 n->saved[0], n->f[0], n->i[0], g_loss, g_nll, !fresh);
}

/* log_softmax and label_smoothed_nll as one op: the [N, V] log-probabilities
 * and their gradient (two more copies of the logits' size, 127 MB each in
 * the standard configuration) are never stored. */
fsq_tensor *fsq_cross_entropy(fsq_ctx *ctx, fsq_tensor *logits, fsq_tensor *target,
                              double epsilon, int64_t ignore_index, fsq_tensor **nll_out) {
  if (nll_out) *nll_out = NULL;
  if (!logits || !target) return NULL;
  if (!fsq_check_float(ctx, logits, "cross_entropy")) return NULL;
  if (logits->ndim != 2 || logits->shape[1] < 2 || fsq_numel(target) != logits->shape[0])
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "cross_entropy: want logits [N, V >= 2] and N targets");
  int64_t n = logits->shape[0], v = logits->shape[1];
  fsq_dtype acc = fsq_accum_dtype(logits->dtype); /* of lse, loss and nll */
  size_t es = fsq_dtype_size(acc);
  const int64_t *tg = check_indices(ctx, target, v, ignore_index, "cross_entropy");
  const void *x = tg ? fsq_contig_data(ctx, logits) : NULL;
  void *lse = x ? fsq_ctx_alloc_data(ctx, (size_t)(n ? n : 1) * es) : NULL;
  fsq_tensor *loss = lse ? fsq_empty(ctx, acc, 0, NULL) : NULL;
  fsq_tensor *nll = loss ? fsq_empty(ctx, acc, 0, NULL) : NULL;
  if (!nll) return NULL;
  ctx->k->cross_entropy(logits->dtype, n, v, x, tg, epsilon, ignore_index, lse, loss->data,
                        nll->data);
  if (fsq_needs_grad(ctx, 1, &logits)) {
    fsq_node *nd =
        record_loss(ctx, logits, loss, nll, cross_entropy_backward, tg, epsilon, ignore_index);
    if (!nd) return NULL;
    nd->saved[1] = x;
    nd->saved[2] = lse;
  }
  if (nll_out) *nll_out = nll;
  return loss;
}
