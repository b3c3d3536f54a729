/* attention_state.c: the caller-owned key/value cache of incremental
 * attention, allocated once so decoding steps do not allocate, and its
 * reordering by beam (fairseq's reorder_incremental_state). The cache
 * holds what the layer's projections produce: the dtype of its weights (a
 * 16-bit model's keys and values stay 16-bit, as under fairseq's
 * model.half()). In host memory the cache is moved with memcpy; in a
 * device's memory (the layer's parameters are there) only that backend's
 * table touches it. */
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* The first allocation's steps per row: most sentences end before it. */
#define FSQ_MHA_FIRST_CAP 32

/* The device backend of the layer's parameters; NULL when they (and so
 * the cache) are in host memory. */
static const fsq_kernels *params_device(const fsq_nn_mha *m) {
  const fsq_kernels *k = m->q_proj.weight != NULL ? m->q_proj.weight->backend : NULL;
  return k != NULL && !k->host ? k : NULL;
}

static void *cache_alloc(const fsq_nn_mha_state *st, size_t bytes) {
  return st->device ? st->device->mem_alloc(bytes) : malloc(bytes);
}

static void cache_free(const fsq_nn_mha_state *st, void *p) {
  if (p == NULL) return;
  if (st->device)
    st->device->mem_free(p);
  else
    free(p);
}

static fsq_status alloc_arrays(fsq_nn_mha_state *st, int64_t cap, void **key, void **value,
                               void **scratch) {
  size_t n = (size_t)(st->max_batch * st->num_heads * cap * st->head_dim);
  *key = cache_alloc(st, n * st->elem);
  *value = cache_alloc(st, n * st->elem);
  *scratch = cache_alloc(st, n * st->elem);
  if (*key && *value && *scratch) return FSQ_OK;
  cache_free(st, *key);
  cache_free(st, *value);
  cache_free(st, *scratch);
  *key = *value = *scratch = NULL;
  return fsq_error(FSQ_ERR_NOMEM, "attention cache: %zu %s values in %s memory", 3 * n,
                   fsq_dtype_name(st->dtype), st->device ? st->device->name : "host");
}

fsq_status fsq_nn_mha_state_init(fsq_nn_mha_state *st, const fsq_nn_mha *m, int64_t max_batch,
                                 int64_t max_len) {
  memset(st, 0, sizeof *st);
  if (max_batch <= 0 || max_len <= 0)
    return fsq_error(FSQ_ERR_INVALID, "attention cache: bad size %lld x %lld",
                     (long long)max_batch, (long long)max_len);
  st->device = params_device(m);
  st->dtype = m->q_proj.weight != NULL ? m->q_proj.weight->dtype : FSQ_F32;
  st->elem = fsq_dtype_size(st->dtype);
  st->max_batch = max_batch;
  st->num_heads = m->num_heads;
  st->max_len = max_len;
  st->head_dim = m->head_dim;
  st->cap = max_len < FSQ_MHA_FIRST_CAP ? max_len : FSQ_MHA_FIRST_CAP;
  if (st->device) st->device_index = cache_alloc(st, (size_t)max_batch * sizeof(int64_t));
  fsq_status s = !st->device || st->device_index
                     ? alloc_arrays(st, st->cap, &st->key, &st->value, &st->scratch)
                     : fsq_error(FSQ_ERR_NOMEM, "attention cache: %lld rows", (long long)max_batch);
  if (s != FSQ_OK) fsq_nn_mha_state_free(st);
  return s;
}

/* Copies the live part of rows [0, batch) from a [.., H, from_cap, Dh]
 * layout to a [.., H, to_cap, Dh] one: row by row on the host, one strided
 * copy kernel on a device. */
static void copy_live(const fsq_nn_mha_state *st, char *dst, int64_t to_cap, const char *src,
                      int64_t from_cap) {
  if (st->device) {
    if (st->batch == 0 || st->len == 0) return;
    int64_t H = st->num_heads, Dh = st->head_dim;
    int64_t shape[4] = {st->batch, H, st->len, Dh};
    int64_t to[4] = {H * to_cap * Dh, to_cap * Dh, Dh, 1};
    int64_t from[4] = {H * from_cap * Dh, from_cap * Dh, Dh, 1};
    st->device->copy(st->dtype, 4, shape, dst, to, src, from, 0);
    return;
  }
  size_t live = (size_t)(st->len * st->head_dim) * st->elem;
  size_t to_row = (size_t)(to_cap * st->head_dim) * st->elem;
  size_t from_row = (size_t)(from_cap * st->head_dim) * st->elem;
  for (int64_t r = 0; r < st->batch * st->num_heads; r++)
    memcpy(dst + (size_t)r * to_row, src + (size_t)r * from_row, live);
}

fsq_status fsq_nn_mha_state_reserve(fsq_nn_mha_state *st, int64_t len) {
  if (len > st->max_len)
    return fsq_error(FSQ_ERR_INVALID, "attention cache: %lld steps exceed max_len %lld",
                     (long long)len, (long long)st->max_len);
  if (len <= st->cap) return FSQ_OK;
  int64_t cap = 2 * st->cap > len ? 2 * st->cap : len;
  if (cap > st->max_len) cap = st->max_len;
  void *key, *value, *scratch;
  fsq_status s = alloc_arrays(st, cap, &key, &value, &scratch);
  if (s != FSQ_OK) return s;
  copy_live(st, key, cap, st->key, st->cap);
  copy_live(st, value, cap, st->value, st->cap);
  cache_free(st, st->key);
  cache_free(st, st->value);
  cache_free(st, st->scratch);
  st->key = key;
  st->value = value;
  st->scratch = scratch;
  st->cap = cap;
  return FSQ_OK;
}

void fsq_nn_mha_state_free(fsq_nn_mha_state *st) {
  cache_free(st, st->key);
  cache_free(st, st->value);
  cache_free(st, st->scratch);
  cache_free(st, st->device_index);
  memset(st, 0, sizeof *st);
}

void fsq_nn_mha_state_clear(fsq_nn_mha_state *st) {
  st->batch = 0;
  st->len = 0;
  st->static_kv = 0;
}

/* Gathers the live rows of *buf into scratch by index, then swaps them;
 * when fewer than half the rows change (beams that keep their own
 * hypothesis), stages only the changed rows in scratch and copies them back. */
static void gather_rows(fsq_nn_mha_state *st, void **buf, const int64_t *index, int64_t n) {
  /* in bytes */
  size_t row = (size_t)(st->num_heads * st->cap * st->head_dim) * st->elem;
  size_t head = (size_t)(st->cap * st->head_dim) * st->elem;
  size_t live = (size_t)(st->len * st->head_dim) * st->elem;
  int64_t changed = 0, H = st->num_heads;
  for (int64_t b = 0; b < n; b++) changed += index[b] != b;
  int staged = 2 * changed < n;
  char *src = *buf, *scratch = st->scratch;
  /* rows are independent: split them over the threads when there is
   * enough (2^16 f32 values' worth of bytes) */
  int par = (size_t)n * (size_t)H * live >= ((size_t)1 << 18);
  for (int pass = 0; pass < (staged ? 2 : 1); pass++) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; b++) {
      if (staged && index[b] == b) continue;
      for (int64_t h = 0; h < H; h++) {
        size_t o = (size_t)b * row + (size_t)h * head;
        if (pass == 0)
          memcpy(scratch + o, src + (size_t)index[b] * row + (size_t)h * head, live);
        else
          memcpy(src + o, scratch + o, live);
      }
    }
  }
  if (!staged) { /* scratch holds every row: it becomes the buffer */
    *buf = scratch;
    st->scratch = src;
  }
}

/* The device's reorder: *buf's rows [0, batch) gathered into scratch by
 * st->device_index (uploaded), then swapped. Whole rows move, the unused
 * steps past len included: one index_select kernel per buffer, where
 * moving only the live part would take one copy per row. */
static void gather_rows_device(fsq_nn_mha_state *st, void **buf, int64_t n) {
  int64_t row = st->num_heads * st->cap * st->head_dim;
  st->device->index_select(st->dtype, 1, st->batch, row, st->scratch, *buf, st->device_index, n);
  void *t = *buf;
  *buf = st->scratch;
  st->scratch = t;
}

fsq_status fsq_nn_mha_state_reorder(fsq_nn_mha_state *st, const int64_t *index, int64_t n) {
  if (st->len == 0) return FSQ_OK; /* nothing cached yet: nothing to reorder */
  if (n <= 0 || n > st->max_batch)
    return fsq_error(FSQ_ERR_INVALID, "attention cache reorder: %lld rows, max_batch %lld",
                     (long long)n, (long long)st->max_batch);
  for (int64_t b = 0; b < n; b++)
    if (index[b] < 0 || index[b] >= st->batch)
      return fsq_error(FSQ_ERR_INVALID, "attention cache reorder: index %lld outside batch %lld",
                       (long long)index[b], (long long)st->batch);
  if (st->device) {
    st->device->mem_upload(st->device_index, index, (size_t)n * sizeof(int64_t));
    gather_rows_device(st, &st->key, n);
    gather_rows_device(st, &st->value, n);
  } else {
    gather_rows(st, &st->key, index, n);
    gather_rows(st, &st->value, index, n);
  }
  st->batch = n;
  return FSQ_OK;
}

fsq_status fsq_nn_mha_state_keep_rows(fsq_nn_mha_state *st, int64_t n) {
  if (st->len == 0) return FSQ_OK; /* nothing cached yet */
  if (n <= 0 || n > st->batch)
    return fsq_error(FSQ_ERR_INVALID, "attention cache: keep %lld of %lld rows", (long long)n,
                     (long long)st->batch);
  st->batch = n;
  return FSQ_OK;
}
