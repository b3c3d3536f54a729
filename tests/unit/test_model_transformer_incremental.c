/* test_model_transformer_incremental.c: the transformer's inference ops
 * (fsq_model_ops' decoder state, encode, reorder, decode_step) as a beam
 * search drives them: incremental decoding equals recomputing the whole
 * prefix, and both equal the teacher-forced forward, across configurations,
 * beam expansion, reordering and bad input. */
#include "fsq_test.h"
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

/* Resolves "--arch ... --flag value" as fairseq-generate would. */
static fsq_status resolve(const char *args, fsq_config *c) {
  return fsq_test_resolve("fairseq-generate", program_options, selectors, args, c);
}

typedef struct built {
  fsq_dictionary *dict;
  fsq_config config;
  fsq_params *params;
  const fsq_model_ops *ops;
  fsq_model *model;
  fsq_ctx *ctx; /* grad mode off, training off: as the generator runs */
} built;

static void build(const char *args, built *b) {
  memset(b, 0, sizeof *b);
  b->dict = fsq_test_word_dict(10); /* vocabulary 14 */
  CU_ASSERT_EQUAL_FATAL(resolve(args, &b->config), FSQ_OK);
  const fsq_registry_entry *e = b->config.chosen[FSQ_KIND_MODEL];
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  b->ops = e->component->ops;
  CU_ASSERT_PTR_NOT_NULL_FATAL(b->ops->decode_step);
  b->params = fsq_params_create();
  fsq_task_env env = {b->dict, b->dict, 11};
  fsq_status st = b->ops->build(b->config.cfg, &env, b->params, &b->model);
  if (st != FSQ_OK) fprintf(stderr, "%s: %s\n", args, fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  b->ctx = fsq_ctx_create(1 << 22);
  fsq_ctx_set_grad(b->ctx, 0);
  fsq_ctx_set_training(b->ctx, 0);
}

static void release(built *b) {
  fsq_ctx_destroy(b->ctx);
  b->ops->destroy(b->model);
  fsq_params_destroy(b->params);
  fsq_config_free(&b->config);
  fsq_dictionary_free(b->dict);
}

enum { B = 3, S = 6, T = 6, V = 14, BEAM = 2 };

/* Left-padded sources of three lengths (5, 4 and 3 tokens with </s>). */
static const int64_t src_data[B][S] = {
    {4, 5, 6, 7, 8, 2}, {1, 1, 9, 10, 11, 2}, {1, 1, 1, 12, 13, 2}};
/* Target prefixes: </s>, then tokens (no pad: a generator never feeds one). */
static const int64_t prev_data[B][T] = {
    {2, 8, 7, 6, 5, 9}, {2, 11, 10, 9, 4, 4}, {2, 4, 5, 13, 12, 7}};

/* Log-probabilities agree when |a - b| <= TOL (1 + |b|). */
#define TOL 1e-5

/* rows[r][0 .. t) of a table with width columns -> i64 [n, t]. */
static fsq_tensor *tokens(fsq_ctx *ctx, const int64_t *rows, int64_t width, int64_t n,
                          int64_t t) {
  int64_t *buf = malloc((size_t)(n * t) * sizeof *buf);
  for (int64_t r = 0; r < n; r++)
    for (int64_t j = 0; j < t; j++) buf[r * t + j] = rows[r * width + j];
  fsq_tensor *x = fsq_from_data(ctx, FSQ_I64, 2, (int64_t[]){n, t}, buf);
  free(buf);
  return x;
}

/* The largest |a - b| / (1 + |b|) over two [n, V] tensors (inf on a shape
 * mismatch or a NULL). */
static double rel_diff(const fsq_tensor *a, const fsq_tensor *b) {
  if (a == NULL || b == NULL || a->ndim != 2 || b->ndim != 2 || a->shape[0] != b->shape[0] ||
      a->shape[1] != b->shape[1])
    return INFINITY;
  double worst = 0;
  for (int64_t i = 0; i < fsq_numel(a); i++) {
    double x = fsq_get(a, i), y = fsq_get(b, i);
    double d = fabs(x - y) / (1 + fabs(y));
    worst = isnan(d) ? INFINITY : fmax(worst, d);
  }
  return worst;
}

/* The reference: log_softmax of the teacher-forced forward's logits at the
 * last position of prev: i64 [n, t], sources src: i64 [n, S] -> [n, V]. */
static fsq_tensor *reference(built *b, fsq_tensor *src, fsq_tensor *prev) {
  fsq_sample s = {0};
  s.bsz = src->shape[0];
  s.src_tokens = src;
  s.prev_output_tokens = prev;
  fsq_tensor *logits = b->ops->forward(b->model, b->ctx, &s);
  if (logits == NULL) return NULL;
  fsq_tensor *last = fsq_narrow(b->ctx, logits, 1, prev->shape[1] - 1, 1);
  return fsq_log_softmax(b->ctx, fsq_reshape(b->ctx, last, 2, (int64_t[]){s.bsz, V}));
}

/* One step on the state for rows of prefixes (width T) and their sources:
 * incremental, full recomputation and the reference agree. */
static void check_step(built *b, fsq_model_decoder_state *st, const int64_t *prefixes,
                       const int64_t *sources, int64_t n, int64_t t, const char *what) {
  /* odd steps: a view of the first t columns, as a generator slices its
   * token buffer; even steps: a contiguous copy */
  fsq_tensor *prev = t % 2 ? fsq_narrow(b->ctx, tokens(b->ctx, prefixes, T, n, T), 1, 0, t)
                           : tokens(b->ctx, prefixes, T, n, t);
  fsq_tensor *inc = b->ops->decode_step(b->model, b->ctx, st, prev, 1);
  if (inc == NULL) fprintf(stderr, "%s step %lld: %s\n", what, (long long)t, fsq_error_message());
  CU_ASSERT_PTR_NOT_NULL_FATAL(inc);
  CU_ASSERT_EQUAL(inc->dtype, FSQ_F32);
  fsq_tensor *full = b->ops->decode_step(b->model, b->ctx, st, prev, 0);
  fsq_tensor *ref = reference(b, tokens(b->ctx, sources, S, n, S), prev);
  double d_full = rel_diff(inc, full), d_ref = rel_diff(full, ref);
  if (!(d_full <= TOL && d_ref <= TOL))
    fprintf(stderr, "%s step %lld: incremental vs full %g, full vs forward %g\n", what,
            (long long)t, d_full, d_ref);
  CU_ASSERT(d_full <= TOL);
  CU_ASSERT(d_ref <= TOL);
  /* a distribution over the vocabulary */
  double total = 0;
  for (int64_t v = 0; v < V; v++) total += exp(fsq_get(inc, v));
  CU_ASSERT_DOUBLE_EQUAL(total, 1.0, 1e-5);
  /* the state keeps nothing in the ctx: the generator may reset it */
  fsq_ctx_reset(b->ctx);
}

static fsq_model_decoder_state *new_state(built *b, int64_t max_batch) {
  fsq_model_decoder_state *st = NULL;
  CU_ASSERT_EQUAL_FATAL(b->ops->decoder_state_create(b->model, max_batch, S + 2, T, &st), FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  return st;
}

static void encode(built *b, fsq_model_decoder_state *st, const int64_t *sources, int64_t n) {
  fsq_status s = b->ops->encode(b->model, b->ctx, st, tokens(b->ctx, sources, S, n, S));
  if (s != FSQ_OK) fprintf(stderr, "encode: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(s, FSQ_OK);
  fsq_ctx_reset(b->ctx);
}

static const char *const base_args =
    "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 --dropout 0";

/* Every step of three sentences, one config (base_args + extra). */
static void run_incremental_equals_full(const char *extra) {
  char args[512];
  snprintf(args, sizeof args, "%s %s", base_args, extra);
  built b;
  build(args, &b);
  fsq_model_decoder_state *st = new_state(&b, B * BEAM);
  encode(&b, st, &src_data[0][0], B);
  for (int64_t t = 1; t <= T; t++) check_step(&b, st, &prev_data[0][0], &src_data[0][0], B, t, args);
  b.ops->decoder_state_destroy(st);
  release(&b);
}

static void test_incremental_equals_full_post_norm(void) { run_incremental_equals_full(""); }

static void test_incremental_equals_full_pre_norm(void) {
  run_incremental_equals_full("--encoder-normalize-before --decoder-normalize-before");
}

static void test_incremental_equals_full_learned_positions(void) {
  run_incremental_equals_full("--encoder-learned-pos --decoder-learned-pos "
                              "--max-target-positions 6");
}

static void test_incremental_equals_full_shared_embeddings(void) {
  run_incremental_equals_full("--share-all-embeddings");
}

static void test_incremental_equals_full_project_out(void) {
  run_incremental_equals_full("--decoder-output-dim 12 --decoder-normalize-before");
}

static void test_incremental_equals_full_layernorm_embedding_gelu(void) {
  run_incremental_equals_full("--layernorm-embedding --activation-fn gelu --no-scale-embedding "
                              "--decoder-layers 3");
}

static void test_incremental_equals_full_without_positions(void) {
  run_incremental_equals_full("--no-token-positional-embeddings");
}

/* The ctx's training flag is off in the generator: dropout in every place
 * must then be the identity, or the two paths (and the forward) differ. */
static void test_incremental_equals_full_with_dropout_configured(void) {
  run_incremental_equals_full("--dropout 0.3 --attention-dropout 0.2 --activation-dropout 0.1");
}

/* Beam search: one step on the sentences, expansion to BEAM rows each, two
 * steps, a reorder with repeats and drops, two steps, a shrink (finished
 * sentences leave), the last step. Each row's reference is the forward on
 * its own source and prefix. */
static void run_reorder(const char *extra) {
  char args[512];
  snprintf(args, sizeof args, "%s %s", base_args, extra);
  built b;
  build(args, &b);
  fsq_model_decoder_state *st = new_state(&b, B * BEAM);
  int64_t hyps[B * BEAM][T], srcs[B * BEAM][S], n = B;
  memcpy(hyps, prev_data, sizeof prev_data);
  memcpy(srcs, src_data, sizeof src_data);
  encode(&b, st, &srcs[0][0], n);
  check_step(&b, st, &hyps[0][0], &srcs[0][0], n, 1, "before expansion");
  static const int64_t expand[B * BEAM] = {0, 0, 1, 1, 2, 2};
  static const int64_t shuffle[B * BEAM] = {5, 0, 0, 3, 2, 2};
  static const int64_t shrink[4] = {1, 4, 4, 0};
  const int64_t *orders[3] = {expand, shuffle, shrink};
  const int64_t sizes[3] = {B * BEAM, B * BEAM, 4}, at[3] = {1, 3, 5};
  int64_t t = 1;
  for (int k = 0; k < 3; k++) {
    CU_ASSERT_EQUAL_FATAL(b.ops->reorder(st, orders[k], sizes[k]), FSQ_OK);
    int64_t nh[B * BEAM][T], ns[B * BEAM][S];
    for (int64_t r = 0; r < sizes[k]; r++) {
      memcpy(nh[r], hyps[orders[k][r]], sizeof nh[r]);
      memcpy(ns[r], srcs[orders[k][r]], sizeof ns[r]);
    }
    n = sizes[k];
    memcpy(hyps, nh, (size_t)n * sizeof nh[0]);
    memcpy(srcs, ns, (size_t)n * sizeof ns[0]);
    /* the hypotheses of one sentence part ways from the next token on */
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = at[k]; j < T; j++) hyps[r][j] = 4 + (r * 3 + j * 7 + k) % 10;
    int64_t stop = k == 2 ? T : at[k + 1];
    for (t = at[k] + 1; t <= stop; t++) check_step(&b, st, &hyps[0][0], &srcs[0][0], n, t, args);
  }
  CU_ASSERT_EQUAL(t, T + 1);
  b.ops->decoder_state_destroy(st);
  release(&b);
}

static void test_reorder_then_decode_equals_full_post_norm(void) { run_reorder(""); }

static void test_reorder_then_decode_equals_full_pre_norm_learned(void) {
  run_reorder("--encoder-normalize-before --decoder-normalize-before --decoder-learned-pos "
              "--share-decoder-input-output-embed");
}

/* fairseq's generator expands before the first step (the caches are
 * empty): the encoder attention then projects the expanded rows. */
static void test_expansion_before_the_first_step(void) {
  built b;
  build(base_args, &b);
  fsq_model_decoder_state *st = new_state(&b, B * BEAM);
  encode(&b, st, &src_data[0][0], B);
  static const int64_t expand[B * BEAM] = {0, 0, 1, 1, 2, 2};
  CU_ASSERT_EQUAL_FATAL(b.ops->reorder(st, expand, B * BEAM), FSQ_OK);
  int64_t hyps[B * BEAM][T], srcs[B * BEAM][S];
  for (int r = 0; r < B * BEAM; r++) {
    memcpy(hyps[r], prev_data[expand[r]], sizeof hyps[r]);
    memcpy(srcs[r], src_data[expand[r]], sizeof srcs[r]);
    hyps[r][2] = 4 + r; /* beams differ from the second token on */
  }
  for (int64_t t = 1; t <= 4; t++)
    check_step(&b, st, &hyps[0][0], &srcs[0][0], B * BEAM, t, "expanded first");
  b.ops->decoder_state_destroy(st);
  release(&b);
}

/* A new encode forgets the cached steps, also for a batch of another size. */
static void test_encode_again_starts_a_new_batch(void) {
  built b;
  build(base_args, &b);
  fsq_model_decoder_state *st = new_state(&b, B * BEAM);
  encode(&b, st, &src_data[0][0], B);
  for (int64_t t = 1; t <= 3; t++) check_step(&b, st, &prev_data[0][0], &src_data[0][0], B, t, "first");
  encode(&b, st, &src_data[1][0], 2);
  for (int64_t t = 1; t <= T; t++) check_step(&b, st, &prev_data[1][0], &src_data[1][0], 2, t, "second");
  b.ops->decoder_state_destroy(st);
  release(&b);
}

/* decode_step's full mode at every position is the teacher-forced forward's
 * log_softmax there, for right-padded prefixes as in a training batch. */
static void test_full_mode_equals_forward_at_every_position(void) {
  static const int64_t padded[B][T] = {
      {2, 8, 7, 6, 5, 9}, {2, 11, 10, 9, 1, 1}, {2, 4, 5, 1, 1, 1}};
  built b;
  build("--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 --dropout 0 "
        "--decoder-learned-pos --decoder-normalize-before",
        &b);
  fsq_model_decoder_state *st = new_state(&b, B);
  encode(&b, st, &src_data[0][0], B);
  fsq_sample s = {0};
  s.bsz = B;
  s.src_tokens = tokens(b.ctx, &src_data[0][0], S, B, S);
  s.prev_output_tokens = tokens(b.ctx, &padded[0][0], T, B, T);
  fsq_tensor *logits = b.ops->forward(b.model, b.ctx, &s); /* [B, T, V] */
  CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
  for (int64_t t = 1; t <= T; t++) {
    fsq_tensor *at = fsq_reshape(b.ctx, fsq_narrow(b.ctx, logits, 1, t - 1, 1), 2,
                                 (int64_t[]){B, V});
    fsq_tensor *ref = fsq_log_softmax(b.ctx, at);
    fsq_tensor *full = b.ops->decode_step(b.model, b.ctx, st, fsq_narrow(b.ctx, s.prev_output_tokens, 1, 0, t), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(full);
    double d = rel_diff(full, ref);
    if (!(d <= TOL)) fprintf(stderr, "full mode at %lld: %g\n", (long long)t, d);
    CU_ASSERT(d <= TOL);
  }
  b.ops->decoder_state_destroy(st);
  release(&b);
}

static int error_says(const char *what) {
  const char *msg = fsq_error_message();
  int ok = strstr(msg, what) != NULL;
  if (!ok) fprintf(stderr, "error \"%s\" does not say \"%s\"\n", msg, what);
  return ok;
}

static void test_bad_input_is_refused_with_a_reason(void) {
  built b;
  build(base_args, &b);
  fsq_ctx *ctx = b.ctx;
  fsq_model_decoder_state *st = NULL;
  CU_ASSERT_EQUAL(b.ops->decoder_state_create(b.model, 0, S, T, &st), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NULL(st);
  st = new_state(&b, B);
  fsq_tensor *prev1 = tokens(ctx, &prev_data[0][0], T, B, 1);
  /* nothing encoded yet */
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, prev1, 1));
  CU_ASSERT(error_says("before encode"));
  const int64_t ident[B] = {0, 1, 2};
  CU_ASSERT_EQUAL(b.ops->reorder(st, ident, B), FSQ_ERR_INVALID);
  CU_ASSERT(error_says("before encode"));
  /* sources that do not fit the state, or are not tokens */
  int64_t many[B + 1][S];
  memcpy(many, src_data, sizeof src_data);
  memcpy(many[B], src_data[0], sizeof many[B]);
  CU_ASSERT_EQUAL(b.ops->encode(b.model, ctx, st, tokens(ctx, &many[0][0], S, B + 1, S)),
                  FSQ_ERR_INVALID);
  CU_ASSERT(error_says("max_batch"));
  int64_t wide[B][S + 3] = {{0}};
  for (int r = 0; r < B; r++)
    for (int j = 0; j < S + 3; j++) wide[r][j] = 4 + j % 10;
  CU_ASSERT_EQUAL(b.ops->encode(b.model, ctx, st, tokens(ctx, &wide[0][0], S + 3, B, S + 3)),
                  FSQ_ERR_INVALID);
  CU_ASSERT(error_says("max_src_len"));
  fsq_tensor *floats = fsq_zeros(ctx, FSQ_F32, 2, (int64_t[]){B, S});
  CU_ASSERT_EQUAL(b.ops->encode(b.model, ctx, st, floats), FSQ_ERR_INVALID);
  CU_ASSERT(error_says("src_tokens"));
  encode(&b, st, &src_data[0][0], B);
  /* prefixes wider than max_tgt_len, in either mode */
  int64_t longer[B][T + 1];
  for (int r = 0; r < B; r++)
    for (int j = 0; j <= T; j++) longer[r][j] = j == 0 ? 2 : 4 + j;
  fsq_tensor *too_long = tokens(ctx, &longer[0][0], T + 1, B, T + 1);
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, too_long, 0));
  CU_ASSERT(error_says("max_tgt_len"));
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, too_long, 1));
  CU_ASSERT(error_says("max_tgt_len"));
  /* more rows than the state holds, or a reorder past max_batch */
  prev1 = tokens(ctx, &prev_data[0][0], T, B, 1);
  fsq_tensor *two_rows = tokens(ctx, &prev_data[0][0], T, 2, 1);
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, two_rows, 1));
  CU_ASSERT(error_says("rows"));
  const int64_t expand[B + 1] = {0, 0, 1, 2};
  CU_ASSERT_EQUAL(b.ops->reorder(st, expand, B + 1), FSQ_ERR_INVALID);
  CU_ASSERT(error_says("max_batch"));
  const int64_t outside[2] = {0, 3};
  CU_ASSERT_EQUAL(b.ops->reorder(st, outside, 2), FSQ_ERR_INVALID);
  CU_ASSERT(error_says("index 3"));
  /* an incremental step must add exactly one token */
  fsq_tensor *prev2 = tokens(ctx, &prev_data[0][0], T, B, 2);
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, prev2, 1));
  CU_ASSERT(error_says("exactly one"));
  /* none of that disturbed the state */
  fsq_ctx_reset(ctx);
  for (int64_t t = 1; t <= 2; t++) check_step(&b, st, &prev_data[0][0], &src_data[0][0], B, t, "after errors");
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, ctx, st, tokens(ctx, &prev_data[0][0], T, B, 2), 1));
  CU_ASSERT(error_says("exactly one"));
  b.ops->decoder_state_destroy(st);
  b.ops->decoder_state_destroy(NULL);
  release(&b);
}

/* A step that fails inside the model (here learned positions run out)
 * leaves the state refusing further steps until the next encode. */
static void test_failed_step_needs_a_new_encode(void) {
  built b;
  char args[512];
  snprintf(args, sizeof args, "%s --decoder-learned-pos --max-target-positions 3", base_args);
  build(args, &b);
  fsq_model_decoder_state *st = new_state(&b, B);
  encode(&b, st, &src_data[0][0], B);
  for (int64_t t = 1; t <= 3; t++) check_step(&b, st, &prev_data[0][0], &src_data[0][0], B, t, args);
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, b.ctx, st, tokens(b.ctx, &prev_data[0][0], T, B, 4), 1));
  CU_ASSERT(error_says("decoder.embed_positions.weight"));
  CU_ASSERT(error_says("transformer: decode_step"));
  CU_ASSERT_PTR_NULL(b.ops->decode_step(b.model, b.ctx, st, tokens(b.ctx, &prev_data[0][0], T, B, 5), 1));
  CU_ASSERT(error_says("encode again"));
  encode(&b, st, &src_data[0][0], B);
  check_step(&b, st, &prev_data[0][0], &src_data[0][0], B, 1, "encoded again");
  b.ops->decoder_state_destroy(st);
  release(&b);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_incremental_equals_full_post_norm),
      FSQ_TEST_CASE(test_incremental_equals_full_pre_norm),
      FSQ_TEST_CASE(test_incremental_equals_full_learned_positions),
      FSQ_TEST_CASE(test_incremental_equals_full_shared_embeddings),
      FSQ_TEST_CASE(test_incremental_equals_full_project_out),
      FSQ_TEST_CASE(test_incremental_equals_full_layernorm_embedding_gelu),
      FSQ_TEST_CASE(test_incremental_equals_full_without_positions),
      FSQ_TEST_CASE(test_incremental_equals_full_with_dropout_configured),
      FSQ_TEST_CASE(test_reorder_then_decode_equals_full_post_norm),
      FSQ_TEST_CASE(test_reorder_then_decode_equals_full_pre_norm_learned),
      FSQ_TEST_CASE(test_expansion_before_the_first_step),
      FSQ_TEST_CASE(test_encode_again_starts_a_new_batch),
      FSQ_TEST_CASE(test_full_mode_equals_forward_at_every_position),
      FSQ_TEST_CASE(test_bad_input_is_refused_with_a_reason),
      FSQ_TEST_CASE(test_failed_step_needs_a_new_encode),
      FSQ_TEST_END};
  return fsq_test_main("model_transformer_incremental", cases);
}
