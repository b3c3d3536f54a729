/* test_model_transformer.c: the transformer component loaded through the
 * registry: fairseq's named architectures, state-dict names and shapes, the
 * parameter count of a standard configuration, embedding sharing, and a
 * forward/backward that learns. */
#include "fsq_test.h"
#include "fenced_backend.h"
#include "components/models/transformer/transformer.h"
#include "registry/fsq_registry.h"
#include "train/fsq_model.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fsq_option program_options[] = {
    {"arch", FSQ_OPT_STRING, NULL, "model architecture", NULL, "a"}, FSQ_OPTION_END};
static const fsq_config_selector selectors[] = {{"arch", FSQ_KIND_MODEL}, FSQ_SELECTOR_END};

/* Resolves "--arch ... --flag value" as fairseq-train would. */
static fsq_status resolve(const char *args, fsq_config *c) {
  return fsq_test_resolve("fairseq-train", program_options, selectors, args, c);
}

static int64_t cfg_int(json_object *cfg, const char *key) {
  int64_t v = -1;
  CU_ASSERT_EQUAL(fsq_json_get_int64(cfg, key, &v), FSQ_OK);
  return v;
}

static double cfg_double(json_object *cfg, const char *key) {
  double v = -1;
  CU_ASSERT_EQUAL(fsq_json_get_double(cfg, key, &v), FSQ_OK);
  return v;
}

static int cfg_bool(json_object *cfg, const char *key) {
  int v = -1;
  CU_ASSERT_EQUAL(fsq_json_get_bool(cfg, key, &v), FSQ_OK);
  return v;
}

/* specials + words w0 .. w{words-1} */
static fsq_dictionary *make_dict(int words, const char *stem) {
  fsq_dictionary *d = fsq_dictionary_new();
  char w[32];
  for (int i = 0; i < words; i++) {
    int n = snprintf(w, sizeof w, "%s%d", stem, i);
    fsq_dictionary_add(d, w, (size_t)n, 1, 0);
  }
  return d;
}

typedef struct built {
  fsq_config config;
  fsq_params *params;
  const fsq_model_ops *ops;
  fsq_model *model;
} built;

/* Resolves args and builds the model with its parameters in k's memory;
 * returns the build's status. */
static fsq_status build_on(const char *args, const fsq_dictionary *src,
                           const fsq_dictionary *tgt, const fsq_kernels *k, built *b) {
  memset(b, 0, sizeof *b);
  fsq_status st = resolve(args, &b->config);
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  const fsq_registry_entry *e = b->config.chosen[FSQ_KIND_MODEL];
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL_FATAL(e->component->ops_version, FSQ_MODEL_OPS_VERSION);
  b->ops = e->component->ops;
  b->params = fsq_params_create_on(k);
  fsq_task_env env = {src, tgt, 7};
  return b->ops->build(b->config.cfg, &env, b->params, &b->model);
}

static fsq_status build(const char *args, const fsq_dictionary *src, const fsq_dictionary *tgt,
                        built *b) {
  return build_on(args, src, tgt, fsq_kernels_cpu(), b);
}

static void release(built *b) {
  if (b->ops != NULL) b->ops->destroy(b->model);
  fsq_params_destroy(b->params);
  fsq_config_free(&b->config);
}

static int64_t param_total(const fsq_params *p) {
  int64_t n = 0;
  for (size_t i = 0; i < fsq_params_count(p); i++) n += fsq_numel(fsq_params_at(p, i));
  return n;
}

static void test_iwslt_arch_gives_fairseq_values_under_user_values(void) {
  fsq_config c;
  CU_ASSERT_EQUAL_FATAL(resolve("--arch transformer_iwslt_de_en --encoder-layers 3", &c), FSQ_OK);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_ffn_embed_dim"), 1024);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_attention_heads"), 4);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_attention_heads"), 4);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_layers"), 3); /* the user's value wins */
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_layers"), 6);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_embed_dim"), 512);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_output_dim"), 512);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "max_source_positions"), 1024);
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "dropout"), 0.1, 0);
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "attention_dropout"), 0.0, 0);
  CU_ASSERT_FALSE(cfg_bool(c.cfg, "share_all_embeddings"));
  const char *act = NULL;
  CU_ASSERT_EQUAL(fsq_json_get_string(c.cfg, "activation_fn", &act), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(act, "relu");
  fsq_config_free(&c);
}

static void test_big_archs_chain_to_their_bases(void) {
  fsq_config c;
  CU_ASSERT_EQUAL_FATAL(resolve("--arch transformer_wmt_en_de_big_t2t", &c), FSQ_OK);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_embed_dim"), 1024);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_ffn_embed_dim"), 4096);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_attention_heads"), 16);
  CU_ASSERT_TRUE(cfg_bool(c.cfg, "encoder_normalize_before"));
  CU_ASSERT_TRUE(cfg_bool(c.cfg, "decoder_normalize_before"));
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "attention_dropout"), 0.1, 0);
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "activation_dropout"), 0.1, 0);
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "dropout"), 0.3, 0);
  fsq_config_free(&c);
  CU_ASSERT_EQUAL_FATAL(resolve("--arch transformer_vaswani_wmt_en_fr_big", &c), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(cfg_double(c.cfg, "dropout"), 0.1, 0); /* set before en_de_big's 0.3 */
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_ffn_embed_dim"), 4096);
  fsq_config_free(&c);
  /* decoder-embed-dim follows the resolved encoder-embed-dim */
  CU_ASSERT_EQUAL_FATAL(resolve("--arch transformer --encoder-embed-dim 256", &c), FSQ_OK);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_embed_dim"), 256);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_input_dim"), 256);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "encoder_layers"), 6);
  fsq_config_free(&c);
  CU_ASSERT_EQUAL_FATAL(resolve("--arch transformer_tiny", &c), FSQ_OK);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_embed_dim"), 64);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_ffn_embed_dim"), 64);
  CU_ASSERT_EQUAL(cfg_int(c.cfg, "decoder_layers"), 2);
  fsq_config_free(&c);
}

typedef struct expected_param {
  const char *name;
  int ndim;
  int64_t shape[2];
} expected_param;

static void check_param(const fsq_params *p, const expected_param *e) {
  const fsq_tensor *t = fsq_params_find(p, e->name);
  if (t == NULL) fprintf(stderr, "missing parameter %s\n", e->name);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_EQUAL(t->ndim, e->ndim);
  for (int i = 0; i < e->ndim; i++) CU_ASSERT_EQUAL(t->shape[i], e->shape[i]);
}

/* The 16 parameters of an encoder layer (and the first 16 of a decoder's). */
static void check_layer(const fsq_params *p, const char *prefix, int64_t d, int64_t f,
                        int decoder) {
  static const char *const attn[] = {"self_attn", "encoder_attn"};
  static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
  char name[128];
  for (int a = 0; a < 1 + decoder; a++) {
    for (int i = 0; i < 4; i++) {
      snprintf(name, sizeof name, "%s.%s.%s.weight", prefix, attn[a], proj[i]);
      check_param(p, &(expected_param){name, 2, {d, d}});
      snprintf(name, sizeof name, "%s.%s.%s.bias", prefix, attn[a], proj[i]);
      check_param(p, &(expected_param){name, 1, {d}});
    }
    for (int i = 0; i < 2; i++) {
      snprintf(name, sizeof name, "%s.%s_layer_norm.%s", prefix, attn[a], i ? "bias" : "weight");
      check_param(p, &(expected_param){name, 1, {d}});
    }
  }
  snprintf(name, sizeof name, "%s.fc1.weight", prefix);
  check_param(p, &(expected_param){name, 2, {f, d}});
  snprintf(name, sizeof name, "%s.fc1.bias", prefix);
  check_param(p, &(expected_param){name, 1, {f}});
  snprintf(name, sizeof name, "%s.fc2.weight", prefix);
  check_param(p, &(expected_param){name, 2, {d, f}});
  snprintf(name, sizeof name, "%s.fc2.bias", prefix);
  check_param(p, &(expected_param){name, 1, {d}});
  snprintf(name, sizeof name, "%s.final_layer_norm.weight", prefix);
  check_param(p, &(expected_param){name, 1, {d}});
  snprintf(name, sizeof name, "%s.final_layer_norm.bias", prefix);
  check_param(p, &(expected_param){name, 1, {d}});
}

static void test_parameter_names_and_shapes_match_fairseq_state_dict(void) {
  fsq_dictionary *src = make_dict(6, "s"), *tgt = make_dict(5, "t");
  built b;
  CU_ASSERT_EQUAL_FATAL(build("--arch transformer_tiny --encoder-embed-dim 8 "
                              "--encoder-ffn-embed-dim 16 --decoder-layers 1 "
                              "--encoder-normalize-before --encoder-learned-pos "
                              "--max-source-positions 64 --layernorm-embedding",
                              src, tgt, &b),
                        FSQ_OK);
  const expected_param top[] = {
      {"encoder.embed_tokens.weight", 2, {10, 8}},
      {"encoder.embed_positions.weight", 2, {64 + 1 + 1, 8}}, /* num + padding_idx + 1 */
      {"encoder.layernorm_embedding.weight", 1, {8}},
      {"encoder.layernorm_embedding.bias", 1, {8}},
      {"encoder.layer_norm.weight", 1, {8}},
      {"encoder.layer_norm.bias", 1, {8}},
      {"decoder.embed_tokens.weight", 2, {9, 8}},
      {"decoder.layernorm_embedding.weight", 1, {8}},
      {"decoder.layernorm_embedding.bias", 1, {8}},
      {"decoder.output_projection.weight", 2, {9, 8}},
  };
  for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) check_param(b.params, &top[i]);
  check_layer(b.params, "encoder.layers.0", 8, 16, 0);
  check_layer(b.params, "encoder.layers.1", 8, 16, 0);
  check_layer(b.params, "decoder.layers.0", 8, 16, 1);
  /* nothing else: sinusoidal decoder positions are not parameters, and
     decoder.layer_norm exists only with --decoder-normalize-before */
  CU_ASSERT_EQUAL(fsq_params_count(b.params), 10 + 2 * 16 + 26);
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.layer_norm.weight"));
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.embed_positions.weight"));
  int64_t ms = 0, mt = 0;
  b.ops->max_positions(b.model, &ms, &mt);
  CU_ASSERT_EQUAL(ms, 64);
  CU_ASSERT_EQUAL(mt, 1024);
  /* the padding rows of embeddings are zero, as fairseq's Embedding() */
  const fsq_tensor *emb = fsq_params_find(b.params, "encoder.embed_tokens.weight");
  for (int j = 0; j < 8; j++) CU_ASSERT_EQUAL(fsq_get(emb, 1 * 8 + j), 0.0);
  release(&b);
  fsq_dictionary_free(src);
  fsq_dictionary_free(tgt);
}

/* 3+3 layers, d 256, ffn 1024, 4 heads, joined vocabulary of 8000:
 *   attention 4 (d d + d) = 263168;  layer norm 2 d = 512;
 *   ffn d f + f + f d + d = 525568
 *   encoder layer = attn + ffn + 2 ln = 789760;  decoder layer adds attn + ln = 1053440
 *   embeddings 8000 d = 2048000 each side (output projection shared with the decoder's)
 *   3 * 789760 + 3 * 1053440 + 2 * 2048000 = 9625600 */
static void test_standard_configuration_has_hand_counted_parameters(void) {
  fsq_dictionary *dict = make_dict(8000 - 4, "w");
  const char *args = "--arch transformer --encoder-layers 3 --decoder-layers 3 "
                     "--encoder-embed-dim 256 --encoder-ffn-embed-dim 1024 "
                     "--encoder-attention-heads 4 --decoder-attention-heads 4 "
                     "--share-decoder-input-output-embed";
  built b;
  CU_ASSERT_EQUAL_FATAL(build(args, dict, dict, &b), FSQ_OK);
  CU_ASSERT_EQUAL(param_total(b.params), 9625600);
  release(&b);
  char all[512];
  snprintf(all, sizeof all, "%s --share-all-embeddings", args);
  CU_ASSERT_EQUAL_FATAL(build(all, dict, dict, &b), FSQ_OK);
  CU_ASSERT_EQUAL(param_total(b.params), 9625600 - 2048000);
  release(&b);
  fsq_dictionary_free(dict);
}

static void test_sharing_uses_one_tensor(void) {
  fsq_dictionary *dict = make_dict(12, "w");
  built b;
  CU_ASSERT_EQUAL_FATAL(build("--arch transformer_tiny --encoder-embed-dim 8 "
                              "--share-all-embeddings", dict, dict, &b), FSQ_OK);
  fsq_tensor *w = fsq_params_find(b.params, "encoder.embed_tokens.weight");
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  CU_ASSERT_PTR_EQUAL(b.model->dec_embed.tokens.weight, w);
  CU_ASSERT_PTR_EQUAL(b.model->output_projection.weight, w);
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.embed_tokens.weight"));
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.output_projection.weight"));
  release(&b);
  CU_ASSERT_EQUAL_FATAL(build("--arch transformer_tiny --encoder-embed-dim 8 "
                              "--share-decoder-input-output-embed", dict, dict, &b), FSQ_OK);
  w = fsq_params_find(b.params, "decoder.embed_tokens.weight");
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  CU_ASSERT_PTR_EQUAL(b.model->output_projection.weight, w);
  CU_ASSERT_PTR_NOT_EQUAL(b.model->enc_embed.tokens.weight, w);
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.output_projection.weight"));
  release(&b);
  fsq_dictionary_free(dict);
}

static void test_share_all_embeddings_refuses_separate_vocabularies(void) {
  fsq_dictionary *a = make_dict(12, "w"), *same = make_dict(12, "w"), *other = make_dict(12, "x");
  built b;
  /* identical symbols in two objects are a joined dictionary */
  CU_ASSERT_EQUAL(build("--arch transformer_tiny --share-all-embeddings", a, same, &b), FSQ_OK);
  release(&b);
  CU_ASSERT_EQUAL(build("--arch transformer_tiny --share-all-embeddings", a, other, &b),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(),
                                "--share-all-embeddings requires a joined dictionary"));
  CU_ASSERT_PTR_NULL(b.model);
  release(&b);
  CU_ASSERT_EQUAL(build("--arch transformer_tiny --share-all-embeddings --decoder-embed-dim 32",
                        a, a, &b), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(),
                                "--share-all-embeddings requires --encoder-embed-dim to match "
                                "--decoder-embed-dim"));
  release(&b);
  CU_ASSERT_EQUAL(build("--arch transformer_tiny --encoder-attention-heads 3", a, a, &b),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "divisible"));
  release(&b);
  fsq_dictionary_free(a);
  fsq_dictionary_free(same);
  fsq_dictionary_free(other);
}

/* A fixed batch over a vocabulary of 4 + 10: sources left-padded, targets
 * right-padded, prev_output_tokens = eos + target shifted. */
enum { B = 3, S = 6, T = 5 };
static const int64_t src_data[B][S] = {
    {4, 5, 6, 7, 8, 2}, {1, 1, 9, 10, 11, 2}, {1, 12, 13, 5, 4, 2}};
static const int64_t tgt_data[B][T] = {{8, 7, 6, 5, 2}, {11, 10, 9, 2, 1}, {4, 5, 13, 12, 2}};

static void make_sample(fsq_ctx *ctx, fsq_sample *s) {
  int64_t prev[B][T];
  for (int b = 0; b < B; b++) {
    prev[b][0] = 2;
    for (int t = 1; t < T; t++) prev[b][t] = tgt_data[b][t - 1] == 2 ? 1 : tgt_data[b][t - 1];
  }
  memset(s, 0, sizeof *s);
  s->bsz = B;
  s->src_tokens = fsq_from_data(ctx, FSQ_I64, 2, (int64_t[]){B, S}, src_data);
  s->prev_output_tokens = fsq_from_data(ctx, FSQ_I64, 2, (int64_t[]){B, T}, prev);
  s->target = fsq_from_data(ctx, FSQ_I64, 1, (int64_t[]){B * T}, tgt_data);
}

static const char *const small_args =
    "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "
    "--decoder-layers 2 --dropout 0";

static fsq_tensor *loss_of(built *b, fsq_ctx *ctx, const fsq_sample *s) {
  fsq_tensor *logits = b->ops->forward(b->model, ctx, s);
  if (logits == NULL) return NULL;
  int64_t v = logits->shape[2];
  fsq_tensor *flat = fsq_reshape(ctx, logits, 2, (int64_t[]){B * T, v});
  return fsq_cross_entropy(ctx, flat, s->target, 0.0, FSQ_DICT_PAD, NULL);
}

static void test_forward_gives_finite_logits_of_the_right_shape(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  CU_ASSERT_EQUAL_FATAL(build(small_args, dict, dict, &b), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create(1 << 20);
  fsq_sample s;
  make_sample(ctx, &s);
  fsq_tensor *logits = b.ops->forward(b.model, ctx, &s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
  CU_ASSERT_EQUAL(logits->ndim, 3);
  CU_ASSERT_EQUAL(logits->shape[0], B);
  CU_ASSERT_EQUAL(logits->shape[1], T);
  CU_ASSERT_EQUAL(logits->shape[2], 14);
  int finite = 1;
  for (int64_t i = 0; i < fsq_numel(logits); i++) finite &= isfinite(fsq_get(logits, i));
  CU_ASSERT_TRUE(finite);
  /* a sentence does not see the others: the first one alone gives its logits */
  fsq_sample one = s;
  one.bsz = 1;
  one.src_tokens = fsq_narrow(ctx, s.src_tokens, 0, 0, 1);
  one.prev_output_tokens = fsq_narrow(ctx, s.prev_output_tokens, 0, 0, 1);
  fsq_tensor *alone = b.ops->forward(b.model, ctx, &one);
  CU_ASSERT_PTR_NOT_NULL_FATAL(alone);
  double worst = 0;
  for (int64_t i = 0; i < fsq_numel(alone); i++)
    worst = fmax(worst, fabs(fsq_get(alone, i) - fsq_get(logits, i)));
  CU_ASSERT(worst < 1e-4);
  /* a mismatched batch is refused */
  one.prev_output_tokens = s.prev_output_tokens;
  CU_ASSERT_PTR_NULL(b.ops->forward(b.model, ctx, &one));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "prev_output_tokens"));
  fsq_ctx_destroy(ctx);
  release(&b);
  fsq_dictionary_free(dict);
}

static void test_output_dim_adds_project_out_and_positions_can_be_off(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  CU_ASSERT_EQUAL_FATAL(build("--arch transformer_tiny --encoder-embed-dim 8 "
                              "--decoder-output-dim 12 --no-token-positional-embeddings "
                              "--dropout 0", dict, dict, &b), FSQ_OK);
  check_param(b.params, &(expected_param){"decoder.project_out_dim.weight", 2, {12, 8}});
  check_param(b.params, &(expected_param){"decoder.output_projection.weight", 2, {14, 12}});
  CU_ASSERT_PTR_NULL(fsq_params_find(b.params, "decoder.project_out_dim.bias"));
  fsq_ctx *ctx = fsq_ctx_create(1 << 20);
  fsq_sample s;
  make_sample(ctx, &s);
  fsq_tensor *logits = b.ops->forward(b.model, ctx, &s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
  CU_ASSERT_EQUAL(logits->shape[2], 14);
  fsq_ctx_destroy(ctx);
  release(&b);
  /* a shared output projection needs the decoder's width */
  CU_ASSERT_EQUAL(build("--arch transformer_tiny --decoder-output-dim 12 "
                        "--share-decoder-input-output-embed", dict, dict, &b), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--decoder-output-dim"));
  release(&b);
  fsq_dictionary_free(dict);
}

static void test_source_longer_than_learned_positions_is_refused(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  CU_ASSERT_EQUAL_FATAL(build("--arch transformer_tiny --encoder-embed-dim 8 "
                              "--encoder-learned-pos --max-source-positions 4",
                              dict, dict, &b), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create(1 << 20);
  fsq_sample s;
  make_sample(ctx, &s); /* 6 source tokens in the first sentence */
  CU_ASSERT_PTR_NULL(b.ops->forward(b.model, ctx, &s));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "encoder.embed_positions.weight"));
  fsq_ctx_destroy(ctx);
  release(&b);
  fsq_dictionary_free(dict);
}

static void test_same_seed_builds_the_same_weights(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built a, b;
  CU_ASSERT_EQUAL_FATAL(build(small_args, dict, dict, &a), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(build(small_args, dict, dict, &b), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_params_count(a.params), fsq_params_count(b.params));
  int same = 1;
  for (size_t i = 0; i < fsq_params_count(a.params); i++) {
    const fsq_tensor *x = fsq_params_at(a.params, i), *y = fsq_params_at(b.params, i);
    same &= strcmp(x->name, y->name) == 0 &&
            memcmp(x->data, y->data, (size_t)fsq_numel(x) * sizeof(float)) == 0;
  }
  CU_ASSERT_TRUE(same);
  /* and the weights are not all alike: q_proj differs from k_proj */
  const fsq_tensor *q = fsq_params_find(a.params, "encoder.layers.0.self_attn.q_proj.weight");
  const fsq_tensor *k = fsq_params_find(a.params, "encoder.layers.0.self_attn.k_proj.weight");
  CU_ASSERT_NOT_EQUAL(memcmp(q->data, k->data, (size_t)fsq_numel(q) * sizeof(float)), 0);
  release(&a);
  release(&b);
  fsq_dictionary_free(dict);
}

/* param -= lr * grad over every parameter */
static void sgd_step(fsq_params *p, double lr) {
  for (size_t i = 0; i < fsq_params_count(p); i++) {
    fsq_tensor *t = fsq_params_at(p, i);
    if (t->grad == NULL) continue;
    float *w = t->data;
    const float *g = t->grad->data;
    for (int64_t j = 0; j < fsq_numel(t); j++) w[j] -= (float)(lr * g[j]);
  }
  fsq_params_zero_grad(p);
}

static void test_sgd_steps_reduce_the_loss_on_a_fixed_batch(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  char args[512];
  snprintf(args, sizeof args, "%s --share-all-embeddings", small_args);
  CU_ASSERT_EQUAL_FATAL(build(args, dict, dict, &b), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create(1 << 22);
  double first = 0, last = 0;
  for (int step = 0; step < 30; step++) {
    fsq_sample s;
    make_sample(ctx, &s);
    fsq_tensor *loss = loss_of(&b, ctx, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
    double value = fsq_get(loss, 0) / 13.0; /* per non-pad target token */
    if (step == 0) first = value;
    last = value;
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
    sgd_step(b.params, 0.05);
    fsq_ctx_reset(ctx);
  }
  CU_ASSERT(isfinite(first) && first > 1.0);
  CU_ASSERT(last < 0.5 * first);
  fsq_ctx_destroy(ctx);
  release(&b);
  fsq_dictionary_free(dict);
}

/* The summed loss at the current parameters (no tape). */
static double loss_value(built *b, fsq_ctx *ctx) {
  int was = fsq_ctx_set_grad(ctx, 0);
  fsq_sample s;
  make_sample(ctx, &s);
  fsq_tensor *loss = loss_of(b, ctx, &s);
  double v = loss != NULL ? fsq_get(loss, 0) : NAN;
  fsq_ctx_reset(ctx);
  fsq_ctx_set_grad(ctx, was);
  return v;
}

/* Backward against central differences of the loss, element by element, on
 * parameters of every part: the shared embedding (reached from the encoder,
 * the decoder input and the output projection), learned positions, both
 * attentions, feed-forward and layer norms. f32 parameters: step 1e-2 keeps
 * the rounding of a loss of ~50 (~3e-6) well under the tolerance. */
static void test_gradients_match_finite_differences(void) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  char args[512];
  snprintf(args, sizeof args,
           "%s --share-all-embeddings --activation-fn gelu --encoder-learned-pos "
           "--decoder-normalize-before --layernorm-embedding",
           small_args);
  CU_ASSERT_EQUAL_FATAL(build(args, dict, dict, &b), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create(1 << 22);
  fsq_sample s;
  make_sample(ctx, &s);
  fsq_tensor *loss = loss_of(&b, ctx, &s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  fsq_ctx_reset(ctx);
  static const char *const names[] = {
      "encoder.embed_tokens.weight", "encoder.embed_positions.weight",
      "encoder.layernorm_embedding.weight", "encoder.layers.0.self_attn.q_proj.weight",
      "encoder.layers.1.fc1.bias", "encoder.layers.1.final_layer_norm.bias",
      "decoder.layers.0.self_attn.v_proj.weight", "decoder.layers.1.encoder_attn.k_proj.weight",
      "decoder.layers.1.encoder_attn.out_proj.bias", "decoder.layers.0.fc2.weight",
      "decoder.layer_norm.weight"};
  const double h = 1e-2;
  int checked = 0, bad = 0, nonzero = 0;
  for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
    fsq_tensor *t = fsq_params_find(b.params, names[n]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t->grad);
    float *w = t->data;
    int64_t numel = fsq_numel(t);
    /* rows >= 2 of an embedding: past <s> and <pad>; of the positions, the
       rows this batch uses (padding_idx + 1 .. padding_idx + S) */
    int64_t first = t->ndim == 2 && strstr(names[n], "embed_") ? 2 * t->shape[1] : 0;
    int64_t end = strstr(names[n], "embed_positions") ? (2 + S) * t->shape[1] : numel;
    for (int k = 0; k < 4; k++) {
      int64_t i = first + (int64_t)(((uint64_t)k * 2654435761u + n * 40503u) % (uint64_t)(end - first));
      float keep = w[i];
      w[i] = (float)(keep + h);
      double up = loss_value(&b, ctx);
      w[i] = (float)(keep - h);
      double down = loss_value(&b, ctx);
      w[i] = keep;
      double fd = (up - down) / (2 * h), g = fsq_get(t->grad, i);
      nonzero += fabs(g) > 1e-3;
      if (fabs(fd - g) > 1e-2 * fmax(fabs(fd), fabs(g)) + 1e-3) {
        fprintf(stderr, "%s[%lld]: backward %g, finite difference %g\n", names[n], (long long)i,
                g, fd);
        bad++;
      }
      checked++;
    }
  }
  CU_ASSERT_EQUAL(checked, 44);
  CU_ASSERT_EQUAL(nonzero, 44); /* every checked element matters to the loss */
  CU_ASSERT_EQUAL(bad, 0);
  fsq_ctx_destroy(ctx);
  release(&b);
  fsq_dictionary_free(dict);
}

/* Loss, its value and every parameter's gradient after two training steps
 * (dropout on) of the model built in k's memory, computing in k. */
typedef struct device_run {
  double loss[2];
  float *grads;
  size_t n;
} device_run;

static void train_two_steps(const char *args, const fsq_kernels *k, device_run *r) {
  fsq_dictionary *dict = make_dict(10, "w");
  built b;
  CU_ASSERT_EQUAL_FATAL(build_on(args, dict, dict, k, &b), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create_on(k, 1 << 16);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  for (int step = 0; step < 2; step++) {
    fsq_ctx_set_seed(ctx, 5, (uint64_t)step);
    fsq_sample s;
    make_sample(ctx, &s);
    fsq_tensor *loss = loss_of(&b, ctx, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
    r->loss[step] = fsq_get(loss, 0);
    fsq_ctx_reset(ctx);
  }
  r->n = (size_t)param_total(b.params);
  r->grads = malloc(r->n * sizeof(float));
  size_t off = 0;
  for (size_t i = 0; i < fsq_params_count(b.params); i++) {
    fsq_tensor *t = fsq_params_at(b.params, i);
    if (t->grad == NULL) continue;
    CU_ASSERT_EQUAL(fsq_download(ctx, t->grad, r->grads + off), FSQ_OK);
    off += (size_t)fsq_numel(t);
  }
  r->n = off;
  fsq_ctx_destroy(ctx);
  release(&b);
  fsq_dictionary_free(dict);
}

/* The model built, trained and read back on a device the host cannot touch
 * (the CPU kernels behind a memory fence, tests/unit/fenced_backend.h) gives
 * bit for bit the CPU's losses and gradients: its initialization, positions
 * and padding masks reach device memory only through the backend table. */
static void test_model_on_a_fenced_device_equals_the_cpu(void) {
  const fsq_kernels *dev = fsq_test_fenced_kernels();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
  static const char *const configs[] = {
      "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "
      "--decoder-layers 2 --dropout 0.2 --attention-dropout 0.1",
      "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "
      "--encoder-learned-pos --decoder-learned-pos --layernorm-embedding "
      "--encoder-normalize-before --decoder-normalize-before --share-all-embeddings "
      "--activation-fn gelu --dropout 0.1"};
  for (int c = 0; c < 2; c++) {
    size_t live = fsq_test_fenced_live();
    device_run cpu, fenced;
    train_two_steps(configs[c], fsq_kernels_cpu(), &cpu);
    train_two_steps(configs[c], dev, &fenced);
    CU_ASSERT(isfinite(cpu.loss[0]) && cpu.loss[0] > 0);
    CU_ASSERT_EQUAL(memcmp(cpu.loss, fenced.loss, sizeof cpu.loss), 0);
    CU_ASSERT_EQUAL_FATAL(cpu.n, fenced.n);
    CU_ASSERT_EQUAL(memcmp(cpu.grads, fenced.grads, cpu.n * sizeof(float)), 0);
    CU_ASSERT_EQUAL(fsq_test_fenced_live(), live); /* no device memory leaked */
    free(cpu.grads);
    free(fenced.grads);
  }
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_iwslt_arch_gives_fairseq_values_under_user_values),
      FSQ_TEST_CASE(test_big_archs_chain_to_their_bases),
      FSQ_TEST_CASE(test_parameter_names_and_shapes_match_fairseq_state_dict),
      FSQ_TEST_CASE(test_standard_configuration_has_hand_counted_parameters),
      FSQ_TEST_CASE(test_sharing_uses_one_tensor),
      FSQ_TEST_CASE(test_share_all_embeddings_refuses_separate_vocabularies),
      FSQ_TEST_CASE(test_forward_gives_finite_logits_of_the_right_shape),
      FSQ_TEST_CASE(test_output_dim_adds_project_out_and_positions_can_be_off),
      FSQ_TEST_CASE(test_source_longer_than_learned_positions_is_refused),
      FSQ_TEST_CASE(test_same_seed_builds_the_same_weights),
      FSQ_TEST_CASE(test_sgd_steps_reduce_the_loss_on_a_fixed_batch),
      FSQ_TEST_CASE(test_gradients_match_finite_differences),
      FSQ_TEST_CASE(test_model_on_a_fenced_device_equals_the_cpu),
      FSQ_TEST_END};
  return fsq_test_main("model_transformer", cases);
}
