/* params.c: the parameter store: persistent values and gradients, named by
 * the checkpoint key, kept in insertion order. */
#include "tensor/tensor_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct param_entry {
  fsq_tensor value;
  fsq_tensor grad;
  char *name;
} param_entry;

struct fsq_params {
  const fsq_kernels *k; /* whose memory values and gradients are in */
  param_entry **items;
  size_t count, cap;
};

fsq_params *fsq_params_create(void) { return fsq_params_create_on(fsq_kernels_cpu()); }

fsq_params *fsq_params_create_on(const fsq_kernels *k) {
  fsq_params *p = calloc(1, sizeof(*p));
  if (!p) {
    fsq_error(FSQ_ERR_NOMEM, "fsq_params_create: out of memory");
    return NULL;
  }
  p->k = k;
  return p;
}

static void entry_free(const fsq_params *p, param_entry *e) {
  if (!e) return;
  if (e->value.data) p->k->mem_free(e->value.data);
  if (e->grad.data) p->k->mem_free(e->grad.data);
  free(e->name);
  free(e);
}

void fsq_params_destroy(fsq_params *p) {
  if (!p) return;
  for (size_t i = 0; i < p->count; i++) entry_free(p, p->items[i]);
  free(p->items);
  free(p);
}

static void *zalloc64(const fsq_params *p, size_t bytes) {
  size_t rounded = (bytes + 63) & ~(size_t)63;
  void *m = p->k->mem_alloc(rounded ? rounded : 64);
  if (m) p->k->mem_zero(m, rounded ? rounded : 64);
  return m;
}

static fsq_tensor *params_add(fsq_params *p, const char *name, fsq_dtype dtype, int ndim,
                              const int64_t *shape, int with_grad) {
  if (!name || !*name || ndim < 0 || ndim > FSQ_MAX_DIMS ||
      (unsigned)dtype >= FSQ_DTYPE_COUNT) {
    fsq_error(FSQ_ERR_INVALID, "parameter '%s': bad name, dims or dtype", name ? name : "");
    return NULL;
  }
  if (fsq_params_find(p, name)) {
    fsq_error(FSQ_ERR_INVALID, "parameter '%s': defined twice", name);
    return NULL;
  }
  if (p->count == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 64;
    param_entry **items = realloc(p->items, cap * sizeof(*items));
    if (!items) goto nomem;
    p->items = items;
    p->cap = cap;
  }
  param_entry *e = calloc(1, sizeof(*e));
  if (!e) goto nomem;
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0) {
      free(e);
      fsq_error(FSQ_ERR_INVALID, "parameter '%s': negative size in dim %d", name, d);
      return NULL;
    }
    n *= shape[d];
  }
  size_t bytes = (size_t)n * fsq_dtype_size(dtype);
  e->name = strdup(name);
  e->value.data = zalloc64(p, bytes);
  e->grad.data = with_grad ? zalloc64(p, bytes) : NULL;
  if (!e->name || !e->value.data || (with_grad && !e->grad.data)) {
    entry_free(p, e);
    goto nomem;
  }
  fsq_tensor *ts[2] = {&e->value, &e->grad};
  for (int k = 0; k < 2; k++) {
    ts[k]->dtype = dtype;
    ts[k]->ndim = ndim;
    if (ndim) memcpy(ts[k]->shape, shape, (size_t)ndim * sizeof(int64_t));
    fsq_contiguous_strides(ndim, ts[k]->shape, ts[k]->stride);
    ts[k]->name = e->name;
    ts[k]->backend = p->k;
  }
  e->value.requires_grad = with_grad && fsq_is_float(dtype);
  e->value.grad = with_grad ? &e->grad : NULL;
  p->items[p->count++] = e;
  return &e->value;
nomem:
  fsq_error(FSQ_ERR_NOMEM, "parameter '%s': out of memory", name);
  return NULL;
}

fsq_tensor *fsq_params_add(fsq_params *p, const char *name, fsq_dtype dtype, int ndim,
                           const int64_t *shape) {
  return params_add(p, name, dtype, ndim, shape, 1);
}

fsq_tensor *fsq_params_add_buffer(fsq_params *p, const char *name, fsq_dtype dtype, int ndim,
                                  const int64_t *shape) {
  return params_add(p, name, dtype, ndim, shape, 0);
}

fsq_tensor *fsq_params_find(const fsq_params *p, const char *name) {
  for (size_t i = 0; i < p->count; i++)
    if (strcmp(p->items[i]->name, name) == 0) return &p->items[i]->value;
  return NULL;
}

size_t fsq_params_count(const fsq_params *p) { return p->count; }

fsq_tensor *fsq_params_at(const fsq_params *p, size_t i) {
  return i < p->count ? &p->items[i]->value : NULL;
}

void fsq_params_zero_grad(fsq_params *p) {
  for (size_t i = 0; i < p->count; i++) {
    fsq_tensor *g = &p->items[i]->grad;
    if (g->data) p->k->mem_zero(g->data, (size_t)fsq_numel(g) * fsq_dtype_size(g->dtype));
  }
}

/* One tensor's storage in dtype: a new buffer holding its values rounded
 * (or zeros, for a gradient), in *out; the old one stays until commit. */
static fsq_status convert_buffer(const fsq_params *p, const fsq_tensor *t, fsq_dtype dtype,
                                 int copy_values, void **out) {
  *out = NULL;
  if (t->data == NULL || t->dtype != FSQ_F32) return FSQ_OK;
  int64_t n = fsq_numel(t);
  *out = zalloc64(p, (size_t)n * fsq_dtype_size(dtype));
  if (*out == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "parameter '%s': out of %s memory for its %s copy", t->name,
                     p->k->name, fsq_dtype_name(dtype));
  if (copy_values) p->k->cast(dtype, *out, FSQ_F32, t->data, n);
  return FSQ_OK;
}

static void commit_buffer(const fsq_params *p, fsq_tensor *t, fsq_dtype dtype, void *data) {
  if (data == NULL) return;
  p->k->mem_free(t->data);
  t->data = data;
  t->dtype = dtype;
}

fsq_status fsq_params_convert(fsq_params *p, fsq_dtype dtype) {
  if (dtype != FSQ_F16 && dtype != FSQ_BF16)
    return fsq_error(FSQ_ERR_INVALID, "parameters: cannot convert to %s (f16 or bf16)",
                     fsq_dtype_name(dtype));
  void **fresh = calloc(2 * (p->count ? p->count : 1), sizeof *fresh);
  if (fresh == NULL) return fsq_error(FSQ_ERR_NOMEM, "parameters: out of memory");
  fsq_status st = FSQ_OK;
  for (size_t i = 0; i < p->count && st == FSQ_OK; i++) {
    st = convert_buffer(p, &p->items[i]->value, dtype, 1, &fresh[2 * i]);
    if (st == FSQ_OK) st = convert_buffer(p, &p->items[i]->grad, dtype, 0, &fresh[2 * i + 1]);
  }
  for (size_t i = 0; i < p->count; i++) { /* all or nothing */
    if (st != FSQ_OK) {
      if (fresh[2 * i]) p->k->mem_free(fresh[2 * i]);
      if (fresh[2 * i + 1]) p->k->mem_free(fresh[2 * i + 1]);
      continue;
    }
    commit_buffer(p, &p->items[i]->value, dtype, fresh[2 * i]);
    commit_buffer(p, &p->items[i]->grad, dtype, fresh[2 * i + 1]);
  }
  free(fresh);
  return st;
}
