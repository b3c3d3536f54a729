/* ops_elementwise.c: broadcasting binary ops, activations, dropout,
 * masked_fill and glu. */
#include "tensor/tensor_internal.h"

#include <string.h>

/* Right-aligned numpy broadcasting of a and b into shape[ndim]. */
static int broadcast_shape(fsq_ctx *ctx, const fsq_tensor *a, const fsq_tensor *b, int *ndim,
                           int64_t *shape, const char *op) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "%s: sizes %lld and %lld do not broadcast (dim %d)", op,
                   (long long)sa, (long long)sb, d);
      return 0;
    }
    shape[d] = sa == 1 ? sb : sa;
  }
  *ndim = nd;
  return 1;
}

/* Strides reading t as if broadcast to shape[nd] (0 on broadcast dims);
 * `own` are t's strides (its storage or its contiguous gradient). */
static void broadcast_strides(const fsq_tensor *t, const int64_t *own, int nd,
                              const int64_t *shape, int64_t *out) {
  for (int d = 0; d < nd; d++) {
    int dt = d - (nd - t->ndim);
    out[d] = (dt < 0 || (t->shape[dt] == 1 && shape[d] != 1)) ? 0 : own[dt];
  }
}

/* gt (contiguous over t's shape) += reduce of src (contiguous over y's shape). */
static void accumulate_reduced(fsq_ctx *ctx, fsq_tensor *t, const fsq_tensor *y, const void *src) {
  int fresh;
  void *gt = fsq_grad_data_fresh(ctx, t, &fresh);
  if (!gt) return;
  int reduce = fsq_numel(t) != fsq_numel(y); /* t was broadcast */
  if (fresh && reduce) ctx->k->mem_zero(gt, (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype));
  int64_t ts[FSQ_MAX_DIMS], bs[FSQ_MAX_DIMS], ys[FSQ_MAX_DIMS];
  fsq_contiguous_strides(t->ndim, t->shape, ts);
  broadcast_strides(t, ts, y->ndim, y->shape, bs);
  fsq_contiguous_strides(y->ndim, y->shape, ys);
  ctx->k->copy(y->dtype, y->ndim, y->shape, gt, bs, src, ys, !(fresh && !reduce));
}

static void binary_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *a = n->in[0], *b = n->in[1], *y = n->out;
  fsq_binop op = (fsq_binop)n->i[0];
  const fsq_kernels *k = ctx->k;
  const void *g = y->grad->data;
  int64_t cnt = fsq_numel(y), ys[FSQ_MAX_DIMS], as[FSQ_MAX_DIMS], bs[FSQ_MAX_DIMS];
  fsq_contiguous_strides(y->ndim, y->shape, ys);
  broadcast_strides(a, a->stride, y->ndim, y->shape, as);
  broadcast_strides(b, b->stride, y->ndim, y->shape, bs);
  void *tmp = NULL;
  if (op != FSQ_BIN_ADD) {
    tmp = fsq_ctx_alloc_data(ctx, (size_t)cnt * fsq_dtype_size(y->dtype));
    if (!tmp) return;
  }
  if (a->requires_grad) {
    if (op == FSQ_BIN_ADD && !a->grad && fsq_numel(a) == cnt) {
      /* a residual's sum: a takes y's gradient as it is (b, if it wants
       * one, copies it first, below; y's node no longer releases it) */
      a->grad = fsq_wrap(ctx, a->dtype, a->ndim, a->shape, y->grad->data);
      if (a->grad) y->grad = NULL;
    } else if (op == FSQ_BIN_ADD || op == FSQ_BIN_SUB) {
      accumulate_reduced(ctx, a, y, g);
    } else { /* d(a*b)/da = b, d(a/b)/da = 1/b */
      k->binary(y->dtype, op, y->ndim, y->shape, tmp, g, ys, b->data, bs);
      accumulate_reduced(ctx, a, y, tmp);
    }
  }
  if (b->requires_grad) {
    switch (op) {
    case FSQ_BIN_ADD: accumulate_reduced(ctx, b, y, g); break;
    case FSQ_BIN_SUB:
      k->unary(y->dtype, FSQ_UN_SCALE, cnt, tmp, g, -1.0);
      accumulate_reduced(ctx, b, y, tmp);
      break;
    case FSQ_BIN_MUL:
      k->binary(y->dtype, FSQ_BIN_MUL, y->ndim, y->shape, tmp, g, ys, a->data, as);
      accumulate_reduced(ctx, b, y, tmp);
      break;
    case FSQ_BIN_DIV: /* d(a/b)/db = -y / b */
      k->binary(y->dtype, FSQ_BIN_MUL, y->ndim, y->shape, tmp, g, ys, y->data, ys);
      k->binary(y->dtype, FSQ_BIN_DIV, y->ndim, y->shape, tmp, tmp, ys, b->data, bs);
      k->unary(y->dtype, FSQ_UN_SCALE, cnt, tmp, tmp, -1.0);
      accumulate_reduced(ctx, b, y, tmp);
      break;
    }
  }
}

static const char *const binop_names[] = {"add", "sub", "mul", "div"};

static fsq_tensor *binary(fsq_ctx *ctx, fsq_binop op, fsq_tensor *a, fsq_tensor *b) {
  if (!a || !b) return NULL;
  const char *name = binop_names[op];
  if (!fsq_check_float(ctx, a, name) || !fsq_check_float(ctx, b, name)) return NULL;
  if (a->dtype != b->dtype)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "%s: dtypes %s and %s differ", name,
                        fsq_dtype_name(a->dtype), fsq_dtype_name(b->dtype));
  int nd;
  int64_t shape[FSQ_MAX_DIMS], as[FSQ_MAX_DIMS], bs[FSQ_MAX_DIMS];
  if (!broadcast_shape(ctx, a, b, &nd, shape, name)) return NULL;
  fsq_tensor *y = fsq_empty(ctx, a->dtype, nd, shape);
  if (!y) return NULL;
  broadcast_strides(a, a->stride, nd, shape, as);
  broadcast_strides(b, b->stride, nd, shape, bs);
  ctx->k->binary(a->dtype, op, nd, shape, y->data, a->data, as, b->data, bs);
  fsq_tensor *in[2] = {a, b};
  if (fsq_needs_grad(ctx, 2, in)) {
    fsq_node *n = fsq_record(ctx, y, binary_backward, 2, in);
    if (!n) return NULL;
    n->i[0] = op;
  }
  return y;
}

fsq_tensor *fsq_add(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b) { return binary(ctx, FSQ_BIN_ADD, a, b); }
fsq_tensor *fsq_sub(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b) { return binary(ctx, FSQ_BIN_SUB, a, b); }
fsq_tensor *fsq_mul(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b) { return binary(ctx, FSQ_BIN_MUL, a, b); }
fsq_tensor *fsq_div(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b) { return binary(ctx, FSQ_BIN_DIV, a, b); }

fsq_tensor *fsq_bias_add(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *bias) {
  if (!x || !bias) return NULL;
  if (bias->ndim != 1 || x->ndim < 1 || bias->shape[0] != x->shape[x->ndim - 1])
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "bias_add: bias of %lld for a last dim of %lld",
                        (long long)bias->shape[0], (long long)(x->ndim ? x->shape[x->ndim - 1] : 0));
  return binary(ctx, FSQ_BIN_ADD, x, bias);
}

/* ---- unary ------------------------------------------------------------------ */
/* saved[0] = contiguous x; f[0] = alpha; i[0] = op */
static void unary_backward(fsq_ctx *ctx, fsq_node *n) {
  void *gx = fsq_grad_data(ctx, n->in[0]);
  if (!gx) return;
  fsq_tensor *y = n->out;
  ctx->k->unary_backward(y->dtype, (fsq_unop)n->i[0], fsq_numel(y), gx, y->grad->data,
                         n->saved[0], y->data, n->f[0]);
}

static fsq_tensor *unary(fsq_ctx *ctx, fsq_unop op, fsq_tensor *x, double alpha, const char *name) {
  if (!x) return NULL;
  if (!fsq_check_float(ctx, x, name)) return NULL;
  const void *xc = fsq_contig_data(ctx, x);
  fsq_tensor *y = xc ? fsq_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  if (!y) return NULL;
  ctx->k->unary(x->dtype, op, fsq_numel(x), y->data, xc, alpha);
  if (fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, unary_backward, 1, &x);
    if (!n) return NULL;
    n->i[0] = op;
    n->f[0] = alpha;
    n->saved[0] = xc;
  }
  return y;
}

fsq_tensor *fsq_scale(fsq_ctx *ctx, fsq_tensor *x, double a) { return unary(ctx, FSQ_UN_SCALE, x, a, "scale"); }
fsq_tensor *fsq_add_scalar(fsq_ctx *ctx, fsq_tensor *x, double v) { return unary(ctx, FSQ_UN_ADD_SCALAR, x, v, "add_scalar"); }
fsq_tensor *fsq_relu(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_RELU, x, 0, "relu"); }
fsq_tensor *fsq_gelu(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_GELU, x, 0, "gelu"); }
fsq_tensor *fsq_gelu_tanh(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_GELU_TANH, x, 0, "gelu_tanh"); }
fsq_tensor *fsq_tanh(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_TANH, x, 0, "tanh"); }
fsq_tensor *fsq_sigmoid(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_SIGMOID, x, 0, "sigmoid"); }
fsq_tensor *fsq_exp(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_EXP, x, 0, "exp"); }
fsq_tensor *fsq_ln(fsq_ctx *ctx, fsq_tensor *x) { return unary(ctx, FSQ_UN_LOG, x, 0, "log"); }

fsq_tensor *fsq_glu(fsq_ctx *ctx, fsq_tensor *x, int dim) {
  if (!x) return NULL;
  int d = fsq_dim_index(x, dim);
  if (d < 0 || x->shape[d] % 2)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "glu: dim %d missing or of odd size", dim);
  int64_t h = x->shape[d] / 2;
  fsq_tensor *a = fsq_narrow(ctx, x, d, 0, h);
  fsq_tensor *b = fsq_narrow(ctx, x, d, h, h);
  return fsq_mul(ctx, a, fsq_sigmoid(ctx, b));
}

/* ---- dropout ------------------------------------------------------------------ */
/* f[0] = p; i[0] = stream. The mask is regenerated from (seed, stream). */
static void dropout_backward(fsq_ctx *ctx, fsq_node *n) {
  int fresh;
  void *gx = fsq_grad_data_fresh(ctx, n->in[0], &fresh);
  if (!gx) return;
  fsq_tensor *y = n->out;
  ctx->k->dropout(y->dtype, fsq_numel(y), gx, y->grad->data, n->f[0], ctx->seed,
                  (uint64_t)n->i[0], !fresh);
}

fsq_tensor *fsq_dropout(fsq_ctx *ctx, fsq_tensor *x, double p) {
  if (!x) return NULL;
  if (p < 0 || p >= 1) return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "dropout: p=%g not in [0, 1)", p);
  if (!ctx->training || p == 0) return x;
  if (!fsq_check_float(ctx, x, "dropout")) return NULL;
  uint64_t stream = (ctx->step << 20) | (ctx->dropout_calls++ & 0xfffff);
  const void *xc = fsq_contig_data(ctx, x);
  fsq_tensor *y = xc ? fsq_empty(ctx, x->dtype, x->ndim, x->shape) : NULL;
  if (!y) return NULL;
  ctx->k->dropout(x->dtype, fsq_numel(x), y->data, xc, p, ctx->seed, stream, 0);
  if (fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, dropout_backward, 1, &x);
    if (!n) return NULL;
    n->f[0] = p;
    n->i[0] = (int64_t)stream;
  }
  return y;
}

/* residual + dropout(x) as one op: one stored output instead of two (the
 * dropout's output is read by nothing but the sum). Same mask stream and
 * the same float operations as fsq_add(residual, fsq_dropout(x, p)).
 * f[0] = p; i[0] = stream. */
static void dropout_add_backward(fsq_ctx *ctx, fsq_node *n) {
  fsq_tensor *r = n->in[0], *x = n->in[1], *y = n->out;
  const void *g = y->grad->data;
  if (x->requires_grad) {
    int fresh;
    void *gx = fsq_grad_data_fresh(ctx, x, &fresh);
    if (!gx) return;
    ctx->k->dropout(y->dtype, fsq_numel(y), gx, g, n->f[0], ctx->seed, (uint64_t)n->i[0], !fresh);
  }
  if (!r->requires_grad) return;
  if (!r->grad) { /* the residual takes y's gradient as it is */
    r->grad = fsq_wrap(ctx, r->dtype, r->ndim, r->shape, y->grad->data);
    if (r->grad) y->grad = NULL;
    return;
  }
  ctx->k->axpy(y->dtype, fsq_numel(y), 1.0, g, r->grad->data);
}

/* 1 when residual + dropout(x) may be written over x: x is this step's
 * contiguous op output, apart from residual, and no recorded backward reads
 * its bytes (the caller reads x no more). f32/f64 only: there dropout(x)
 * written first and the residual added after round once, as the sum does;
 * 16-bit storage would round the dropout's output on its own first. */
static int dropout_add_may_overwrite(fsq_ctx *ctx, const fsq_tensor *residual,
                                     const fsq_tensor *x) {
  if ((x->dtype != FSQ_F32 && x->dtype != FSQ_F64) || !x->node || !fsq_is_contiguous(x) ||
      !fsq_arena_owns(fsq_ctx_arena(ctx), x->data))
    return 0;
  size_t bytes = (size_t)fsq_numel(x) * fsq_dtype_size(x->dtype);
  return !fsq_tensor_overlaps(residual, x->data, bytes) &&
         fsq_tape_storage_unread(ctx, x->data, bytes);
}

static fsq_tensor *dropout_add(fsq_ctx *ctx, fsq_tensor *residual, fsq_tensor *x, double p,
                               int may_overwrite) {
  if (!residual || !x) return NULL;
  if (p < 0 || p >= 1) return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "dropout: p=%g not in [0, 1)", p);
  if (!ctx->training || p == 0 || residual == x || residual->ndim != x->ndim ||
      memcmp(residual->shape, x->shape, (size_t)x->ndim * sizeof(int64_t)) != 0)
    return fsq_add(ctx, residual, fsq_dropout(ctx, x, p));
  if (!fsq_check_float(ctx, x, "dropout_add") || !fsq_check_float(ctx, residual, "dropout_add"))
    return NULL;
  if (residual->dtype != x->dtype)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "dropout_add: dtypes %s and %s differ",
                        fsq_dtype_name(residual->dtype), fsq_dtype_name(x->dtype));
  uint64_t stream = (ctx->step << 20) | (ctx->dropout_calls++ & 0xfffff);
  int over = may_overwrite && dropout_add_may_overwrite(ctx, residual, x);
  const void *xc = fsq_contig_data(ctx, x), *rc = xc ? fsq_contig_data(ctx, residual) : NULL;
  fsq_tensor *y = !rc ? NULL
                  : over ? fsq_wrap(ctx, x->dtype, x->ndim, x->shape, x->data)
                         : fsq_empty(ctx, x->dtype, x->ndim, x->shape);
  if (!y) return NULL;
  int64_t n = fsq_numel(x), one = 1;
  if (over) { /* y = dropout(x) + residual, in place: the bits of residual + dropout(x) */
    ctx->k->dropout(x->dtype, n, y->data, xc, p, ctx->seed, stream, 0);
    ctx->k->axpy(x->dtype, n, 1.0, rc, y->data);
  } else {
    ctx->k->copy(x->dtype, 1, &n, y->data, &one, rc, &one, 0);
    ctx->k->dropout(x->dtype, n, y->data, xc, p, ctx->seed, stream, 1);
  }
  fsq_tensor *in[2] = {residual, x};
  if (fsq_needs_grad(ctx, 2, in)) {
    fsq_node *nd = fsq_record(ctx, y, dropout_add_backward, 2, in);
    if (!nd) return NULL;
    nd->reads = 0; /* gradients only: the mask comes from the stream */
    nd->f[0] = p;
    nd->i[0] = (int64_t)stream;
  }
  return y;
}

fsq_tensor *fsq_dropout_add(fsq_ctx *ctx, fsq_tensor *residual, fsq_tensor *x, double p) {
  return dropout_add(ctx, residual, x, p, 0);
}

fsq_tensor *fsq_dropout_add_inplace(fsq_ctx *ctx, fsq_tensor *residual, fsq_tensor *x,
                                    double p) {
  return dropout_add(ctx, residual, x, p, 1);
}

/* ---- masked_fill ------------------------------------------------------------------ */
/* saved[0] = mask data; i[0..ndim) = mask strides broadcast to y */
static void masked_fill_backward(fsq_ctx *ctx, fsq_node *n) {
  void *gx = fsq_grad_data(ctx, n->in[0]);
  if (!gx) return;
  fsq_tensor *y = n->out;
  int64_t cnt = fsq_numel(y);
  void *tmp = fsq_ctx_alloc_data(ctx, (size_t)cnt * fsq_dtype_size(y->dtype));
  if (!tmp) return;
  ctx->k->masked_fill(y->dtype, y->ndim, y->shape, tmp, y->grad->data, n->saved[0], n->i, 0.0);
  ctx->k->axpy(y->dtype, cnt, 1.0, tmp, gx);
}

fsq_tensor *fsq_masked_fill(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *mask, double value) {
  if (!x || !mask) return NULL;
  if (!fsq_check_float(ctx, x, "masked_fill")) return NULL;
  if (mask->dtype != FSQ_U8)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "masked_fill: mask must be u8, not %s",
                        fsq_dtype_name(mask->dtype));
  int nd;
  int64_t shape[FSQ_MAX_DIMS], ms[FSQ_MAX_DIMS];
  if (!broadcast_shape(ctx, x, mask, &nd, shape, "masked_fill")) return NULL;
  if (nd != x->ndim || memcmp(shape, x->shape, (size_t)nd * sizeof(int64_t)))
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "masked_fill: mask would grow the input");
  broadcast_strides(mask, mask->stride, nd, shape, ms);
  const void *xc = fsq_contig_data(ctx, x);
  fsq_tensor *y = xc ? fsq_empty(ctx, x->dtype, nd, shape) : NULL;
  if (!y) return NULL;
  ctx->k->masked_fill(x->dtype, nd, shape, y->data, xc, mask->data, ms, value);
  if (fsq_needs_grad(ctx, 1, &x)) {
    fsq_node *n = fsq_record(ctx, y, masked_fill_backward, 1, &x);
    if (!n) return NULL;
    n->saved[0] = mask->data;
    memcpy(n->i, ms, (size_t)nd * sizeof(int64_t));
  }
  return y;
}
