/* test_generate_device.c: decoding with a model whose parameters live on a
 * device. A small transformer with random weights is built twice, its
 * parameters copied from the CPU store into a store of the fenced backend
 * (tests/unit/fenced_backend.c: the CPU's kernels behind memory the host
 * cannot touch), and the sequence generator runs the same batches on both:
 * every hypothesis, token, positional score and score must have the same
 * bits, no host code may read device memory (the fence would kill the
 * test), and nothing may stay allocated on the device afterwards.
 *
 * The same runs again with both copies converted to f16 and to bf16
 * (fairseq-generate --fp16 / --bf16: model.half()), where the caches and
 * the encoder copy hold 16-bit values; and a 16-bit model's translations
 * are compared with the f32 model's. */
#include "fenced_backend.h"
#include "fsq_test.h"
#include "generate/fsq_generate.h"
#include "registry/fsq_registry.h"
#include "train/fsq_model.h"

#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
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

enum { WORDS = 20, V = WORDS + 4, B = 5, S = 7, MAX_MODELS = 2 };
/* see eos_loud */
#define EOS_GAIN 10

/* One model built on the CPU and the same parameters on the fence. */
typedef struct twin {
  fsq_config config;
  const fsq_model_ops *ops;
  fsq_params *params[2]; /* 0: CPU, 1: fenced */
  fsq_model *model[2];
} twin;

/* Random weights almost never end a sentence: the output projection's
 * </s> row, scaled up, makes its logit swing with the decoder's state, so
 * sentences end after a few steps, each at its own. */
static void eos_loud(fsq_params *p) {
  fsq_tensor *w = fsq_params_find(p, "decoder.output_projection.weight");
  if (w == NULL) w = fsq_params_find(p, "decoder.embed_tokens.weight"); /* shared */
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  float *row = (float *)w->data + FSQ_DICT_EOS * w->shape[1];
  for (int64_t i = 0; i < w->shape[1]; i++) row[i] *= EOS_GAIN;
}

static void build_twin(const char *args, const fsq_dictionary *dict, uint64_t seed, twin *t) {
  memset(t, 0, sizeof *t);
  CU_ASSERT_EQUAL_FATAL(resolve(args, &t->config), FSQ_OK);
  const fsq_registry_entry *e = t->config.chosen[FSQ_KIND_MODEL];
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  t->ops = e->component->ops;
  const fsq_kernels *where[2] = {fsq_kernels_cpu(), fsq_test_fenced_kernels()};
  CU_ASSERT_PTR_NOT_NULL_FATAL(where[1]);
  fsq_task_env env = {dict, dict, seed};
  for (int i = 0; i < 2; i++) {
    t->params[i] = fsq_params_create_on(where[i]);
    fsq_status st = t->ops->build(t->config.cfg, &env, t->params[i], &t->model[i]);
    if (st != FSQ_OK) fprintf(stderr, "%s: %s\n", args, fsq_error_message());
    CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  }
  eos_loud(t->params[0]);
  /* the CPU's values, uploaded: the same parameters whatever the build did */
  CU_ASSERT_EQUAL_FATAL(fsq_params_count(t->params[0]), fsq_params_count(t->params[1]));
  for (size_t i = 0; i < fsq_params_count(t->params[0]); i++)
    CU_ASSERT_EQUAL_FATAL(fsq_upload(fsq_params_at(t->params[1], i),
                                     fsq_params_at(t->params[0], i)->data),
                          FSQ_OK);
}

static void release_twin(twin *t) {
  for (int i = 0; i < 2; i++) {
    if (t->model[i] != NULL) t->ops->destroy(t->model[i]);
    fsq_params_destroy(t->params[i]);
  }
  fsq_config_free(&t->config);
}

/* Left-padded sources of five lengths (</s> last): the shorter sentences
 * tend to end first, so rows leave the batch at different steps. */
static const int64_t src_data[B * S] = {
    4,  5,  6,  7,  8,  9,  2, /* */ 1, 1, 10, 11, 12, 13, 2, /* */ 1, 1, 1, 1, 14, 15, 2,
    1,  1,  1,  16, 17, 18, 2, /* */ 1, 1, 1,  1,  1,  19, 2};

/* Forced first target tokens (pad: free): sentence 2 gets one, 3 none. */
enum { PREFIX_LEN = 2 };
static const int64_t prefix_data[B * PREFIX_LEN] = {20, 21, 22, 1, 1, 1, 9, 8, 23, 4};

static fsq_generator *make_gen(const fsq_kernels *k, const twin *t, int n_models, int side,
                               const fsq_gen_options *o) {
  fsq_gen_model models[MAX_MODELS];
  for (int i = 0; i < n_models; i++) models[i] = (fsq_gen_model){t[i].ops, t[i].model[side]};
  fsq_generator *g = NULL;
  fsq_status st = fsq_generator_create_on(k, models, n_models, V, o, &g);
  if (st != FSQ_OK) fprintf(stderr, "generator: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  return g;
}

/* 1 when every sentence's hypotheses agree bit for bit (printing the first
 * difference otherwise); *tokens gets the hypotheses' total length. */
static int same_bits(const fsq_generator *a, const fsq_generator *b, int64_t bsz,
                     int64_t *tokens) {
  *tokens = 0;
  for (int64_t i = 0; i < bsz; i++) {
    int64_t n = fsq_generator_hypo_count(a, i);
    if (n < 1 || n != fsq_generator_hypo_count(b, i)) {
      fprintf(stderr, "sentence %lld: %lld and %lld hypotheses\n", (long long)i, (long long)n,
              (long long)fsq_generator_hypo_count(b, i));
      return 0;
    }
    for (int64_t j = 0; j < n; j++) {
      const fsq_hypo *x = fsq_generator_hypo(a, i, j), *y = fsq_generator_hypo(b, i, j);
      *tokens += x->len;
      size_t len = (size_t)x->len;
      if (x->len != y->len || memcmp(&x->score, &y->score, sizeof x->score) != 0 ||
          memcmp(x->tokens, y->tokens, len * sizeof *x->tokens) != 0 ||
          memcmp(x->positional_scores, y->positional_scores, len * sizeof(float)) != 0) {
        fprintf(stderr, "sentence %lld hypothesis %lld: CPU %lld tokens score %.9g, device %lld "
                        "tokens score %.9g\n", (long long)i, (long long)j, (long long)x->len,
                (double)x->score, (long long)y->len, (double)y->score);
        return 0;
      }
    }
  }
  return 1;
}

/* 1 when some sentence of g's last batch ended steps before another: its
 * hypotheses (the first beam finalized) are all shorter than the other's
 * longest, so its rows left the batch while the other's went on. */
static int rows_left_early(const fsq_generator *g, int64_t bsz) {
  int64_t lo = INT64_MAX, hi = 0;
  for (int64_t i = 0; i < bsz; i++) {
    int64_t longest = 0;
    for (int64_t j = 0; j < fsq_generator_hypo_count(g, i); j++)
      if (fsq_generator_hypo(g, i, j)->len > longest) longest = fsq_generator_hypo(g, i, j)->len;
    lo = longest < lo ? longest : lo;
    hi = longest > hi ? longest : hi;
  }
  return lo < hi;
}

/* The same batch on the CPU and on the fence, which must agree bit for bit;
 * returns whether rows left the batch early (see rows_left_early). */
static int generate_both(const twin *t, int n_models, const fsq_gen_options *o, int64_t bsz,
                         const int64_t *prefix, const char *what) {
  fsq_generator *cpu = make_gen(fsq_kernels_cpu(), t, n_models, 0, o);
  fsq_generator *dev = make_gen(fsq_test_fenced_kernels(), t, n_models, 1, o);
  int64_t ids[B] = {0, 1, 2, 3, 4}, tokens = 0;
  int early = 0;
  fsq_status s1 = fsq_generator_generate(cpu, src_data, bsz, S, ids, prefix, PREFIX_LEN);
  if (s1 != FSQ_OK) fprintf(stderr, "%s on the CPU: %s\n", what, fsq_error_message());
  fsq_status s2 = fsq_generator_generate(dev, src_data, bsz, S, ids, prefix, PREFIX_LEN);
  if (s2 != FSQ_OK) fprintf(stderr, "%s on the device: %s\n", what, fsq_error_message());
  CU_ASSERT_EQUAL(s1, FSQ_OK);
  CU_ASSERT_EQUAL(s2, FSQ_OK);
  if (s1 == FSQ_OK && s2 == FSQ_OK) {
    int same = same_bits(cpu, dev, bsz, &tokens);
    if (!same) fprintf(stderr, "%s: the device decodes differently\n", what);
    CU_ASSERT(same);
    CU_ASSERT(tokens > 0);
    early = rows_left_early(cpu, bsz);
  }
  fsq_generator_destroy(cpu);
  fsq_generator_destroy(dev);
  return early;
}

static const char *const tiny =
    "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 --dropout 0";
static const char *const tiny_pre_norm =
    "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 --dropout 0 "
    "--encoder-normalize-before --decoder-normalize-before --decoder-learned-pos "
    "--share-decoder-input-output-embed";

/* fairseq's model.half() on both copies: dtype FSQ_F16 or FSQ_BF16
 * (FSQ_F32: left as built). */
static void convert_twin(twin *t, fsq_dtype dtype) {
  for (int i = 0; dtype != FSQ_F32 && i < 2; i++)
    CU_ASSERT_EQUAL_FATAL(fsq_params_convert(t->params[i], dtype), FSQ_OK);
}

static const fsq_dtype half_dtypes[2] = {FSQ_F16, FSQ_BF16};

/* Runs fn's batches on one model (args) in dtype, then checks the fence is
 * empty. */
static void with_model_as(const char *args, fsq_dtype dtype, void (*fn)(const twin *)) {
  size_t live = fsq_test_fenced_live();
  fsq_dictionary *dict = fsq_test_word_dict(WORDS);
  twin t;
  build_twin(args, dict, 11, &t);
  convert_twin(&t, dtype);
  fn(&t);
  release_twin(&t);
  fsq_dictionary_free(dict);
  CU_ASSERT_EQUAL(fsq_test_fenced_live(), live);
}

static void with_model(const char *args, void (*fn)(const twin *)) {
  with_model_as(args, FSQ_F32, fn);
}

static fsq_gen_options options(int64_t beam, int64_t nbest) {
  fsq_gen_options o;
  fsq_gen_options_default(&o);
  o.beam = beam;
  o.nbest = nbest;
  o.max_len_b = 40; /* room for the sentences to end at different steps */
  return o;
}

/* The cases of one test: the batches must have made rows leave early
 * somewhere, or the reorders that drop rows went untested. */
static void beams(const twin *t) {
  fsq_gen_options o = options(5, 2);
  /* one sentence, then the whole batch (the decoder states grow) */
  generate_both(t, 1, &o, 1, NULL, "beam 5, one sentence");
  int early = generate_both(t, 1, &o, B, NULL, "beam 5 --nbest 2");
  o = options(1, 1);
  early |= generate_both(t, 1, &o, B, NULL, "beam 1");
  CU_ASSERT(early);
}

static void test_beam_search_same_bits_post_norm(void) { with_model(tiny, beams); }
static void test_beam_search_same_bits_pre_norm_learned(void) { with_model(tiny_pre_norm, beams); }

static void prefix_and_sampling(const twin *t) {
  fsq_gen_options o = options(4, 1);
  int early = generate_both(t, 1, &o, B, prefix_data, "beam 4 with a prefix");
  o = options(3, 3);
  o.sampling = 1;
  o.sampling_topk = 6;
  o.seed = 5;
  early |= generate_both(t, 1, &o, B, NULL, "--sampling --sampling-topk 6");
  o = options(3, 3);
  o.sampling = 1;
  o.sampling_topp = 0.8;
  o.temperature = 0.7;
  early |= generate_both(t, 1, &o, B, NULL, "--sampling --sampling-topp 0.8 --temperature 0.7");
  CU_ASSERT(early);
}

static void test_prefix_and_sampling_same_bits(void) { with_model(tiny, prefix_and_sampling); }

/* Two models (different weights) in dtype: each step downloads both
 * models' rows. */
static void ensemble_as(fsq_dtype dtype, const char *what) {
  size_t live = fsq_test_fenced_live();
  fsq_dictionary *dict = fsq_test_word_dict(WORDS);
  twin t[2];
  build_twin(tiny, dict, 11, &t[0]);
  build_twin(tiny, dict, 12, &t[1]);
  convert_twin(&t[0], dtype);
  convert_twin(&t[1], dtype);
  fsq_gen_options o = options(5, 1);
  CU_ASSERT(generate_both(t, 2, &o, B, NULL, what));
  release_twin(&t[0]);
  release_twin(&t[1]);
  fsq_dictionary_free(dict);
  CU_ASSERT_EQUAL(fsq_test_fenced_live(), live);
}

static void test_ensemble_same_bits(void) { ensemble_as(FSQ_F32, "an ensemble of two"); }

/* --score-reference: the batch is collated on the host, as fairseq-generate
 * collates it; the device's generator uploads it. */
static void score_reference(const twin *t) {
  enum { T = 4 };
  static const int64_t target[B * T] = {5, 6, 7, 2, 8, 2, 1, 1, 9, 10, 11, 2, 12, 2, 1, 1,
                                        13, 14, 2, 1};
  static const int64_t prev[B * T] = {2, 5, 6, 7, 2, 8, 1, 1, 2, 9, 10, 11, 2, 12, 1, 1,
                                      2, 13, 14, 1};
  fsq_ctx *host = fsq_ctx_create(1 << 20);
  fsq_sample smp = {0};
  smp.bsz = B;
  smp.src_tokens = fsq_from_data(host, FSQ_I64, 2, (int64_t[]){B, S}, src_data);
  smp.target = fsq_from_data(host, FSQ_I64, 2, (int64_t[]){B, T}, target);
  smp.prev_output_tokens = fsq_from_data(host, FSQ_I64, 2, (int64_t[]){B, T}, prev);
  fsq_gen_options o = options(1, 1);
  o.score_reference = 1;
  fsq_generator *cpu = make_gen(fsq_kernels_cpu(), t, 1, 0, &o);
  fsq_generator *dev = make_gen(fsq_test_fenced_kernels(), t, 1, 1, &o);
  CU_ASSERT_EQUAL(fsq_generator_score(cpu, &smp), FSQ_OK);
  fsq_status s = fsq_generator_score(dev, &smp);
  if (s != FSQ_OK) fprintf(stderr, "score on the device: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL(s, FSQ_OK);
  int64_t tokens = 0;
  CU_ASSERT(s == FSQ_OK && same_bits(cpu, dev, B, &tokens));
  CU_ASSERT_EQUAL(tokens, 15); /* the targets' non-pad tokens */
  fsq_generator_destroy(cpu);
  fsq_generator_destroy(dev);
  fsq_ctx_destroy(host);
}

static void test_score_reference_same_bits(void) { with_model(tiny, score_reference); }

/* Device models driven from a CPU context: refused with a reason, not a
 * read of device memory. */
static void mixed_backends(const twin *t) {
  fsq_gen_options o = options(2, 1);
  fsq_generator *g = make_gen(fsq_kernels_cpu(), t, 1, 1, &o);
  fsq_status s = fsq_generator_generate(g, src_data, B, S, NULL, NULL, 0);
  CU_ASSERT_NOT_EQUAL(s, FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "fenced-cpu memory"));
  fsq_generator_destroy(g);
}

static void test_models_on_another_backend_are_refused(void) { with_model(tiny, mixed_backends); }

/* ---- 16-bit models ----------------------------------------------------------------- */

/* The cases above with the model in f16 and in bf16: the CPU and the
 * fence run the same kernels on the same 16-bit values, so the bits must
 * agree as in f32. Each configuration and case runs in one 16-bit dtype or
 * both (the fence makes every kernel call slow). */
static void test_half_beam_search_same_bits(void) {
  with_model_as(tiny, FSQ_F16, beams);
  with_model_as(tiny_pre_norm, FSQ_BF16, beams);
}

static void test_half_prefix_sampling_and_reference_same_bits(void) {
  with_model_as(tiny, FSQ_BF16, prefix_and_sampling);
  for (int d = 0; d < 2; d++) with_model_as(tiny, half_dtypes[d], score_reference);
}

static void test_half_ensemble_same_bits(void) { ensemble_as(FSQ_F16, "an f16 ensemble of two"); }

/* ---- a 16-bit model's translations against the f32 model's ------------------------ */
enum { AGREE_N = 48, AGREE_MIN_LEN = 2, AGREE_CAP = 64 };

/* AGREE_N left-padded sources of AGREE_MIN_LEN..S-1 words and </s>, drawn
 * from a fixed linear congruential sequence. src: [AGREE_N, S] */
static void agreement_sources(int64_t *src, int64_t *ids) {
  uint64_t x = 12345;
  for (int64_t i = 0; i < AGREE_N; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    int64_t len = AGREE_MIN_LEN + (int64_t)((x >> 33) % (S - AGREE_MIN_LEN)); /* words */
    int64_t *row = src + i * S;
    for (int64_t j = 0; j < S; j++) row[j] = FSQ_DICT_PAD;
    for (int64_t j = S - 1 - len; j < S - 1; j++) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      row[j] = 4 + (int64_t)((x >> 33) % WORDS);
    }
    row[S - 1] = FSQ_DICT_EOS;
    ids[i] = i;
  }
}

/* Every sentence's best hypothesis. */
typedef struct best_hypos {
  int64_t tokens[AGREE_N][AGREE_CAP];
  int64_t len[AGREE_N];
  float score[AGREE_N];
} best_hypos;

/* Beam 5, with the lengths of tests/e2e's fairseq-generate runs (-a 1.2
 * -b 10), on the CPU. */
static void decode_best(const twin *t, const int64_t *src, const int64_t *ids, best_hypos *out) {
  fsq_gen_options o = options(5, 1);
  o.max_len_a = 1.2;
  o.max_len_b = 10;
  fsq_generator *g = make_gen(fsq_kernels_cpu(), t, 1, 0, &o);
  fsq_status s = fsq_generator_generate(g, src, AGREE_N, S, ids, NULL, 0);
  if (s != FSQ_OK) fprintf(stderr, "agreement batch: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(s, FSQ_OK);
  for (int64_t i = 0; i < AGREE_N; i++) {
    CU_ASSERT_FATAL(fsq_generator_hypo_count(g, i) >= 1);
    const fsq_hypo *h = fsq_generator_hypo(g, i, 0);
    CU_ASSERT_FATAL(h->len <= AGREE_CAP);
    out->len[i] = h->len;
    out->score[i] = h->score;
    memcpy(out->tokens[i], h->tokens, (size_t)h->len * sizeof(int64_t));
  }
  fsq_generator_destroy(g);
}

/* A score's tolerance, in nats. A 16-bit model rounds every value it
 * stores to nearest, a relative error of at most u (2^-11 for f16, 2^-8
 * for bf16). Along the path to a logit these models store ROUNDINGS
 * results that carry the signal forward: the two embeddings (with their
 * positions), each encoder layer's two sublayers and each decoder layer's
 * three (output after the residual and layer norm), the final layer norms
 * of the pre-norm model, and the output projection: 2 + 2*2 + 3*2 + 2 + 1.
 * To first order those relative errors add, so logits of order one (the
 * projections keep unit variance) move by at most ROUNDINGS * u; a
 * log-probability, a logit minus the log-sum-exp of all of them, by at
 * most twice that; and a score, their mean, no more. A first-order
 * estimate, not a proof: </s>'s logit is EOS_GAIN times louder here. */
enum { ROUNDINGS = 15 };
static double score_tolerance(fsq_dtype dtype) {
  return 2.0 * ROUNDINGS * ldexp(1.0, dtype == FSQ_F16 ? -11 : -8);
}

/* Totals over the models of one dtype: sentences compared, sentences whose
 * best hypothesis is the f32 model's, and the largest score difference of
 * those. */
typedef struct agreement {
  int sentences, same;
  double worst;
} agreement;

/* One model (args, seed) in f32, then in each 16-bit dtype, on the same
 * sources; counts into agree[2] (half_dtypes' order). */
static void agree_one(const char *args, uint64_t seed, agreement *agree) {
  fsq_dictionary *dict = fsq_test_word_dict(WORDS);
  int64_t src[AGREE_N * S], ids[AGREE_N];
  agreement_sources(src, ids);
  static best_hypos ref, half;
  twin t;
  build_twin(args, dict, seed, &t);
  decode_best(&t, src, ids, &ref);
  release_twin(&t);
  for (int d = 0; d < 2; d++) {
    build_twin(args, dict, seed, &t);
    convert_twin(&t, half_dtypes[d]);
    decode_best(&t, src, ids, &half);
    release_twin(&t);
    agree[d].sentences += AGREE_N;
    for (int64_t i = 0; i < AGREE_N; i++) {
      if (half.len[i] != ref.len[i] ||
          memcmp(half.tokens[i], ref.tokens[i], (size_t)ref.len[i] * sizeof(int64_t)) != 0)
        continue;
      agree[d].same++;
      double diff = fabs((double)half.score[i] - (double)ref.score[i]);
      if (diff > agree[d].worst) agree[d].worst = diff;
    }
  }
  fsq_dictionary_free(dict);
}

/* fairseq-generate --fp16 / --bf16 should translate as the f32 model does
 * but for near ties: the same best hypothesis for at least 3/4 of the
 * sentences of three random models (random weights make more near ties
 * than trained ones: tests/e2e/test_generate_toy.sh counts a trained
 * model's), and on those the same score within score_tolerance. */
static void test_half_translations_agree_with_f32(void) {
  agreement agree[2] = {{0, 0, 0}, {0, 0, 0}};
  agree_one(tiny, 11, agree);
  agree_one(tiny, 12, agree);
  agree_one(tiny_pre_norm, 11, agree);
  for (int d = 0; d < 2; d++) {
    double tol = score_tolerance(half_dtypes[d]);
    fprintf(stderr, "%s: %d of %d sentences translate as in f32; their scores within %.3g nats "
                    "(tolerance %.3g)\n",
            fsq_dtype_name(half_dtypes[d]), agree[d].same, agree[d].sentences, agree[d].worst, tol);
    CU_ASSERT(4 * agree[d].same >= 3 * agree[d].sentences);
    CU_ASSERT(agree[d].worst <= tol);
  }
}

/* Parameters converted after the generator made its decoder states: the
 * states hold f32 and are refused with a reason, not read as 16-bit. */
static void test_state_made_before_conversion_is_refused(void) {
  fsq_dictionary *dict = fsq_test_word_dict(WORDS);
  twin t;
  build_twin(tiny, dict, 11, &t);
  fsq_gen_options o = options(2, 1);
  fsq_generator *g = make_gen(fsq_kernels_cpu(), &t, 1, 0, &o);
  CU_ASSERT_EQUAL(fsq_generator_generate(g, src_data, B, S, NULL, NULL, 0), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_params_convert(t.params[0], FSQ_BF16), FSQ_OK);
  CU_ASSERT_NOT_EQUAL(fsq_generator_generate(g, src_data, B, S, NULL, NULL, 0), FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "converted after"));
  fsq_generator_destroy(g);
  release_twin(&t);
  fsq_dictionary_free(dict);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_beam_search_same_bits_post_norm),
      FSQ_TEST_CASE(test_beam_search_same_bits_pre_norm_learned),
      FSQ_TEST_CASE(test_prefix_and_sampling_same_bits),
      FSQ_TEST_CASE(test_ensemble_same_bits),
      FSQ_TEST_CASE(test_score_reference_same_bits),
      FSQ_TEST_CASE(test_models_on_another_backend_are_refused),
      FSQ_TEST_CASE(test_half_beam_search_same_bits),
      FSQ_TEST_CASE(test_half_prefix_sampling_and_reference_same_bits),
      FSQ_TEST_CASE(test_half_ensemble_same_bits),
      FSQ_TEST_CASE(test_half_translations_agree_with_f32),
      FSQ_TEST_CASE(test_state_made_before_conversion_is_refused),
      FSQ_TEST_END};
  return fsq_test_main("generate_device", cases);
}
