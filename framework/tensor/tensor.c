/* tensor.c: the context, tensor creation and element access. */
#include "tensor/tensor_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

fsq_ctx *fsq_ctx_create(size_t arena_block_bytes) {
  fsq_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    fsq_error(FSQ_ERR_NOMEM, "fsq_ctx_create: out of memory");
    return NULL;
  }
  ctx->block_bytes = arena_block_bytes ? arena_block_bytes : (size_t)64 << 20;
  ctx->arena = fsq_arena_create(ctx->block_bytes);
  if (!ctx->arena) {
    free(ctx);
    return NULL;
  }
  ctx->k = fsq_kernels_cpu();
  ctx->grad_enabled = 1;
  ctx->training = 1;
  return ctx;
}

void fsq_ctx_destroy(fsq_ctx *ctx) {
  if (!ctx) return;
  fsq_arena_destroy(ctx->arena);
  free(ctx);
}

/* The arena reuses its blocks in order, and an allocation that fits none of
 * the blocks after the current one opens a new block at the end: with steps
 * of varying shapes (batches of other lengths) the blocks left behind
 * accumulate, and a training run reserved 7.8 GB for steps of 2.9 GB. When a
 * step needed more than one block, the next one starts from a single block
 * sized for the largest step so far (+ 1/8), which the following steps fill
 * in order. */
void fsq_ctx_reset(fsq_ctx *ctx) {
  size_t used = fsq_arena_used(ctx->arena);
  if (used > ctx->high) ctx->high = used;
  if (fsq_arena_reserved(ctx->arena) > ctx->block_bytes && ctx->high > 0) {
    size_t want = ctx->high + ctx->high / 8 + ((size_t)1 << 20);
    fsq_arena *fresh = fsq_arena_create(want);
    if (fresh) {
      fsq_arena_destroy(ctx->arena);
      ctx->arena = fresh;
      ctx->block_bytes = want;
    }
  }
  fsq_arena_reset(ctx->arena);
  ctx->free_grads = NULL;
  ctx->tape = NULL;
  ctx->status = FSQ_OK;
  ctx->step++;
  ctx->dropout_calls = 0;
}

fsq_status fsq_ctx_status(const fsq_ctx *ctx) { return ctx->status; }

int fsq_ctx_set_grad(fsq_ctx *ctx, int enabled) {
  int prev = ctx->grad_enabled;
  ctx->grad_enabled = enabled != 0;
  return prev;
}

int fsq_ctx_grad_enabled(const fsq_ctx *ctx) { return ctx->grad_enabled; }
void fsq_ctx_set_training(fsq_ctx *ctx, int training) { ctx->training = training != 0; }

void fsq_ctx_set_seed(fsq_ctx *ctx, uint64_t seed, uint64_t step) {
  ctx->seed = seed;
  ctx->step = step;
  ctx->dropout_calls = 0;
}

const fsq_kernels *fsq_ctx_kernels(const fsq_ctx *ctx) { return ctx->k; }
fsq_arena *fsq_ctx_arena(fsq_ctx *ctx) { return ctx->arena; }

void *fsq_ctx_fail(fsq_ctx *ctx, fsq_status code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  fsq_error(code, "%s", buf);
  if (ctx && ctx->status == FSQ_OK) ctx->status = code;
  return NULL;
}

void *fsq_ctx_alloc(fsq_ctx *ctx, size_t bytes) {
  void *p = fsq_arena_alloc(ctx->arena, bytes ? bytes : 1, 64);
  if (!p) return fsq_ctx_fail(ctx, FSQ_ERR_NOMEM, "tensor arena: out of memory (%zu bytes)", bytes);
  return p;
}

void fsq_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
}

int64_t fsq_numel(const fsq_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

int fsq_is_contiguous(const fsq_tensor *t) {
  int64_t s = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != s) return 0;
    s *= t->shape[d];
  }
  return 1;
}

int fsq_dim_index(const fsq_tensor *t, int dim) {
  int d = dim < 0 ? dim + t->ndim : dim;
  return d >= 0 && d < t->ndim ? d : -1;
}

int fsq_is_float(fsq_dtype t) { return t == FSQ_F32 || t == FSQ_F64; }

int fsq_check_float(fsq_ctx *ctx, const fsq_tensor *x, const char *op) {
  if (fsq_is_float(x->dtype)) return 1;
  fsq_ctx_fail(ctx, FSQ_ERR_UNSUPPORTED, "%s: dtype %s has no arithmetic (cast to f32 first)", op,
               fsq_dtype_name(x->dtype));
  return 0;
}

fsq_tensor *fsq_tensor_header(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > FSQ_MAX_DIMS || (unsigned)dtype >= FSQ_DTYPE_COUNT)
    return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "tensor: %d dims or dtype %d out of range", ndim,
                        (int)dtype);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0) return fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "tensor: negative size in dim %d", d);
  fsq_tensor *t = fsq_ctx_alloc(ctx, sizeof(*t));
  if (!t) return NULL;
  memset(t, 0, sizeof(*t));
  t->dtype = dtype;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
  fsq_contiguous_strides(ndim, t->shape, t->stride);
  return t;
}

fsq_tensor *fsq_empty(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape) {
  fsq_tensor *t = fsq_tensor_header(ctx, dtype, ndim, shape);
  if (!t) return NULL;
  t->data = fsq_ctx_alloc(ctx, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t->data ? t : NULL;
}

fsq_tensor *fsq_zeros(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (t) memset(t->data, 0, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t;
}

fsq_tensor *fsq_full(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, double v) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (!t) return NULL;
  if (fsq_is_float(dtype)) {
    ctx->k->fill(dtype, t->data, fsq_numel(t), v);
  } else { /* one element converted, then replicated */
    double one = v;
    size_t es = fsq_dtype_size(dtype);
    ctx->k->cast(dtype, t->data, FSQ_F64, &one, fsq_numel(t) ? 1 : 0);
    for (int64_t i = 1; i < fsq_numel(t); i++) memcpy((char *)t->data + i * es, t->data, es);
  }
  return t;
}

fsq_tensor *fsq_from_data(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape,
                          const void *data) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (t) memcpy(t->data, data, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t;
}

fsq_tensor *fsq_wrap(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, void *data) {
  fsq_tensor *t = fsq_tensor_header(ctx, dtype, ndim, shape);
  if (t) t->data = data;
  return t;
}

double fsq_get(const fsq_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  const char *p = (const char *)t->data + off * (int64_t)fsq_dtype_size(t->dtype);
  switch (t->dtype) {
  case FSQ_F32: return *(const float *)p;
  case FSQ_F64: return *(const double *)p;
  case FSQ_F16: return fsq_f16_to_f32(*(const uint16_t *)p);
  case FSQ_BF16: return fsq_bf16_to_f32(*(const uint16_t *)p);
  case FSQ_I32: return *(const int32_t *)p;
  case FSQ_I64: return (double)*(const int64_t *)p;
  default: return *(const uint8_t *)p;
  }
}

void *fsq_contig_data(fsq_ctx *ctx, const fsq_tensor *x) {
  if (fsq_is_contiguous(x)) return x->data;
  void *buf = fsq_ctx_alloc(ctx, (size_t)fsq_numel(x) * fsq_dtype_size(x->dtype));
  if (!buf) return NULL;
  int64_t cs[FSQ_MAX_DIMS];
  fsq_contiguous_strides(x->ndim, x->shape, cs);
  ctx->k->copy(x->dtype, x->ndim, x->shape, buf, cs, x->data, x->stride, 0);
  return buf;
}
