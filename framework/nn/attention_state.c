/* attention_state.c: the caller-owned key/value cache of incremental
 * attention, allocated once so decoding steps do not allocate, and its
 * reordering by beam (fairseq's reorder_incremental_state). */
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

/* The first allocation's steps per row: most sentences end before it. */
#define FSQ_MHA_FIRST_CAP 32

static fsq_status alloc_arrays(fsq_nn_mha_state *st, int64_t cap, float **key, float **value,
                               float **scratch) {
  size_t n = (size_t)(st->max_batch * st->num_heads * cap * st->head_dim);
  *key = malloc(n * sizeof(float));
  *value = malloc(n * sizeof(float));
  *scratch = malloc(n * sizeof(float));
  if (*key && *value && *scratch) return FSQ_OK;
  free(*key);
  free(*value);
  free(*scratch);
  return fsq_error(FSQ_ERR_NOMEM, "attention cache: %zu floats", 3 * n);
}

fsq_status fsq_nn_mha_state_init(fsq_nn_mha_state *st, const fsq_nn_mha *m, int64_t max_batch,
                                 int64_t max_len) {
  memset(st, 0, sizeof *st);
  if (max_batch <= 0 || max_len <= 0)
    return fsq_error(FSQ_ERR_INVALID, "attention cache: bad size %lld x %lld",
                     (long long)max_batch, (long long)max_len);
  st->max_batch = max_batch;
  st->num_heads = m->num_heads;
  st->max_len = max_len;
  st->head_dim = m->head_dim;
  st->cap = max_len < FSQ_MHA_FIRST_CAP ? max_len : FSQ_MHA_FIRST_CAP;
  st->tag = calloc((size_t)max_batch, sizeof(int64_t));
  st->tag_scratch = calloc((size_t)max_batch, sizeof(int64_t));
  fsq_status s = st->tag && st->tag_scratch
                     ? alloc_arrays(st, st->cap, &st->key, &st->value, &st->scratch)
                     : fsq_error(FSQ_ERR_NOMEM, "attention cache: %lld rows", (long long)max_batch);
  if (s != FSQ_OK) fsq_nn_mha_state_free(st);
  return s;
}

/* Copies the live part of rows [0, batch) from a [.., H, from_cap, Dh]
 * layout to a [.., H, to_cap, Dh] one. */
static void copy_live(const fsq_nn_mha_state *st, float *dst, int64_t to_cap, const float *src,
                      int64_t from_cap) {
  size_t live = (size_t)(st->len * st->head_dim);
  for (int64_t r = 0; r < st->batch * st->num_heads; r++)
    memcpy(dst + (size_t)(r * to_cap * st->head_dim), src + (size_t)(r * from_cap * st->head_dim),
           live * sizeof(float));
}

fsq_status fsq_nn_mha_state_reserve(fsq_nn_mha_state *st, int64_t len) {
  if (len > st->max_len)
    return fsq_error(FSQ_ERR_INVALID, "attention cache: %lld steps exceed max_len %lld",
                     (long long)len, (long long)st->max_len);
  if (len <= st->cap) return FSQ_OK;
  int64_t cap = 2 * st->cap > len ? 2 * st->cap : len;
  if (cap > st->max_len) cap = st->max_len;
  float *key, *value, *scratch;
  fsq_status s = alloc_arrays(st, cap, &key, &value, &scratch);
  if (s != FSQ_OK) return s;
  copy_live(st, key, cap, st->key, st->cap);
  copy_live(st, value, cap, st->value, st->cap);
  free(st->key);
  free(st->value);
  free(st->scratch);
  st->key = key;
  st->value = value;
  st->scratch = scratch;
  st->cap = cap;
  return FSQ_OK;
}

void fsq_nn_mha_state_free(fsq_nn_mha_state *st) {
  free(st->key);
  free(st->value);
  free(st->scratch);
  free(st->tag);
  free(st->tag_scratch);
  memset(st, 0, sizeof *st);
}

void fsq_nn_mha_state_clear(fsq_nn_mha_state *st) {
  st->batch = 0;
  st->len = 0;
  st->static_kv = 0;
}

void fsq_nn_mha_state_tag_rows(fsq_nn_mha_state *st) {
  size_t row = (size_t)(st->num_heads * st->cap * st->head_dim);
  size_t head = (size_t)(st->cap * st->head_dim), live = (size_t)(st->len * st->head_dim);
  for (int64_t b = 0; b < st->batch; b++) {
    st->tag[b] = b;
    if (b == 0) continue;
    int same = 1;
    for (int64_t h = 0; same && h < st->num_heads; h++) {
      size_t o1 = (size_t)b * row + (size_t)h * head, o0 = o1 - row;
      same = memcmp(st->key + o1, st->key + o0, live * sizeof(float)) == 0 &&
             memcmp(st->value + o1, st->value + o0, live * sizeof(float)) == 0;
    }
    if (same) st->tag[b] = st->tag[b - 1];
  }
}

/* Gathers the live rows of *buf into scratch by index, then swaps them;
 * when fewer than half the rows change (beams that keep their own
 * hypothesis), stages only the changed rows in scratch and copies them back. */
static void gather_rows(fsq_nn_mha_state *st, float **buf, const int64_t *index, int64_t n) {
  size_t row = (size_t)(st->num_heads * st->cap * st->head_dim);
  size_t head = (size_t)(st->cap * st->head_dim), live = (size_t)(st->len * st->head_dim);
  int64_t changed = 0, H = st->num_heads;
  for (int64_t b = 0; b < n; b++) changed += index[b] != b;
  int staged = 2 * changed < n;
  float *src = *buf, *scratch = st->scratch;
  /* rows are independent: split them over the threads when there is enough */
  int par = (size_t)n * (size_t)H * live >= ((size_t)1 << 16);
  for (int pass = 0; pass < (staged ? 2 : 1); pass++) {
#pragma omp parallel for schedule(static) if (par)
    for (int64_t b = 0; b < n; b++) {
      if (staged && index[b] == b) continue;
      for (int64_t h = 0; h < H; h++) {
        size_t o = (size_t)b * row + (size_t)h * head;
        if (pass == 0)
          memcpy(scratch + o, src + (size_t)index[b] * row + (size_t)h * head, live * sizeof(float));
        else
          memcpy(src + o, scratch + o, live * sizeof(float));
      }
    }
  }
  if (!staged) { /* scratch holds every row: it becomes the buffer */
    *buf = scratch;
    st->scratch = src;
  }
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
  if (st->static_kv) {
    int same = 1;
    for (int64_t b = 0; same && b < n; b++)
      same = b < st->batch && st->tag[index[b]] == st->tag[b];
    if (same) { /* every row already holds what it would be given */
      st->batch = n;
      return FSQ_OK;
    }
    for (int64_t b = 0; b < n; b++) st->tag_scratch[b] = st->tag[index[b]];
    int64_t *t = st->tag;
    st->tag = st->tag_scratch;
    st->tag_scratch = t;
  }
  gather_rows(st, &st->key, index, n);
  gather_rows(st, &st->value, index, n);
  st->batch = n;
  return FSQ_OK;
}
