/* test_nn.c: framework/nn against PyTorch references
 * (scripts/fixtures/make_nn_fixtures.py writes tests/fixtures/nn/<layer>.txt:
 * parameters, inputs, the upstream gradient gy, the output y and every
 * grad.<name>), incremental attention against full attention, and fairseq's
 * initialization and parameter names. Errors are normalized as ggml's
 * test-backend-ops does: max|a - b| / max|b| over the tensor. */
#include "fsq_test.h"
#include "nn/fsq_nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5
#define PREFIX "L"

/* ---- fixtures ------------------------------------------------------------------ */
typedef struct fx_tensor {
  char name[128];
  int is_int;
  int ndim;
  int64_t shape[FSQ_MAX_DIMS];
  int64_t n;
  double *v;
} fx_tensor;

typedef struct fixture {
  fx_tensor t[64];
  int n;
} fixture;

static void fx_free(fixture *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) free(f->t[i].v);
  free(f);
}

/* Reads tests/fixtures/nn/<name>.txt (layout: see make_nn_fixtures.py). */
static fixture *fx_load(const char *name) {
  char rel[256];
  snprintf(rel, sizeof rel, "tests/fixtures/nn/%s.txt", name);
  char *path = fsq_test_source_path(rel);
  FILE *fp = fopen(path, "r");
  free(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  fixture *f = calloc(1, sizeof *f);
  char word[128], kind[8];
  while (fscanf(fp, " %127s", word) == 1) {
    if (word[0] == '#') {
      int c;
      while ((c = fgetc(fp)) != EOF && c != '\n') continue;
      continue;
    }
    CU_ASSERT_FATAL(strcmp(word, "tensor") == 0 && f->n < 64);
    fx_tensor *t = &f->t[f->n++];
    CU_ASSERT_FATAL(fscanf(fp, " %127s %7s %d", t->name, kind, &t->ndim) == 3);
    t->is_int = strcmp(kind, "i64") == 0;
    t->n = 1;
    for (int d = 0; d < t->ndim; d++) {
      long long s;
      CU_ASSERT_FATAL(fscanf(fp, " %lld", &s) == 1);
      t->shape[d] = s;
      t->n *= s;
    }
    t->v = malloc((size_t)t->n * sizeof *t->v);
    for (int64_t i = 0; i < t->n; i++) CU_ASSERT_FATAL(fscanf(fp, " %lf", &t->v[i]) == 1);
  }
  fclose(fp);
  return f;
}

static const fx_tensor *fx_get(const fixture *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
  fprintf(stderr, "fixture has no tensor %s\n", name);
  CU_FAIL_FATAL("missing fixture tensor");
  return NULL;
}

/* An arena tensor holding a fixture tensor (f32 or i64). */
static fsq_tensor *fx_tensor_in(fsq_ctx *ctx, const fixture *f, const char *name) {
  const fx_tensor *t = fx_get(f, name);
  fsq_tensor *out = fsq_empty(ctx, t->is_int ? FSQ_I64 : FSQ_F32, t->ndim, t->shape);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  for (int64_t i = 0; i < t->n; i++) {
    if (t->is_int)
      ((int64_t *)out->data)[i] = (int64_t)t->v[i];
    else
      ((float *)out->data)[i] = (float)t->v[i];
  }
  return out;
}

static fsq_tensor *fx_input(fsq_ctx *ctx, const fixture *f, const char *name) {
  fsq_tensor *t = fx_tensor_in(ctx, f, name);
  fsq_requires_grad(t);
  return t;
}

static fsq_tensor *fx_mask(fsq_ctx *ctx, const fixture *f, const char *name) {
  fsq_tensor *m = fsq_cast(ctx, fx_tensor_in(ctx, f, name), FSQ_U8);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  return m;
}

static double norm_err(const fsq_tensor *a, const double *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(fsq_get(a, i) - b[i]);
    num = d > num ? d : num;
    den = fabs(b[i]) > den ? fabs(b[i]) : den;
  }
  return den > 0 ? num / den : num;
}

/* The largest |value| over every grad.* tensor of a fixture. */
static double fx_grad_scale(const fixture *f) {
  double m = 0;
  for (int i = 0; i < f->n; i++)
    if (strncmp(f->t[i].name, "grad.", 5) == 0)
      for (int64_t k = 0; k < f->t[i].n; k++) m = fmax(m, fabs(f->t[i].v[k]));
  return m;
}

/* CU assertion that a matches fixture tensor `name` in shape and value. A
 * gradient that is zero in exact arithmetic (the key projection's bias: a
 * constant added to every key of a row cancels in the softmax) has a float64
 * reference of ~1e-17, which cannot normalize an f32 error; such a tensor is
 * measured against the fixture's largest gradient instead. */
static void expect_close(const fsq_tensor *a, const fixture *f, const char *name) {
  const fx_tensor *b = fx_get(f, name);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL_FATAL(a->ndim, b->ndim);
  for (int d = 0; d < b->ndim; d++) CU_ASSERT_EQUAL_FATAL(a->shape[d], b->shape[d]);
  double err = norm_err(a, b->v, b->n), bmax = 0;
  for (int64_t i = 0; i < b->n; i++) bmax = fmax(bmax, fabs(b->v[i]));
  if (strncmp(name, "grad.", 5) == 0 && bmax < 1e-12 * fx_grad_scale(f))
    err = (bmax > 0 ? err * bmax : err) / fx_grad_scale(f); /* max|a - b| / scale */
  if (!(err <= TOL)) fprintf(stderr, "  %s: normalized error %.3g\n", name, err);
  CU_ASSERT(err <= TOL);
}

/* Copies the fixture's values into every parameter "L.<name>". */
static void fx_load_params(fsq_params *p, const fixture *f) {
  for (size_t i = 0; i < fsq_params_count(p); i++) {
    fsq_tensor *t = fsq_params_at(p, i);
    CU_ASSERT_FATAL(strncmp(t->name, PREFIX ".", 2) == 0);
    const fx_tensor *v = fx_get(f, t->name + 2);
    CU_ASSERT_EQUAL_FATAL(v->n, fsq_numel(t));
    for (int64_t k = 0; k < v->n; k++) ((float *)t->data)[k] = (float)v->v[k];
  }
}

/* loss = sum(y * gy); backward; then y, the gradient of every named input and
 * of every parameter against the fixture. Also checks that each grad.<name>
 * of the fixture is a parameter or an input, so no parameter goes unbuilt. */
static void fx_check_all(fsq_ctx *ctx, fsq_params *p, const fixture *f, fsq_tensor *y,
                         fsq_tensor *const *inputs, const char *const *input_names, int n_in) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  expect_close(y, f, "y");
  fsq_tensor *loss = fsq_sum_all(ctx, fsq_mul(ctx, y, fx_tensor_in(ctx, f, "gy")));
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  char name[160];
  for (int i = 0; i < n_in; i++) {
    snprintf(name, sizeof name, "grad.%s", input_names[i]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inputs[i]->grad);
    expect_close(inputs[i]->grad, f, name);
  }
  for (size_t i = 0; i < fsq_params_count(p); i++) {
    fsq_tensor *t = fsq_params_at(p, i);
    snprintf(name, sizeof name, "grad.%s", t->name + 2);
    expect_close(t->grad, f, name);
  }
  int grads = 0;
  for (int i = 0; i < f->n; i++) grads += strncmp(f->t[i].name, "grad.", 5) == 0;
  CU_ASSERT_EQUAL(grads, (int)fsq_params_count(p) + n_in);
}

static fsq_ctx *new_ctx(void) {
  fsq_ctx *ctx = fsq_ctx_create(1 << 20);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  return ctx;
}

/* ---- layers against PyTorch ------------------------------------------------------- */

static void test_linear_matches_torch(void) {
  fixture *f = fx_load("linear");
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_linear l;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_linear_build(&l, p, PREFIX, 16, 12, 1, FSQ_NN_INIT_TORCH, 1), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *x = fx_input(ctx, f, "x");
  const char *names[] = {"x"};
  fx_check_all(ctx, p, f, fsq_nn_linear_forward(ctx, &l, x), &x, names, 1);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_embedding_scales_and_skips_padding_gradient(void) {
  fixture *f = fx_load("embedding");
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_embedding e;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_embedding_build(&e, p, PREFIX, 10, 16, 1, 1), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *tok = fx_tensor_in(ctx, f, "tokens");
  fx_check_all(ctx, p, f, fsq_nn_embedding_forward(ctx, &e, tok, 4.0), NULL, NULL, 0);
  for (int j = 0; j < 16; j++) CU_ASSERT_EQUAL(((float *)e.weight->grad->data)[16 + j], 0.0f);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_sinusoidal_positions_follow_fairseq_with_left_padding(void) {
  fixture *f = fx_load("sinusoidal");
  fsq_ctx *ctx = new_ctx();
  fsq_tensor *tok = fx_tensor_in(ctx, f, "tokens");
  fsq_nn_sinusoidal s16, s15;
  /* init_size 3 < the 7 rows needed: the table grows on demand. */
  CU_ASSERT_EQUAL_FATAL(fsq_nn_sinusoidal_init(&s16, 16, 1, 3), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_sinusoidal_init(&s15, 15, 1, 3), FSQ_OK);
  expect_close(fsq_nn_sinusoidal_forward(ctx, &s16, tok, -1), f, "y");
  expect_close(fsq_nn_sinusoidal_forward(ctx, &s15, tok, -1), f, "y15");
  /* Step 3 of incremental decoding: position padding_idx + 4 for every row,
   * which is the row of token (1, 3) (no padding in sentence 1). */
  fsq_tensor *step = fsq_nn_sinusoidal_forward(ctx, &s16, tok, 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(step);
  CU_ASSERT_EQUAL(step->shape[0], 3);
  CU_ASSERT_EQUAL(step->shape[1], 1);
  const fx_tensor *y = fx_get(f, "y");
  for (int b = 0; b < 3; b++)
    for (int j = 0; j < 16; j++)
      CU_ASSERT_DOUBLE_EQUAL(fsq_get(step, b * 16 + j), y->v[(1 * 5 + 3) * 16 + j], 1e-6);
  fsq_nn_sinusoidal tiny;
  CU_ASSERT_EQUAL(fsq_nn_sinusoidal_init(&tiny, 3, 1, 8), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NULL(tiny.table);
  fsq_nn_sinusoidal_free(&s16);
  fsq_nn_sinusoidal_free(&s15);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

/* Far rows follow fairseq's float32 arithmetic (at row 1025 the exact sines
 * differ from it by 3e-5 normalized, over the tolerance). */
static void test_sinusoidal_far_rows_match_fairseq_float32_table(void) {
  fixture *f = fx_load("sinusoidal_far");
  fsq_nn_sinusoidal s;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_sinusoidal_init(&s, 16, 1, 1026), FSQ_OK);
  const fx_tensor *rows = fx_get(f, "rows"), *y = fx_get(f, "y");
  double num = 0, den = 0;
  for (int r = 0; r < rows->n; r++)
    for (int j = 0; j < 16; j++) {
      double want = y->v[r * 16 + j], got = s.table[(int64_t)rows->v[r] * 16 + j];
      num = fmax(num, fabs(got - want));
      den = fmax(den, fabs(want));
    }
  CU_ASSERT(num / den <= TOL);
  fsq_nn_sinusoidal_free(&s);
  fx_free(f);
}

static void test_learned_positions_offset_by_padding_idx(void) {
  fixture *f = fx_load("learned_pos");
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_learned_pos e;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_learned_pos_build(&e, p, PREFIX, 8, 16, 1, 1), FSQ_OK);
  CU_ASSERT_EQUAL(e.weight->shape[0], 8 + 1 + 1);
  fx_load_params(p, f);
  fsq_tensor *tok = fx_tensor_in(ctx, f, "tokens");
  fx_check_all(ctx, p, f, fsq_nn_learned_pos_forward(ctx, &e, tok, -1), NULL, NULL, 0);
  fsq_ctx_set_grad(ctx, 0);
  fsq_tensor *step = fsq_nn_learned_pos_forward(ctx, &e, tok, 7); /* row 1 + 8 */
  CU_ASSERT_PTR_NOT_NULL_FATAL(step);
  for (int j = 0; j < 16; j++)
    CU_ASSERT_EQUAL(fsq_get(step, 2 * 16 + j), ((float *)e.weight->data)[9 * 16 + j]);
  CU_ASSERT_PTR_NULL(fsq_nn_learned_pos_forward(ctx, &e, tok, 8)); /* past max_positions */
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_layer_norm_matches_torch(void) {
  fixture *f = fx_load("layer_norm");
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_layer_norm ln;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_layer_norm_build(&ln, p, PREFIX, 16), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *x = fx_input(ctx, f, "x");
  const char *names[] = {"x"};
  fx_check_all(ctx, p, f, fsq_nn_layer_norm_forward(ctx, &ln, x), &x, names, 1);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

/* ---- attention against PyTorch ----------------------------------------------------- */

static void run_mha_fixture(const char *name, int causal, int encdec) {
  fixture *f = fx_load(name);
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_mha m;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build(&m, p, PREFIX, 16, 4, 0.0, 1), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *in[2] = {fx_input(ctx, f, "x"), encdec ? fx_input(ctx, f, "enc") : NULL};
  fsq_tensor *kpm = causal ? NULL : fx_mask(ctx, f, "kpm");
  fsq_tensor *y = fsq_nn_mha_forward(ctx, &m, in[0], in[1], in[1], kpm, causal, NULL, 0);
  const char *names[] = {"x", "enc"};
  fx_check_all(ctx, p, f, y, in, names, encdec ? 2 : 1);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_self_attention_with_key_padding_mask_matches_torch(void) {
  run_mha_fixture("mha_self_kpm", 0, 0);
}

static void test_self_attention_with_causal_mask_matches_torch(void) {
  run_mha_fixture("mha_self_causal", 1, 0);
}

static void test_encoder_decoder_attention_matches_torch(void) {
  run_mha_fixture("mha_encdec", 0, 1);
}

static void run_ffn_fixture(const char *name, fsq_nn_activation act) {
  fixture *f = fx_load(name);
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_ffn ffn;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_ffn_build(&ffn, p, PREFIX, 16, 32, act, 0.0, 1), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *x = fx_input(ctx, f, "x");
  const char *names[] = {"x"};
  fx_check_all(ctx, p, f, fsq_nn_ffn_forward(ctx, &ffn, x), &x, names, 1);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_ffn_matches_torch(void) { run_ffn_fixture("ffn", FSQ_NN_RELU); }

static void test_ffn_with_gelu_matches_torch(void) {
  CU_ASSERT_EQUAL(fsq_nn_activation_from_name("gelu"), FSQ_NN_GELU);
  CU_ASSERT_EQUAL(fsq_nn_activation_from_name("swish"), -1);
  run_ffn_fixture("ffn_gelu", FSQ_NN_GELU);
}

/* ---- transformer layers against PyTorch -------------------------------------------- */

static fsq_nn_layer_config layer_config(int normalize_before) {
  fsq_nn_layer_config cfg = {.embed_dim = 16, .ffn_dim = 32, .num_heads = 4,
                             .activation = FSQ_NN_RELU, .normalize_before = normalize_before};
  return cfg;
}

static void run_encoder_layer_fixture(const char *name, int normalize_before) {
  fixture *f = fx_load(name);
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_encoder_layer l;
  fsq_nn_layer_config cfg = layer_config(normalize_before);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&l, p, PREFIX, &cfg, 1), FSQ_OK);
  fx_load_params(p, f);
  fsq_tensor *x = fx_input(ctx, f, "x");
  fsq_tensor *y = fsq_nn_encoder_layer_forward(ctx, &l, x, fx_mask(ctx, f, "kpm"));
  const char *names[] = {"x"};
  fx_check_all(ctx, p, f, y, &x, names, 1);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_encoder_layer_post_norm_matches_torch(void) {
  run_encoder_layer_fixture("encoder_layer_post", 0);
}

static void test_encoder_layer_normalize_before_matches_torch(void) {
  run_encoder_layer_fixture("encoder_layer_pre", 1);
}

static void run_decoder_layer_fixture(const char *name, const fsq_nn_layer_config *cfg) {
  fixture *f = fx_load(name);
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_decoder_layer l;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_build(&l, p, PREFIX, cfg, 1), FSQ_OK);
  fx_load_params(p, f);
  int lm = cfg->no_encoder_attn;
  fsq_tensor *in[2] = {fx_input(ctx, f, "x"), lm ? NULL : fx_input(ctx, f, "enc")};
  fsq_tensor *y = fsq_nn_decoder_layer_forward(ctx, &l, in[0], fx_mask(ctx, f, "kpm"), in[1],
                                               lm ? NULL : fx_mask(ctx, f, "enc_kpm"), NULL);
  const char *names[] = {"x", "enc"};
  fx_check_all(ctx, p, f, y, in, names, lm ? 1 : 2);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
  fx_free(f);
}

static void test_decoder_layer_post_norm_matches_torch(void) {
  fsq_nn_layer_config cfg = layer_config(0);
  run_decoder_layer_fixture("decoder_layer_post", &cfg);
}

static void test_decoder_layer_normalize_before_matches_torch(void) {
  fsq_nn_layer_config cfg = layer_config(1);
  run_decoder_layer_fixture("decoder_layer_pre", &cfg);
}

static void test_decoder_layer_with_wider_encoder_matches_torch(void) {
  fsq_nn_layer_config cfg = layer_config(0);
  cfg.encoder_embed_dim = 24;
  run_decoder_layer_fixture("decoder_layer_kdim", &cfg);
}

static void test_language_model_decoder_layer_matches_torch(void) {
  fsq_nn_layer_config cfg = layer_config(1);
  cfg.no_encoder_attn = 1;
  run_decoder_layer_fixture("decoder_layer_lm", &cfg);
}

/* ---- incremental decoding ------------------------------------------------------------ */

static fsq_tensor *random_tensor(fsq_ctx *ctx, int ndim, const int64_t *shape, uint64_t stream) {
  fsq_tensor *t = fsq_empty(ctx, FSQ_F32, ndim, shape);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  fsq_rng r = fsq_rng_make(7, stream);
  for (int64_t i = 0; i < fsq_numel(t); i++)
    ((float *)t->data)[i] = 2.0f * fsq_rng_uniform(&r) - 1.0f;
  return t;
}

static fsq_tensor *index_tensor(fsq_ctx *ctx, const int64_t *idx, int64_t n) {
  return fsq_from_data(ctx, FSQ_I64, 1, &n, idx);
}

/* Normalized error of a against b (same shape). */
static double tensor_err(const fsq_tensor *a, const fsq_tensor *b) {
  int64_t n = fsq_numel(b);
  CU_ASSERT_EQUAL_FATAL(fsq_numel(a), n);
  double *v = malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = fsq_get(b, i);
  double e = norm_err(a, v, n);
  free(v);
  return e;
}

static void test_incremental_self_attention_equals_causal_attention(void) {
  fsq_ctx *ctx = new_ctx();
  fsq_ctx_set_grad(ctx, 0);
  fsq_params *p = fsq_params_create();
  fsq_nn_mha m;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build(&m, p, "self_attn", 16, 4, 0.0, 3), FSQ_OK);
  int64_t shape[3] = {6, 3, 16};
  fsq_tensor *x = random_tensor(ctx, 3, shape, 1);
  fsq_tensor *full = fsq_nn_mha_forward(ctx, &m, x, NULL, NULL, NULL, 1, NULL, 0);
  fsq_nn_mha_state st;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_state_init(&st, &m, 3, 6), FSQ_OK);
  for (int t = 0; t < 6; t++) {
    fsq_tensor *xt = fsq_narrow(ctx, x, 0, t, 1);
    fsq_tensor *yt = fsq_nn_mha_forward(ctx, &m, xt, NULL, NULL, NULL, 1, &st, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, full, 0, t, 1)) <= TOL);
  }
  CU_ASSERT_EQUAL(st.len, 6);
  /* A prefix of 4 steps in one call (a causal block over the cache), then
   * the last 2 one by one, gives the same rows. */
  fsq_nn_mha_state_clear(&st);
  fsq_tensor *y4 = fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, 0, 4), NULL, NULL, NULL, 1,
                                      &st, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y4);
  CU_ASSERT(tensor_err(y4, fsq_narrow(ctx, full, 0, 0, 4)) <= TOL);
  for (int t = 4; t < 6; t++) {
    fsq_tensor *yt = fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, t, 1), NULL, NULL, NULL, 1,
                                        &st, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, full, 0, t, 1)) <= TOL);
  }
  /* One step too many is refused, not written past the cache. */
  CU_ASSERT_PTR_NULL(fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, 0, 1), NULL, NULL, NULL,
                                        1, &st, 0));
  /* A cache also refuses to run with grad mode on. */
  fsq_nn_mha_state_clear(&st);
  fsq_ctx_set_grad(ctx, 1);
  CU_ASSERT_PTR_NULL(fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, 0, 1), NULL, NULL, NULL,
                                        1, &st, 0));
  fsq_nn_mha_state_free(&st);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
}

static void test_reordered_cache_equals_recomputing_on_reordered_inputs(void) {
  fsq_ctx *ctx = new_ctx();
  fsq_ctx_set_grad(ctx, 0);
  fsq_params *p = fsq_params_create();
  fsq_nn_mha m;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build(&m, p, "self_attn", 16, 4, 0.0, 5), FSQ_OK);
  int64_t shape[3] = {5, 3, 16};
  fsq_tensor *x = random_tensor(ctx, 3, shape, 2);
  /* A beam search's reorder: 3 rows become 4, one dropped, one duplicated. */
  const int64_t order[4] = {2, 0, 0, 1};
  int64_t shape4[3] = {5, 4, 16};
  fsq_tensor *x4 = random_tensor(ctx, 3, shape4, 3);
  fsq_tensor *xr = fsq_index_select(ctx, x, 1, index_tensor(ctx, order, 4));
  /* The reference: prefix reordered, then the new steps of x4. */
  fsq_tensor *parts[2] = {fsq_narrow(ctx, xr, 0, 0, 3), fsq_narrow(ctx, x4, 0, 3, 2)};
  fsq_tensor *ref_in = fsq_concat(ctx, 2, parts, 0);
  fsq_tensor *ref = fsq_nn_mha_forward(ctx, &m, ref_in, NULL, NULL, NULL, 1, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  fsq_nn_mha_state st;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_state_init(&st, &m, 4, 5), FSQ_OK);
  for (int t = 0; t < 3; t++)
    CU_ASSERT_PTR_NOT_NULL(fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, t, 1), NULL, NULL,
                                              NULL, 1, &st, 0));
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_state_reorder(&st, order, 4), FSQ_OK);
  for (int t = 3; t < 5; t++) {
    fsq_tensor *yt = fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x4, 0, t, 1), NULL, NULL, NULL,
                                        1, &st, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, ref, 0, t, 1)) <= TOL);
  }
  const int64_t bad[1] = {4};
  CU_ASSERT_EQUAL(fsq_nn_mha_state_reorder(&st, bad, 1), FSQ_ERR_INVALID);
  fsq_nn_mha_state_free(&st);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
}

/* The cache starts with room for 32 steps and grows (to 64, then to its
 * max_len of 70): growth keeps what is cached, also across a reorder. */
static void test_attention_cache_grows_and_keeps_its_contents(void) {
  fsq_ctx *ctx = new_ctx();
  fsq_ctx_set_grad(ctx, 0);
  fsq_params *p = fsq_params_create();
  fsq_nn_mha m;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build(&m, p, "self_attn", 16, 4, 0.0, 5), FSQ_OK);
  enum { T = 70, CUT = 40 };
  int64_t shape[3] = {T, 3, 16}, shape4[3] = {T, 4, 16};
  fsq_tensor *x = random_tensor(ctx, 3, shape, 4);
  fsq_tensor *x4 = random_tensor(ctx, 3, shape4, 5);
  const int64_t order[4] = {1, 2, 2, 0};
  fsq_tensor *xr = fsq_index_select(ctx, x, 1, index_tensor(ctx, order, 4));
  fsq_tensor *parts[2] = {fsq_narrow(ctx, xr, 0, 0, CUT), fsq_narrow(ctx, x4, 0, CUT, T - CUT)};
  fsq_tensor *ref = fsq_nn_mha_forward(ctx, &m, fsq_concat(ctx, 2, parts, 0), NULL, NULL, NULL,
                                       1, NULL, 0);
  fsq_tensor *full = fsq_nn_mha_forward(ctx, &m, x, NULL, NULL, NULL, 1, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  CU_ASSERT_PTR_NOT_NULL_FATAL(full);
  fsq_nn_mha_state st;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_state_init(&st, &m, 4, T), FSQ_OK);
  CU_ASSERT_EQUAL(st.cap, 32);
  for (int t = 0; t < CUT; t++) {
    fsq_tensor *yt = fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x, 0, t, 1), NULL, NULL, NULL,
                                        1, &st, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, full, 0, t, 1)) <= TOL);
  }
  CU_ASSERT_EQUAL(st.cap, 64);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_state_reorder(&st, order, 4), FSQ_OK);
  for (int t = CUT; t < T; t++) {
    fsq_tensor *yt = fsq_nn_mha_forward(ctx, &m, fsq_narrow(ctx, x4, 0, t, 1), NULL, NULL, NULL,
                                        1, &st, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, ref, 0, t, 1)) <= TOL);
  }
  CU_ASSERT_EQUAL(st.cap, T);
  CU_ASSERT_EQUAL(fsq_nn_mha_state_reserve(&st, T + 1), FSQ_ERR_INVALID);
  fsq_nn_mha_state_free(&st);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
}

static void run_incremental_decoder_layer(int normalize_before, int lm) {
  fsq_ctx *ctx = new_ctx();
  fsq_ctx_set_grad(ctx, 0);
  fsq_params *p = fsq_params_create();
  fsq_nn_decoder_layer l;
  fsq_nn_layer_config cfg = layer_config(normalize_before);
  cfg.no_encoder_attn = lm;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_build(&l, p, "decoder.layers.0", &cfg, 9), FSQ_OK);
  int64_t xs[3] = {5, 3, 16}, es[3] = {6, 3, 16}, ms[2] = {3, 6};
  fsq_tensor *x = random_tensor(ctx, 3, xs, 4), *enc = lm ? NULL : random_tensor(ctx, 3, es, 5);
  const uint8_t mask[18] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
  fsq_tensor *emask = fsq_from_data(ctx, FSQ_U8, 2, ms, mask);
  fsq_tensor *full = fsq_nn_decoder_layer_forward(ctx, &l, x, NULL, enc, emask, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(full);
  fsq_nn_decoder_layer_state st;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_state_init(&st, &l, 3, 5, 6), FSQ_OK);
  for (int t = 0; t < 5; t++) {
    fsq_tensor *yt = fsq_nn_decoder_layer_forward(ctx, &l, fsq_narrow(ctx, x, 0, t, 1), NULL,
                                                  enc, emask, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, full, 0, t, 1)) <= TOL);
  }
  /* Reorder after 5 steps: a sixth step would not fit, so clear and decode
   * 3 steps, reorder, then compare 2 more steps with the reordered batch. */
  fsq_nn_decoder_layer_state_clear(&st);
  for (int t = 0; t < 3; t++)
    CU_ASSERT_PTR_NOT_NULL(fsq_nn_decoder_layer_forward(ctx, &l, fsq_narrow(ctx, x, 0, t, 1),
                                                        NULL, enc, emask, &st));
  const int64_t order[3] = {1, 2, 1};
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_state_reorder(&st, order, 3, 0), FSQ_OK);
  fsq_tensor *idx = index_tensor(ctx, order, 3);
  fsq_tensor *xr = fsq_index_select(ctx, x, 1, idx);
  fsq_tensor *er = lm ? NULL : fsq_index_select(ctx, enc, 1, idx);
  fsq_tensor *mr = fsq_index_select(ctx, emask, 0, idx);
  fsq_tensor *ref = fsq_nn_decoder_layer_forward(ctx, &l, xr, NULL, er, mr, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  for (int t = 3; t < 5; t++) {
    fsq_tensor *yt = fsq_nn_decoder_layer_forward(ctx, &l, fsq_narrow(ctx, xr, 0, t, 1), NULL,
                                                  er, mr, &st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yt);
    CU_ASSERT(tensor_err(yt, fsq_narrow(ctx, ref, 0, t, 1)) <= TOL);
  }
  fsq_nn_decoder_layer_state_free(&st);
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
}

static void test_incremental_decoder_layer_post_norm_equals_full(void) {
  run_incremental_decoder_layer(0, 0);
}

static void test_incremental_decoder_layer_normalize_before_equals_full(void) {
  run_incremental_decoder_layer(1, 0);
}

static void test_incremental_language_model_layer_equals_full(void) {
  run_incremental_decoder_layer(1, 1);
}

/* Copies of y's values (so later arena use cannot change them). */
static float *snapshot(const fsq_tensor *y) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  float *v = malloc((size_t)fsq_numel(y) * sizeof *v);
  for (int64_t i = 0; i < fsq_numel(y); i++) v[i] = (float)fsq_get(y, i);
  return v;
}

static void test_layer_dropout_is_seeded_and_off_in_eval(void) {
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create(), *q = fsq_params_create();
  fsq_nn_layer_config cfg = layer_config(0), plain = cfg;
  cfg.dropout = cfg.attention_dropout = cfg.activation_dropout = 0.2;
  fsq_nn_encoder_layer l, l0;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&l, p, "encoder.layers.0", &cfg, 3), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&l0, q, "encoder.layers.0", &plain, 3), FSQ_OK);
  int64_t shape[3] = {5, 3, 16}, n = 5 * 3 * 16;
  fsq_tensor *x = random_tensor(ctx, 3, shape, 8);
  float *ref = snapshot(fsq_nn_encoder_layer_forward(ctx, &l0, x, NULL));
  fsq_ctx_set_training(ctx, 0);
  float *eval = snapshot(fsq_nn_encoder_layer_forward(ctx, &l, x, NULL));
  CU_ASSERT(memcmp(ref, eval, (size_t)n * sizeof *ref) == 0);
  fsq_ctx_set_training(ctx, 1);
  fsq_ctx_set_seed(ctx, 11, 0);
  float *a = snapshot(fsq_nn_encoder_layer_forward(ctx, &l, x, NULL));
  fsq_ctx_set_seed(ctx, 11, 0);
  float *b = snapshot(fsq_nn_encoder_layer_forward(ctx, &l, x, NULL));
  CU_ASSERT(memcmp(a, b, (size_t)n * sizeof *a) == 0);
  CU_ASSERT(memcmp(a, ref, (size_t)n * sizeof *a) != 0);
  fsq_ctx_set_seed(ctx, 11, 1);
  float *c = snapshot(fsq_nn_encoder_layer_forward(ctx, &l, x, NULL));
  CU_ASSERT(memcmp(a, c, (size_t)n * sizeof *a) != 0);
  free(ref), free(eval), free(a), free(b), free(c);
  fsq_params_destroy(p);
  fsq_params_destroy(q);
  fsq_ctx_destroy(ctx);
}

/* ---- initialization and names --------------------------------------------------------- */

static void test_decoder_layer_registers_fairseq_parameter_names(void) {
  fsq_params *p = fsq_params_create();
  fsq_nn_decoder_layer l;
  fsq_nn_layer_config cfg = layer_config(0);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_build(&l, p, "decoder.layers.0", &cfg, 1), FSQ_OK);
  static const char *const names[] = {
      "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
      "self_attn.v_proj.bias", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
      "self_attn.out_proj.weight", "self_attn.out_proj.bias", "self_attn_layer_norm.weight",
      "self_attn_layer_norm.bias", "encoder_attn.k_proj.weight", "encoder_attn.k_proj.bias",
      "encoder_attn.v_proj.weight", "encoder_attn.v_proj.bias", "encoder_attn.q_proj.weight",
      "encoder_attn.q_proj.bias", "encoder_attn.out_proj.weight", "encoder_attn.out_proj.bias",
      "encoder_attn_layer_norm.weight", "encoder_attn_layer_norm.bias", "fc1.weight",
      "fc1.bias", "fc2.weight", "fc2.bias", "final_layer_norm.weight",
      "final_layer_norm.bias"};
  size_t n = sizeof names / sizeof names[0];
  CU_ASSERT_EQUAL(fsq_params_count(p), n);
  for (size_t i = 0; i < n; i++) {
    char full[128];
    snprintf(full, sizeof full, "decoder.layers.0.%s", names[i]);
    CU_ASSERT_PTR_NOT_NULL(fsq_params_find(p, full));
  }
  /* A language model's layer has no encoder_attn parameters. */
  fsq_nn_decoder_layer again;
  fsq_params *lm = fsq_params_create();
  cfg.no_encoder_attn = 1;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_decoder_layer_build(&again, lm, "decoder.layers.0", &cfg, 1), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_params_count(lm), n - 10);
  CU_ASSERT_PTR_NULL(fsq_params_find(lm, "decoder.layers.0.encoder_attn.q_proj.weight"));
  fsq_params_destroy(lm);
  cfg.no_encoder_attn = 0;
  /* A second layer under the same prefix is a duplicate name: refused. */
  CU_ASSERT_NOT_EQUAL(fsq_nn_decoder_layer_build(&again, p, "decoder.layers.0", &cfg, 1), FSQ_OK);
  fsq_params_destroy(p);
}

static void test_bad_shapes_are_refused_with_a_message(void) {
  fsq_ctx *ctx = new_ctx();
  fsq_params *p = fsq_params_create();
  fsq_nn_mha m;
  CU_ASSERT_EQUAL(fsq_nn_mha_build(&m, p, "decoder.layers.3.self_attn", 16, 5, 0.0, 1),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "decoder.layers.3.self_attn"));
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build(&m, p, "attn", 16, 4, 0.0, 1), FSQ_OK);
  int64_t bad[3] = {5, 3, 12}, q[3] = {5, 3, 16}, k[3] = {6, 2, 16};
  CU_ASSERT_PTR_NULL(fsq_nn_mha_forward(ctx, &m, random_tensor(ctx, 3, bad, 1), NULL, NULL,
                                        NULL, 0, NULL, 0));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "attn.q_proj.weight"));
  CU_ASSERT_PTR_NULL(fsq_nn_mha_forward(ctx, &m, random_tensor(ctx, 3, q, 1),
                                        random_tensor(ctx, 3, k, 2), NULL, NULL, 0, NULL, 0));
  CU_ASSERT_PTR_NULL(fsq_nn_mha_forward(ctx, &m, NULL, NULL, NULL, NULL, 0, NULL, 0));
  int64_t fshape[2] = {3, 5};
  fsq_tensor *ftok = fsq_zeros(ctx, FSQ_F32, 2, fshape);
  CU_ASSERT_PTR_NULL(fsq_nn_make_positions(ctx, ftok, 1));
  fsq_params_destroy(p);
  fsq_ctx_destroy(ctx);
}

static double max_abs(const fsq_tensor *t) {
  double m = 0;
  for (int64_t i = 0; i < fsq_numel(t); i++) m = fmax(m, fabs(fsq_get(t, i)));
  return m;
}

static void test_initialization_follows_fairseq_and_is_reproducible(void) {
  fsq_params *p = fsq_params_create(), *q = fsq_params_create();
  fsq_nn_encoder_layer a, b;
  fsq_nn_layer_config cfg = layer_config(0);
  cfg.embed_dim = 64;
  cfg.ffn_dim = 256;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&a, p, "encoder.layers.0", &cfg, 42), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&b, q, "encoder.layers.0", &cfg, 42), FSQ_OK);
  for (size_t i = 0; i < fsq_params_count(p); i++)
    CU_ASSERT(memcmp(fsq_params_at(p, i)->data, fsq_params_at(q, i)->data,
                     (size_t)fsq_numel(fsq_params_at(p, i)) * sizeof(float)) == 0);
  /* xavier_uniform_ bounds: gain 1/sqrt(2) for q, k, v; 1 for out_proj; the
   * draws come close to the bound. */
  double qkv = M_SQRT1_2 * sqrt(6.0 / 128), out = sqrt(6.0 / 128), fc = 1.0 / sqrt(64.0);
  CU_ASSERT(max_abs(a.self_attn.q_proj.weight) <= qkv && max_abs(a.self_attn.q_proj.weight) > 0.95 * qkv);
  CU_ASSERT(max_abs(a.self_attn.v_proj.weight) <= qkv && max_abs(a.self_attn.v_proj.weight) > 0.95 * qkv);
  CU_ASSERT(max_abs(a.self_attn.out_proj.weight) <= out && max_abs(a.self_attn.out_proj.weight) > 0.95 * qkv / M_SQRT1_2);
  CU_ASSERT_EQUAL(max_abs(a.self_attn.out_proj.bias), 0.0);
  CU_ASSERT(max_abs(a.self_attn.k_proj.bias) <= 1.0 / 8 && max_abs(a.self_attn.k_proj.bias) > 0);
  CU_ASSERT(max_abs(a.ffn.fc1.weight) <= fc && max_abs(a.ffn.fc1.weight) > 0.95 * fc);
  CU_ASSERT(max_abs(a.ffn.fc2.weight) <= 1.0 / 16 && max_abs(a.ffn.fc2.weight) > 0.95 / 16);
  CU_ASSERT_EQUAL(fsq_get(a.final_layer_norm.weight, 5), 1.0);
  CU_ASSERT_EQUAL(max_abs(a.final_layer_norm.bias), 0.0);
  /* kdim != embed_dim: not qkv_same_dim, so gain 1 for q, k and v. */
  fsq_nn_mha wide;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_mha_build_kv(&wide, p, "encoder_attn", 64, 96, 96, 4, 0.0, 42), FSQ_OK);
  double kb = sqrt(6.0 / (96 + 64)), qb = sqrt(6.0 / 128);
  CU_ASSERT(max_abs(wide.k_proj.weight) <= kb && max_abs(wide.k_proj.weight) > 0.95 * kb);
  CU_ASSERT(max_abs(wide.q_proj.weight) <= qb && max_abs(wide.q_proj.weight) > 0.95 * qb);
  CU_ASSERT_EQUAL(wide.k_proj.weight->shape[1], 96);
  /* Different tensors of one layer draw different values. */
  CU_ASSERT_NOT_EQUAL(fsq_get(a.self_attn.q_proj.weight, 0), fsq_get(a.self_attn.k_proj.weight, 0));
  fsq_params_destroy(q);
  q = fsq_params_create();
  CU_ASSERT_EQUAL_FATAL(fsq_nn_encoder_layer_build(&b, q, "encoder.layers.0", &cfg, 43), FSQ_OK);
  CU_ASSERT_NOT_EQUAL(fsq_get(a.self_attn.q_proj.weight, 0), fsq_get(b.self_attn.q_proj.weight, 0));
  fsq_params_destroy(p);
  fsq_params_destroy(q);
}

static void test_embedding_init_is_normal_with_zero_padding_row(void) {
  fsq_params *p = fsq_params_create();
  fsq_nn_embedding e;
  CU_ASSERT_EQUAL_FATAL(fsq_nn_embedding_build(&e, p, "encoder.embed_tokens", 1000, 64, 1, 7),
                        FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL(fsq_params_find(p, "encoder.embed_tokens.weight"));
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < 1000 * 64; i++) {
    double v = fsq_get(e.weight, i);
    if (i / 64 == 1)
      CU_ASSERT_EQUAL(v, 0.0);
    sum += v;
    sq += v * v;
  }
  double n = 999 * 64, mean = sum / n, std = sqrt(sq / n - mean * mean);
  CU_ASSERT(fabs(mean) < 0.01 * 0.125 * 10);
  CU_ASSERT(fabs(std - 0.125) < 0.02 * 0.125); /* 64^-0.5 */
  fsq_params_destroy(p);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_linear_matches_torch),
      FSQ_TEST_CASE(test_embedding_scales_and_skips_padding_gradient),
      FSQ_TEST_CASE(test_sinusoidal_positions_follow_fairseq_with_left_padding),
      FSQ_TEST_CASE(test_sinusoidal_far_rows_match_fairseq_float32_table),
      FSQ_TEST_CASE(test_learned_positions_offset_by_padding_idx),
      FSQ_TEST_CASE(test_layer_norm_matches_torch),
      FSQ_TEST_CASE(test_self_attention_with_key_padding_mask_matches_torch),
      FSQ_TEST_CASE(test_self_attention_with_causal_mask_matches_torch),
      FSQ_TEST_CASE(test_encoder_decoder_attention_matches_torch),
      FSQ_TEST_CASE(test_ffn_matches_torch),
      FSQ_TEST_CASE(test_ffn_with_gelu_matches_torch),
      FSQ_TEST_CASE(test_encoder_layer_post_norm_matches_torch),
      FSQ_TEST_CASE(test_encoder_layer_normalize_before_matches_torch),
      FSQ_TEST_CASE(test_decoder_layer_post_norm_matches_torch),
      FSQ_TEST_CASE(test_decoder_layer_normalize_before_matches_torch),
      FSQ_TEST_CASE(test_decoder_layer_with_wider_encoder_matches_torch),
      FSQ_TEST_CASE(test_language_model_decoder_layer_matches_torch),
      FSQ_TEST_CASE(test_incremental_self_attention_equals_causal_attention),
      FSQ_TEST_CASE(test_reordered_cache_equals_recomputing_on_reordered_inputs),
      FSQ_TEST_CASE(test_attention_cache_grows_and_keeps_its_contents),
      FSQ_TEST_CASE(test_incremental_decoder_layer_post_norm_equals_full),
      FSQ_TEST_CASE(test_incremental_decoder_layer_normalize_before_equals_full),
      FSQ_TEST_CASE(test_incremental_language_model_layer_equals_full),
      FSQ_TEST_CASE(test_layer_dropout_is_seeded_and_off_in_eval),
      FSQ_TEST_CASE(test_bad_shapes_are_refused_with_a_message),
      FSQ_TEST_CASE(test_decoder_layer_registers_fairseq_parameter_names),
      FSQ_TEST_CASE(test_initialization_follows_fairseq_and_is_reproducible),
      FSQ_TEST_CASE(test_embedding_init_is_normal_with_zero_padding_row),
      FSQ_TEST_END};
  return fsq_test_main("nn", cases);
}
