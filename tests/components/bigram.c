/* bigram.c: a tiny trainable model component with the inference ops, for
 * the end-to-end tests of fairseq-generate before a real model has them.
 *
 * logits[b, t] = table[prev_output_tokens[b, t]] + (1 / S) * sum_s src[src_tokens[b, s]]
 * table, src: [V, V] ("decoder.table", "encoder.src"); the pad row of src is
 * zero and stays so (no gradient reaches it). The decoder state holds each
 * row's source term; a step needs only the last token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "registry/fsq_component.h"
#include "train/fsq_model.h"

struct fsq_model {
  int64_t V;
  fsq_tensor *table, *src;
};

struct fsq_model_decoder_state {
  int64_t rows, V, max_tgt;
  float *bias, *bias2; /* [rows, V] */
  int64_t *len, *len2; /* [rows] cached steps */
};

static fsq_status bg_build(struct json_object *cfg, const fsq_task_env *env, fsq_params *params,
                           fsq_model **out) {
  (void)cfg;
  fsq_model *m = calloc(1, sizeof *m);
  if (m == NULL) return fsq_error(FSQ_ERR_NOMEM, "bigram: out of memory");
  m->V = (int64_t)fsq_dictionary_size(env->tgt_dict);
  int64_t shape[2] = {m->V, m->V};
  m->table = fsq_params_add(params, "decoder.table", FSQ_F32, 2, shape);
  m->src = fsq_params_add(params, "encoder.src", FSQ_F32, 2, shape);
  if (m->table == NULL || m->src == NULL) {
    free(m);
    return fsq_error_code();
  }
  fsq_rng rng = fsq_rng_make(env->seed, 5);
  float *t = m->table->data, *s = m->src->data;
  for (int64_t i = 0; i < m->V * m->V; i++) {
    t[i] = 0.1f * (fsq_rng_uniform(&rng) - 0.5f);
    s[i] = 0.1f * (fsq_rng_uniform(&rng) - 0.5f);
  }
  memset(s + FSQ_DICT_PAD * m->V, 0, (size_t)m->V * sizeof(float));
  *out = m;
  return FSQ_OK;
}

static void bg_destroy(fsq_model *m) { free(m); }

static fsq_tensor *bg_forward(fsq_model *m, fsq_ctx *ctx, const fsq_sample *s) {
  fsq_tensor *dec = fsq_embedding(ctx, m->table, s->prev_output_tokens, -1, 1.0);
  fsq_tensor *enc = fsq_embedding(ctx, m->src, s->src_tokens, FSQ_DICT_PAD, 1.0);
  enc = fsq_sum(ctx, enc, 1, 1);
  if (enc != NULL) enc = fsq_scale(ctx, enc, 1.0 / (double)s->src_tokens->shape[1]);
  return fsq_add(ctx, dec, enc);
}

static void bg_max_positions(const fsq_model *m, int64_t *ms, int64_t *mt) {
  (void)m;
  *ms = 1024;
  *mt = 1024;
}

static fsq_status bg_state_create(const fsq_model *m, int64_t rows, int64_t max_src, int64_t max_tgt,
                                  fsq_model_decoder_state **out) {
  (void)max_src;
  fsq_model_decoder_state *st = calloc(1, sizeof *st);
  if (st == NULL) return fsq_error(FSQ_ERR_NOMEM, "bigram: out of memory");
  st->rows = rows;
  st->V = m->V;
  st->max_tgt = max_tgt;
  st->bias = malloc((size_t)(rows * m->V) * sizeof(float));
  st->bias2 = malloc((size_t)(rows * m->V) * sizeof(float));
  st->len = calloc((size_t)rows, sizeof(int64_t));
  st->len2 = calloc((size_t)rows, sizeof(int64_t));
  *out = st;
  if (st->bias == NULL || st->bias2 == NULL || st->len == NULL || st->len2 == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "bigram: out of memory");
  return FSQ_OK;
}

static void bg_state_destroy(fsq_model_decoder_state *st) {
  if (st == NULL) return;
  free(st->bias);
  free(st->bias2);
  free(st->len);
  free(st->len2);
  free(st);
}

static fsq_status bg_encode(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                            const fsq_tensor *src_tokens) {
  (void)ctx;
  int64_t B = src_tokens->shape[0], S = src_tokens->shape[1], V = m->V;
  if (B > st->rows) return fsq_error(FSQ_ERR_INVALID, "bigram: batch of %lld rows", (long long)B);
  const float *src = m->src->data;
  for (int64_t b = 0; b < B; b++) {
    float *o = st->bias + b * V;
    memset(o, 0, (size_t)V * sizeof(float));
    for (int64_t k = 0; k < S; k++) {
      int64_t tok = (int64_t)fsq_get(src_tokens, b * S + k);
      for (int64_t v = 0; v < V; v++) o[v] += src[tok * V + v];
    }
    for (int64_t v = 0; v < V; v++) o[v] = o[v] * (float)(1.0 / (double)S);
    st->len[b] = 0;
  }
  return FSQ_OK;
}

static fsq_status bg_reorder(fsq_model_decoder_state *st, const int64_t *index, int64_t n) {
  for (int64_t b = 0; b < n; b++) {
    memcpy(st->bias2 + b * st->V, st->bias + index[b] * st->V, (size_t)st->V * sizeof(float));
    st->len2[b] = st->len[index[b]];
  }
  float *t = st->bias;
  st->bias = st->bias2;
  st->bias2 = t;
  int64_t *l = st->len;
  st->len = st->len2;
  st->len2 = l;
  return FSQ_OK;
}

static fsq_tensor *bg_decode_step(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                                  const fsq_tensor *prev, int incremental) {
  int64_t n = prev->shape[0], T = prev->shape[1], V = m->V;
  int64_t shape[2] = {n, V};
  fsq_tensor *out = fsq_empty(ctx, FSQ_F32, 2, shape);
  if (out == NULL) return NULL;
  const float *table = m->table->data;
  for (int64_t b = 0; b < n; b++) {
    if (incremental && st->len[b] != T - 1) {
      fsq_error(FSQ_ERR_INTERNAL, "bigram: row %lld has %lld cached steps, given %lld tokens",
                (long long)b, (long long)st->len[b], (long long)T);
      return NULL;
    }
    if (incremental) st->len[b] = T;
    int64_t last = (int64_t)fsq_get(prev, b * T + T - 1);
    float *o = (float *)out->data + b * V, mx = -INFINITY;
    for (int64_t v = 0; v < V; v++) {
      o[v] = table[last * V + v] + st->bias[b * V + v];
      if (o[v] > mx) mx = o[v];
    }
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += exp((double)(o[v] - mx));
    float lse = mx + (float)log(sum);
    for (int64_t v = 0; v < V; v++) o[v] -= lse;
  }
  return out;
}

static const fsq_model_ops ops = {
    .build = bg_build,
    .destroy = bg_destroy,
    .forward = bg_forward,
    .max_positions = bg_max_positions,
    .decoder_state_create = bg_state_create,
    .decoder_state_destroy = bg_state_destroy,
    .encode = bg_encode,
    .reorder = bg_reorder,
    .decode_step = bg_decode_step,
};

static const fsq_arch_preset no_presets[] = {{NULL, NULL}};
static const fsq_arch archs[] = {{"bigram", NULL, no_presets}, FSQ_ARCH_END};

static const fsq_component bigram = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_MODEL,
    .name = "bigram",
    .version = "1.0.0",
    .description = "a bigram decoder with a bag-of-words source (generation tests)",
    .archs = archs,
    .ops_version = FSQ_MODEL_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &bigram; }
