/* tensor.c: the context, tensor creation and element access. */
#include "tensor/tensor_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A device's arena takes its blocks from the backend's memory. */
static void *device_block_alloc(size_t bytes, void *user) {
  return ((const fsq_kernels *)user)->mem_alloc(bytes);
}

static void device_block_free(void *p, void *user) { ((const fsq_kernels *)user)->mem_free(p); }

static fsq_arena *ctx_arena_new(const fsq_ctx *ctx, size_t block_bytes, int device) {
  if (!device) return fsq_arena_create(block_bytes);
  fsq_arena_allocator mem = {device_block_alloc, device_block_free, (void *)ctx->k};
  return fsq_arena_create_with(block_bytes, &mem);
}

fsq_ctx *fsq_ctx_create(size_t arena_block_bytes) {
  return fsq_ctx_create_on(fsq_kernels_cpu(), arena_block_bytes);
}

/* On a device, the host arena holds only headers and nodes: small blocks. */
#define DEVICE_META_BLOCK ((size_t)1 << 20)

fsq_ctx *fsq_ctx_create_on(const fsq_kernels *k, size_t arena_block_bytes) {
  fsq_ctx *ctx = calloc(1, sizeof(*ctx));
  if (!ctx) {
    fsq_error(FSQ_ERR_NOMEM, "fsq_ctx_create: out of memory");
    return NULL;
  }
  ctx->k = k;
  size_t block = arena_block_bytes ? arena_block_bytes : (size_t)64 << 20;
  ctx->meta.block_bytes = k->host ? block : DEVICE_META_BLOCK;
  ctx->meta.arena = ctx_arena_new(ctx, ctx->meta.block_bytes, 0);
  if (!k->host) {
    ctx->device.block_bytes = block;
    ctx->device.arena = ctx_arena_new(ctx, block, 1);
  }
  if (!ctx->meta.arena || (!k->host && !ctx->device.arena)) {
    fsq_ctx_destroy(ctx);
    return NULL;
  }
  ctx->grad_enabled = 1;
  ctx->training = 1;
  return ctx;
}

void fsq_ctx_destroy(fsq_ctx *ctx) {
  if (!ctx) return;
  fsq_arena_destroy(ctx->meta.arena);
  fsq_arena_destroy(ctx->device.arena);
  free(ctx);
}

/* The arena reuses its blocks in order, and an allocation that fits none of
 * the blocks after the current one opens a new block at the end: with steps
 * of varying shapes (batches of other lengths) the blocks left behind
 * accumulate, and a training run reserved 7.8 GB for steps of 2.9 GB. When a
 * step needed more than one block, the next one starts from a single block
 * sized for the largest step so far (+ 1/8), which the following steps fill
 * in order. */
static void ctx_arena_reset(fsq_ctx *ctx, struct fsq_ctx_arena *a, int device) {
  if (!a->arena) return;
  size_t used = fsq_arena_used(a->arena);
  if (used > a->high) a->high = used;
  if (fsq_arena_reserved(a->arena) > a->block_bytes && a->high > 0) {
    size_t want = a->high + a->high / 8 + ((size_t)1 << 20);
    fsq_arena *fresh = ctx_arena_new(ctx, want, device);
    if (fresh) {
      fsq_arena_destroy(a->arena);
      a->arena = fresh;
      a->block_bytes = want;
    }
  }
  fsq_arena_reset(a->arena);
}

void fsq_ctx_reset(fsq_ctx *ctx) {
  ctx_arena_reset(ctx, &ctx->meta, 0);
  ctx_arena_reset(ctx, &ctx->device, 1);
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
fsq_arena *fsq_ctx_arena(fsq_ctx *ctx) {
  return ctx->device.arena ? ctx->device.arena : ctx->meta.arena;
}

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
  void *p = fsq_arena_alloc(ctx->meta.arena, bytes ? bytes : 1, 64);
  if (!p) return fsq_ctx_fail(ctx, FSQ_ERR_NOMEM, "tensor arena: out of memory (%zu bytes)", bytes);
  return p;
}

void *fsq_ctx_host_alloc(fsq_ctx *ctx, size_t bytes) { return fsq_ctx_alloc(ctx, bytes); }

void *fsq_ctx_alloc_data(fsq_ctx *ctx, size_t bytes) {
  if (!ctx->device.arena) return fsq_ctx_alloc(ctx, bytes);
  void *p = fsq_arena_alloc(ctx->device.arena, bytes ? bytes : 1, 256);
  if (!p)
    return fsq_ctx_fail(ctx, FSQ_ERR_NOMEM, "%s arena: out of memory (%zu bytes)", ctx->k->name,
                        bytes);
  return p;
}

int fsq_on_host(const fsq_tensor *t) { return !t->backend || t->backend->host; }

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

int fsq_is_float(fsq_dtype t) {
  return t == FSQ_F32 || t == FSQ_F64 || t == FSQ_F16 || t == FSQ_BF16;
}

fsq_dtype fsq_accum_dtype(fsq_dtype t) { return t == FSQ_F16 || t == FSQ_BF16 ? FSQ_F32 : t; }

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
  t->backend = ctx->k;
  t->dtype = dtype;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof(int64_t));
  fsq_contiguous_strides(ndim, t->shape, t->stride);
  return t;
}

fsq_tensor *fsq_empty(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape) {
  fsq_tensor *t = fsq_tensor_header(ctx, dtype, ndim, shape);
  if (!t) return NULL;
  t->data = fsq_ctx_alloc_data(ctx, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t->data ? t : NULL;
}

fsq_tensor *fsq_zeros(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (t) ctx->k->mem_zero(t->data, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t;
}

fsq_tensor *fsq_full(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, double v) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (!t) return NULL;
  int64_t n = fsq_numel(t);
  if (fsq_is_float(dtype)) {
    ctx->k->fill(dtype, t->data, n, v);
  } else if (n > 0) { /* one element converted on the host, then broadcast */
    unsigned char one[8];
    size_t es = fsq_dtype_size(dtype);
    fsq_kernels_cpu()->cast(dtype, one, FSQ_F64, &v, 1);
    ctx->k->mem_upload(t->data, one, es);
    int64_t rest = n - 1, unit = 1, none = 0;
    if (rest > 0) ctx->k->copy(dtype, 1, &rest, (char *)t->data + es, &unit, t->data, &none, 0);
  }
  return t;
}

fsq_tensor *fsq_from_data(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape,
                          const void *data) {
  fsq_tensor *t = fsq_empty(ctx, dtype, ndim, shape);
  if (t) ctx->k->mem_upload(t->data, data, (size_t)fsq_numel(t) * fsq_dtype_size(dtype));
  return t;
}

fsq_tensor *fsq_wrap(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, void *data) {
  fsq_tensor *t = fsq_tensor_header(ctx, dtype, ndim, shape);
  if (t) t->data = data;
  return t;
}

static double element_value(fsq_dtype dtype, const void *p) {
  switch (dtype) {
  case FSQ_F32: return *(const float *)p;
  case FSQ_F64: return *(const double *)p;
  case FSQ_F16: return fsq_f16_to_f32(*(const uint16_t *)p);
  case FSQ_BF16: return fsq_bf16_to_f32(*(const uint16_t *)p);
  case FSQ_I32: return *(const int32_t *)p;
  case FSQ_I64: return (double)*(const int64_t *)p;
  default: return *(const uint8_t *)p;
  }
}

double fsq_get(const fsq_tensor *t, int64_t i) {
  int64_t off = 0;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (i % t->shape[d]) * t->stride[d];
    i /= t->shape[d];
  }
  size_t es = fsq_dtype_size(t->dtype);
  const char *p = (const char *)t->data + off * (int64_t)es;
  if (fsq_on_host(t)) return element_value(t->dtype, p);
  unsigned char one[8];
  t->backend->mem_download(one, p, es);
  return element_value(t->dtype, one);
}

fsq_status fsq_download(fsq_ctx *ctx, const fsq_tensor *t, void *host_dst) {
  if (!t) {
    fsq_ctx_fail(ctx, FSQ_ERR_INVALID, "fsq_download: no tensor");
    return FSQ_ERR_INVALID;
  }
  const void *src = fsq_contig_data(ctx, t);
  if (!src) return ctx->status;
  ctx->k->mem_download(host_dst, src, (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype));
  return FSQ_OK;
}

void *fsq_host_copy(fsq_ctx *ctx, const void *data, size_t bytes) {
  void *buf = fsq_ctx_alloc(ctx, bytes);
  if (buf) ctx->k->mem_download(buf, data, bytes);
  return buf;
}

const void *fsq_host_data(fsq_ctx *ctx, const fsq_tensor *t) {
  const void *p = fsq_contig_data(ctx, t);
  if (!p || fsq_on_host(t)) return p;
  return fsq_host_copy(ctx, p, (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype));
}

fsq_status fsq_upload(const fsq_tensor *t, const void *host_src) {
  if (!fsq_is_contiguous(t))
    return fsq_error(FSQ_ERR_INVALID, "fsq_upload: '%s' is not contiguous",
                     t->name ? t->name : "tensor");
  size_t bytes = (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype);
  if (fsq_on_host(t))
    memcpy(t->data, host_src, bytes);
  else
    t->backend->mem_upload(t->data, host_src, bytes);
  return FSQ_OK;
}

void *fsq_contig_data(fsq_ctx *ctx, const fsq_tensor *x) {
  if (fsq_is_contiguous(x)) return x->data;
  void *buf = fsq_ctx_alloc_data(ctx, (size_t)fsq_numel(x) * fsq_dtype_size(x->dtype));
  if (!buf) return NULL;
  int64_t cs[FSQ_MAX_DIMS];
  fsq_contiguous_strides(x->ndim, x->shape, cs);
  ctx->k->copy(x->dtype, x->ndim, x->shape, buf, cs, x->data, x->stride, 0);
  return buf;
}
