/* attention.c: fairseq's MultiheadAttention (multihead_attention.py) for
 * self- and encoder-decoder attention, full or one step at a time over the
 * cached keys and values of an fsq_nn_mha_state (attention_state.c). */
#include "nn/nn_internal.h"

#include <math.h>

fsq_status fsq_nn_mha_build_kv(fsq_nn_mha *m, fsq_params *p, const char *prefix,
                               int64_t embed_dim, int64_t kdim, int64_t vdim, int64_t num_heads,
                               double dropout, uint64_t seed) {
  if (num_heads <= 0 || embed_dim <= 0 || embed_dim % num_heads)
    return fsq_error(FSQ_ERR_INVALID, "nn attention %s: embed_dim %lld not divisible by %lld heads",
                     prefix, (long long)embed_dim, (long long)num_heads);
  m->embed_dim = embed_dim;
  m->kdim = kdim;
  m->vdim = vdim;
  m->num_heads = num_heads;
  m->head_dim = embed_dim / num_heads;
  m->dropout = dropout;
  /* fairseq's construction order: k, v, q, out. */
  static const char *const names[4] = {"k_proj", "v_proj", "q_proj", "out_proj"};
  fsq_nn_linear *projs[4] = {&m->k_proj, &m->v_proj, &m->q_proj, &m->out_proj};
  const int64_t in[4] = {kdim, vdim, embed_dim, embed_dim};
  for (int i = 0; i < 4; i++) {
    char sub[FSQ_NN_NAME_MAX];
    fsq_status st = fsq_nn_join(sub, prefix, names[i]);
    if (st == FSQ_OK)
      st = fsq_nn_linear_build(projs[i], p, sub, in[i], embed_dim, 1,
                               i == 3 ? FSQ_NN_INIT_XAVIER : FSQ_NN_INIT_TORCH, seed);
    if (st != FSQ_OK) return st;
  }
  /* reset_parameters: the in-projections' weights are re-drawn with xavier
   * (scaled when qkv_same_dim); their biases keep nn.Linear's init; out_proj
   * is plain xavier with bias 0. */
  double gain = (kdim == embed_dim && vdim == embed_dim) ? M_SQRT1_2 : 1.0;
  fsq_status st = FSQ_OK;
  for (int i = 0; i < 3 && st == FSQ_OK; i++)
    st = fsq_nn_init_xavier_uniform(projs[i]->weight, gain, seed);
  return st;
}

fsq_status fsq_nn_mha_build(fsq_nn_mha *m, fsq_params *p, const char *prefix, int64_t embed_dim,
                            int64_t num_heads, double dropout, uint64_t seed) {
  return fsq_nn_mha_build_kv(m, p, prefix, embed_dim, embed_dim, embed_dim, num_heads, dropout,
                             seed);
}

/* x: [L, B, C] -> a view [B, H, L, Dh]. */
static fsq_tensor *split_heads(fsq_ctx *ctx, const fsq_nn_mha *m, fsq_tensor *x) {
  if (!x) return NULL;
  int64_t shape[4] = {x->shape[0], x->shape[1], m->num_heads, m->head_dim};
  static const int perm[4] = {1, 2, 0, 3};
  return fsq_permute(ctx, fsq_reshape(ctx, x, 4, shape), perm);
}

static int check_input(const fsq_nn_mha *m, const fsq_tensor *x, int64_t dim, const char *what) {
  if (x->ndim != 3 || x->shape[2] != dim) {
    fsq_error(FSQ_ERR_INVALID, "%s: %s must be [L, B, %lld]", m->q_proj.weight->name, what,
              (long long)dim);
    return 0;
  }
  return 1;
}

/* Appends kh, vh: [B, H, L, Dh] (the cache's dtype) to the cache at
 * position st->len. */
static fsq_status cache_append(fsq_ctx *ctx, fsq_nn_mha_state *st, fsq_tensor *kh,
                               fsq_tensor *vh) {
  if (kh->dtype != st->dtype || vh->dtype != st->dtype)
    return fsq_error(FSQ_ERR_INVALID,
                     "attention cache of %s values, the step's keys and values are %s "
                     "(parameters converted after the cache was made?)",
                     fsq_dtype_name(st->dtype), fsq_dtype_name(kh->dtype));
  int64_t len = kh->shape[2];
  fsq_status s = fsq_nn_mha_state_reserve(st, st->len + len);
  if (s != FSQ_OK) return s;
  int64_t dst_stride[4] = {st->num_heads * st->cap * st->head_dim, st->cap * st->head_dim,
                           st->head_dim, 1};
  const fsq_kernels *k = fsq_ctx_kernels(ctx);
  size_t off = (size_t)(st->len * st->head_dim) * st->elem; /* bytes */
  k->copy(st->dtype, 4, kh->shape, (char *)st->key + off, dst_stride, kh->data, kh->stride, 0);
  k->copy(st->dtype, 4, vh->shape, (char *)st->value + off, dst_stride, vh->data, vh->stride, 0);
  st->len += len;
  return FSQ_OK;
}

/* Projects key/value into the cache as needed; *kh, *vh: the live cache
 * [B, H, len, Dh] as views. */
static fsq_status cached_kv(fsq_ctx *ctx, const fsq_nn_mha *m, fsq_nn_mha_state *st,
                            fsq_tensor *key, fsq_tensor *value, int64_t bsz, int static_kv,
                            fsq_tensor **kh, fsq_tensor **vh) {
  if (fsq_ctx_grad_enabled(ctx))
    return fsq_error(FSQ_ERR_INVALID, "%s: incremental attention needs grad mode off",
                     m->q_proj.weight->name);
  if (st->num_heads != m->num_heads || st->head_dim != m->head_dim)
    return fsq_error(FSQ_ERR_INVALID, "%s: attention cache made for another layer shape",
                     m->q_proj.weight->name);
  const fsq_kernels *k = fsq_ctx_kernels(ctx);
  if (st->device ? k != st->device : !k->host) /* the step's kernels write the cache */
    return fsq_error(FSQ_ERR_INVALID, "%s: attention cache in %s memory, the step runs on %s",
                     m->q_proj.weight->name, st->device ? st->device->name : "host", k->name);
  if (st->len == 0) {
    if (bsz > st->max_batch)
      return fsq_error(FSQ_ERR_INVALID, "attention cache: batch %lld > max_batch %lld",
                       (long long)bsz, (long long)st->max_batch);
    st->batch = bsz;
  } else if (bsz != st->batch) {
    return fsq_error(FSQ_ERR_INVALID, "attention cache holds batch %lld, step has %lld",
                     (long long)st->batch, (long long)bsz);
  }
  if (!static_kv || st->len == 0) {
    fsq_tensor *kn = split_heads(ctx, m, fsq_nn_linear_forward(ctx, &m->k_proj, key));
    fsq_tensor *vn = split_heads(ctx, m, fsq_nn_linear_forward(ctx, &m->v_proj, value));
    if (!kn || !vn) return fsq_error_code();
    int first = st->len == 0;
    fsq_status s = cache_append(ctx, st, kn, vn);
    if (s != FSQ_OK) return s;
    if (first) st->static_kv = static_kv != 0;
  }
  int64_t shape[4] = {st->batch, st->num_heads, st->cap, st->head_dim};
  *kh = fsq_narrow(ctx, fsq_wrap(ctx, st->dtype, 4, shape, st->key), 2, 0, st->len);
  *vh = fsq_narrow(ctx, fsq_wrap(ctx, st->dtype, 4, shape, st->value), 2, 0, st->len);
  return *kh && *vh ? FSQ_OK : fsq_error_code();
}

fsq_tensor *fsq_nn_mha_forward(fsq_ctx *ctx, const fsq_nn_mha *m, fsq_tensor *query,
                               fsq_tensor *key, fsq_tensor *value, fsq_tensor *key_padding_mask,
                               int causal, fsq_nn_mha_state *state, int static_kv) {
  if (!query) return NULL;
  if (!key) key = query;
  if (!value) value = key;
  if (!check_input(m, query, m->embed_dim, "query") || !check_input(m, key, m->kdim, "key") ||
      !check_input(m, value, m->vdim, "value"))
    return NULL;
  int64_t tgt = query->shape[0], bsz = query->shape[1];
  if (key->shape[1] != bsz || value->shape[1] != bsz || value->shape[0] != key->shape[0]) {
    fsq_error(FSQ_ERR_INVALID, "%s: query, key and value disagree on batch or length",
              m->q_proj.weight->name);
    return NULL;
  }
  /* fairseq scales q after its projection (bias included) by head_dim **
   * -0.5. When that factor is a power of 2 (head_dim a power of 4: 64,
   * 256) the scores' GEMM applies it instead (alpha): the same bits, and no
   * scaled copy of q kept for backward; otherwise q is scaled as fairseq
   * does, so the rounding stays fairseq's. */
  double scaling = pow((double)m->head_dim, -0.5);
  int exponent;
  int fold = frexp(scaling, &exponent) == 0.5;
  fsq_tensor *q = fsq_nn_linear_forward(ctx, &m->q_proj, query);
  if (!fold) q = fsq_scale(ctx, q, scaling);
  fsq_tensor *qh = split_heads(ctx, m, q), *kh = NULL, *vh = NULL; /* [B, H, T, Dh] */
  if (state) {
    if (cached_kv(ctx, m, state, key, value, bsz, static_kv, &kh, &vh) != FSQ_OK) return NULL;
  } else {
    kh = split_heads(ctx, m, fsq_nn_linear_forward(ctx, &m->k_proj, key));   /* [B, H, S, Dh] */
    vh = split_heads(ctx, m, fsq_nn_linear_forward(ctx, &m->v_proj, value)); /* [B, H, S, Dh] */
  }
  fsq_tensor *w = fsq_matmul_scaled(ctx, qh, kh, 0, 1, fold ? scaling : 1.0); /* [B, H, T, S] */
  w = fsq_softmax_masked(ctx, w, key_padding_mask, causal, 0);
  w = fsq_dropout(ctx, w, m->dropout);
  fsq_tensor *a = fsq_matmul(ctx, w, vh, 0, 0); /* [B, H, T, Dh] */
  static const int perm[4] = {2, 0, 1, 3};
  int64_t shape[3] = {tgt, bsz, m->embed_dim};
  a = fsq_reshape(ctx, fsq_permute(ctx, a, perm), 3, shape); /* [T, B, C] */
  return fsq_nn_linear_forward(ctx, &m->out_proj, a);
}
