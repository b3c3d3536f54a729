/* test_tensor.c: forward values against hand calculations, casts, dropout
 * determinism, parameters and gradient accumulation, views, errors and the
 * arena's reuse. Gradients are checked in test_tensor_grad.c. */
#include "tensor/fsq_tensor.h"
#include "fsq_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CLOSE(a, b, tol) CU_ASSERT(fabs((a) - (b)) <= (tol))

static fsq_tensor *f64(fsq_ctx *ctx, int ndim, const int64_t *shape, const double *v) {
  return fsq_from_data(ctx, FSQ_F64, ndim, shape, v);
}

/* fairseq: eps_i = eps / (V - 1); loss = (1 - eps - eps_i) * nll + eps_i * smooth.
 * Rows 0 and 1: nll = 1 + 2.5 = 3.5, smooth = 6 + 4.5 = 10.5, eps_i = 0.05,
 * loss = 0.85 * 3.5 + 0.05 * 10.5 = 3.5; row 2 is ignore_index. */
static void test_label_smoothed_nll_matches_hand_calculation(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t ls[2] = {3, 3}, ts[1] = {3};
  const double lp[9] = {-1, -2, -3, -0.5, -1.5, -2.5, -7, -8, -9};
  const int64_t tg[3] = {0, 2, 1};
  fsq_tensor *nll;
  fsq_tensor *loss = fsq_label_smoothed_nll(ctx, f64(ctx, 2, ls, lp),
                                            fsq_from_data(ctx, FSQ_I64, 1, ts, tg), 0.1, -100, &nll);
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  CU_ASSERT_EQUAL(loss->ndim, 0);
  /* all three rows count: nll = 1 + 2.5 + 8, smooth = 6 + 4.5 + 24 */
  CLOSE(fsq_get(nll, 0), 11.5, 1e-12);
  CLOSE(fsq_get(loss, 0), 0.85 * 11.5 + 0.05 * 34.5, 1e-12);
  fsq_ctx_destroy(ctx);

  ctx = fsq_ctx_create(0);
  const int64_t tg2[3] = {0, 2, -100};
  loss = fsq_label_smoothed_nll(ctx, f64(ctx, 2, ls, lp), fsq_from_data(ctx, FSQ_I64, 1, ts, tg2),
                                0.1, -100, &nll);
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  CLOSE(fsq_get(nll, 0), 3.5, 1e-12);
  CLOSE(fsq_get(loss, 0), 0.85 * 3.5 + 0.05 * 10.5, 1e-12);
  fsq_ctx_destroy(ctx);
}

/* logits [1, 2, 3] with target 2: nll = log(e + e^2 + e^3) - 3. */
static void test_cross_entropy_without_smoothing_is_nll(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t ls[2] = {1, 3}, ts[1] = {1};
  const double z[3] = {1, 2, 3};
  const int64_t tg[1] = {2};
  fsq_tensor *nll;
  fsq_tensor *loss = fsq_cross_entropy(ctx, f64(ctx, 2, ls, z),
                                       fsq_from_data(ctx, FSQ_I64, 1, ts, tg), 0.0, -100, &nll);
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  double want = log(exp(1) + exp(2) + exp(3)) - 3;
  CLOSE(fsq_get(loss, 0), want, 1e-12);
  CLOSE(fsq_get(nll, 0), want, 1e-12);
  fsq_ctx_destroy(ctx);
}

static void test_layer_norm_normalizes_rows(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[2] = {1, 4}, c[1] = {4};
  const double x[4] = {1, 2, 3, 4}, w[4] = {1, 2, 1, 1}, b[4] = {0, 0, 0, 10};
  fsq_tensor *y = fsq_layer_norm(ctx, f64(ctx, 2, s, x), f64(ctx, 1, c, w), f64(ctx, 1, c, b), 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  double sd = sqrt(1.25);
  CLOSE(fsq_get(y, 0), -1.5 / sd, 1e-12);
  CLOSE(fsq_get(y, 1), 2 * -0.5 / sd, 1e-12);
  CLOSE(fsq_get(y, 2), 0.5 / sd, 1e-12);
  CLOSE(fsq_get(y, 3), 1.5 / sd + 10, 1e-12);
  fsq_ctx_destroy(ctx);
}

/* [B=1, H=1, T=2, S=3] scores of zero. Causal with S - T = 1 cached keys
 * (incremental decoding): query 0 sees keys 0..1, query 1 sees keys 0..2. */
static void test_softmax_applies_causal_and_padding_masks(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[3] = {1, 2, 3}, ms[2] = {1, 3};
  const double x[6] = {0, 0, 0, 0, 0, 0};
  const uint8_t none[3] = {0, 0, 0}, pad1[3] = {0, 1, 0};
  fsq_tensor *y = fsq_softmax_masked(ctx, f64(ctx, 3, s, x), fsq_from_data(ctx, FSQ_U8, 2, ms, none), 1, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  const double want[6] = {0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  for (int i = 0; i < 6; i++) CLOSE(fsq_get(y, i), want[i], 1e-15);
  /* no causal mask, key 1 padded: both rows spread over keys 0 and 2 */
  const int64_t s2[3] = {1, 2, 3};
  fsq_tensor *z = fsq_softmax_masked(ctx, f64(ctx, 3, s2, x), fsq_from_data(ctx, FSQ_U8, 2, ms, pad1), 0, 0);
  const double want2[6] = {0.5, 0, 0.5, 0.5, 0, 0.5};
  for (int i = 0; i < 6; i++) CLOSE(fsq_get(z, i), want2[i], 1e-15);
  /* T == S: the usual lower triangle */
  const int64_t sq[3] = {1, 3, 3}, ms3[2] = {1, 3};
  const double x9[9] = {0};
  fsq_tensor *q = fsq_softmax_masked(ctx, f64(ctx, 3, sq, x9), fsq_from_data(ctx, FSQ_U8, 2, ms3, none), 1, 0);
  const double want3[9] = {1, 0, 0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3};
  for (int i = 0; i < 9; i++) CLOSE(fsq_get(q, i), want3[i], 1e-15);
  const double x3[6] = {1, 2, 3, 0, 0, 0};
  fsq_tensor *l = fsq_log_softmax(ctx, f64(ctx, 3, s, x3));
  CLOSE(fsq_get(l, 2), 3 - log(exp(1) + exp(2) + exp(3)), 1e-12);
  fsq_ctx_destroy(ctx);
}

static void test_fully_masked_row_gives_zero_weights(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[3] = {2, 1, 2}, ms[2] = {2, 2};
  const double x[4] = {1, 2, 3, 4};
  const uint8_t m[4] = {1, 1, 0, 0};
  fsq_tensor *y = fsq_softmax_masked(ctx, f64(ctx, 3, s, x), fsq_from_data(ctx, FSQ_U8, 2, ms, m), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_EQUAL(fsq_get(y, 0), 0.0);
  CU_ASSERT_EQUAL(fsq_get(y, 1), 0.0);
  CLOSE(fsq_get(y, 2) + fsq_get(y, 3), 1.0, 1e-15);
  fsq_ctx_destroy(ctx);
}

/* x: [T=3, B=1, Cin=1] = 1, 2, 3; w: [K=2, 1, 1] = 10, 1; pad 1:
 * out[t] = sum_k x[t + k - 1] w[k] + 0.5 -> 1, 12, 23, 30 (plus bias). */
static void test_conv_tbc_matches_hand_calculation(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t xs[3] = {3, 1, 1}, ws[3] = {2, 1, 1}, bs[1] = {1};
  const double x[3] = {1, 2, 3}, w[2] = {10, 1}, b[1] = {0.5};
  fsq_tensor *y = fsq_conv_tbc(ctx, f64(ctx, 3, xs, x), f64(ctx, 3, ws, w), f64(ctx, 1, bs, b), 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_EQUAL(y->shape[0], 4);
  const double want[4] = {1.5, 12.5, 23.5, 30.5};
  for (int i = 0; i < 4; i++) CLOSE(fsq_get(y, i), want[i], 1e-12);
  fsq_ctx_destroy(ctx);
}

static void test_matmul_matches_hand_calculation(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t as[2] = {2, 3}, bs[2] = {2, 3};
  const double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, -1, 2, 1, 0};
  /* a b^T: [[1*1 + 3*-1, 1*2 + 2*1], [4 - 6, 8 + 5]] */
  fsq_tensor *y = fsq_matmul(ctx, f64(ctx, 2, as, a), f64(ctx, 2, bs, b), 0, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  const double want[4] = {-2, 4, -2, 13};
  for (int i = 0; i < 4; i++) CLOSE(fsq_get(y, i), want[i], 1e-12);
  fsq_ctx_destroy(ctx);
}

static void test_gelu_forms_match_known_values(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[1] = {2};
  const double x[2] = {1.0, -0.5};
  fsq_tensor *e = fsq_gelu(ctx, f64(ctx, 1, s, x)), *t = fsq_gelu_tanh(ctx, f64(ctx, 1, s, x));
  CLOSE(fsq_get(e, 0), 0.5 * (1 + erf(1 / sqrt(2))), 1e-15);
  CLOSE(fsq_get(e, 0), 0.8413447460685429, 1e-12);
  CLOSE(fsq_get(t, 0), 0.8411919906082768, 1e-12);
  CLOSE(fsq_get(e, 1), -0.15426876936299347, 1e-12);
  fsq_ctx_destroy(ctx);
}

static uint16_t cast_one(fsq_ctx *ctx, double v, fsq_dtype t) {
  const int64_t s[1] = {1};
  float f = (float)v;
  fsq_tensor *y = fsq_cast(ctx, fsq_from_data(ctx, FSQ_F32, 1, s, &f), t);
  return y ? *(uint16_t *)y->data : 0xdead;
}

static void test_half_casts_round_to_nearest_even(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0, FSQ_F16), 0x3c00);
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0 + ldexp(1, -11), FSQ_F16), 0x3c00);     /* tie -> even */
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0 + 3 * ldexp(1, -11), FSQ_F16), 0x3c02); /* tie -> even up */
  CU_ASSERT_EQUAL(cast_one(ctx, -2.0, FSQ_F16), 0xc000);
  CU_ASSERT_EQUAL(cast_one(ctx, 65504, FSQ_F16), 0x7bff);
  CU_ASSERT_EQUAL(cast_one(ctx, 65519, FSQ_F16), 0x7bff);
  CU_ASSERT_EQUAL(cast_one(ctx, 65520, FSQ_F16), 0x7c00); /* overflow -> inf */
  CU_ASSERT_EQUAL(cast_one(ctx, ldexp(1, -24), FSQ_F16), 0x0001);
  CU_ASSERT_EQUAL(cast_one(ctx, ldexp(1, -25), FSQ_F16), 0x0000);     /* tie -> even (0) */
  CU_ASSERT_EQUAL(cast_one(ctx, 3 * ldexp(1, -25), FSQ_F16), 0x0002); /* tie -> even (2) */
  CU_ASSERT_EQUAL(cast_one(ctx, ldexp(1, -14), FSQ_F16), 0x0400);
  CU_ASSERT_EQUAL(cast_one(ctx, INFINITY, FSQ_F16), 0x7c00);
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0, FSQ_BF16), 0x3f80);
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0 + ldexp(1, -8), FSQ_BF16), 0x3f80);     /* tie -> even */
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0 + 3 * ldexp(1, -8), FSQ_BF16), 0x3f82); /* tie -> even up */
  CU_ASSERT_EQUAL(cast_one(ctx, 1.0 + 5 * ldexp(1, -9), FSQ_BF16), 0x3f81); /* above the tie */
  CU_ASSERT(isnan(fsq_f16_to_f32(cast_one(ctx, NAN, FSQ_F16))));
  CU_ASSERT(isnan(fsq_bf16_to_f32(cast_one(ctx, NAN, FSQ_BF16))));
  /* every f16 survives the round trip through f32 */
  for (uint32_t h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads */
    if (fsq_f32_to_f16(fsq_f16_to_f32((uint16_t)h)) != h) {
      CU_FAIL("f16 round trip");
      break;
    }
  }
  /* the other storage dtypes: i64 -> i32 -> f32 */
  const int64_t s[1] = {3};
  const int64_t iv[3] = {-5, 0, 70000};
  fsq_tensor *f = fsq_cast(ctx, fsq_cast(ctx, fsq_from_data(ctx, FSQ_I64, 1, s, iv), FSQ_I32), FSQ_F32);
  CU_ASSERT_EQUAL(fsq_get(f, 0), -5.0);
  CU_ASSERT_EQUAL(fsq_get(f, 2), 70000.0);
  fsq_ctx_destroy(ctx);
}

/* The dropout mask of a call is a function of (seed, step, call index). */
static double *dropout_run(int threads, uint64_t seed, int64_t n) {
#ifdef _OPENMP
  int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_ctx_set_seed(ctx, seed, 11);
  const int64_t s[1] = {n};
  fsq_tensor *x = fsq_full(ctx, FSQ_F32, 1, s, 1.0);
  fsq_tensor *y = fsq_dropout(ctx, fsq_dropout(ctx, x, 0.25), 0.1);
  double *out = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) out[i] = fsq_get(y, i);
  fsq_ctx_destroy(ctx);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
  return out;
}

static void test_dropout_mask_is_same_for_any_thread_count(void) {
  const int64_t n = 200003;
  double *a = dropout_run(1, 42, n), *b = dropout_run(2, 42, n), *c = dropout_run(2, 43, n);
  CU_ASSERT(memcmp(a, b, (size_t)n * sizeof(double)) == 0);
  CU_ASSERT(memcmp(a, c, (size_t)n * sizeof(double)) != 0);
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++) {
    if (a[i] != 0) {
      kept++;
      CLOSE(a[i], 1.0 / (0.75 * 0.9), 1e-6);
    }
  }
  double rate = (double)kept / (double)n;
  CU_ASSERT(fabs(rate - 0.75 * 0.9) < 0.005);
  free(a);
  free(b);
  free(c);
}

/* Element i is kept when fsq_rng_u32_at(seed, stream, i) >> 8 >= p * 2^24,
 * the stream being (step << 20) | call index. */
static void test_dropout_mask_comes_from_philox_positions(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_ctx_set_seed(ctx, 77, 5);
  const int64_t s[1] = {1001};
  fsq_tensor *x = fsq_full(ctx, FSQ_F64, 1, s, 1.0);
  fsq_dropout(ctx, x, 0.5); /* call 0 */
  fsq_tensor *y = fsq_dropout(ctx, x, 0.3); /* call 1 */
  uint64_t stream = (5u << 20) | 1u;
  uint32_t thresh = (uint32_t)(0.3 * 16777216.0);
  int mismatches = 0;
  for (int64_t i = 0; i < s[0]; i++) {
    int keep = (fsq_rng_u32_at(77, stream, (uint64_t)i) >> 8) >= thresh;
    if ((fsq_get(y, i) != 0) != keep) mismatches++;
  }
  CU_ASSERT_EQUAL(mismatches, 0);
  fsq_ctx_destroy(ctx);
}

/* The f32 kernels use inline exp/tanh/erf; compare them with libm in f64. */
static void test_f32_transcendentals_are_accurate(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t n = 40001, s[1] = {40001};
  fsq_tensor *x = fsq_empty(ctx, FSQ_F32, 1, s);
  float *xv = x->data;
  for (int64_t i = 0; i < n; i++) xv[i] = (float)(-20.0 + 40.0 * (double)i / (double)(n - 1));
  fsq_tensor *e = fsq_exp(ctx, x), *t = fsq_tanh(ctx, x), *g = fsq_gelu(ctx, x);
  fsq_tensor *sg = fsq_sigmoid(ctx, x);
  double worst_e = 0, worst_t = 0, worst_g = 0, worst_s = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = xv[i];
    worst_e = fmax(worst_e, fabs(fsq_get(e, i) - exp(v)) / exp(v));
    worst_t = fmax(worst_t, fabs(fsq_get(t, i) - tanh(v)));
    worst_g = fmax(worst_g, fabs(fsq_get(g, i) - 0.5 * v * (1 + erf(v / sqrt(2)))) / (1 + fabs(v)));
    worst_s = fmax(worst_s, fabs(fsq_get(sg, i) - 1 / (1 + exp(-v))));
  }
  CU_ASSERT(worst_e < 4e-7);
  CU_ASSERT(worst_t < 3e-7);
  CU_ASSERT(worst_g < 3e-7);
  CU_ASSERT(worst_s < 3e-7);
  const int64_t one[1] = {1};
  float nan_in = NAN;
  CU_ASSERT(isnan(fsq_get(fsq_exp(ctx, fsq_from_data(ctx, FSQ_F32, 1, one, &nan_in)), 0)));
  fsq_ctx_destroy(ctx);
}

/* fsq_dropout_add is fsq_add(residual, fsq_dropout(x)) bit for bit: the
 * same mask stream, the same float operations. */
static void test_dropout_add_equals_add_of_dropout(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[2] = {37, 129};
  fsq_tensor *r = fsq_empty(ctx, FSQ_F32, 2, s), *x = fsq_empty(ctx, FSQ_F32, 2, s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  for (int64_t i = 0; i < 37 * 129; i++) {
    ((float *)r->data)[i] = (float)sin((double)i);
    ((float *)x->data)[i] = (float)cos(0.3 * (double)i);
  }
  fsq_ctx_set_seed(ctx, 5, 11);
  fsq_tensor *a = fsq_add(ctx, r, fsq_dropout(ctx, x, 0.25));
  fsq_ctx_set_seed(ctx, 5, 11);
  fsq_tensor *b = fsq_dropout_add(ctx, r, x, 0.25);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  CU_ASSERT_EQUAL(memcmp(a->data, b->data, 37 * 129 * sizeof(float)), 0);
  fsq_ctx_set_training(ctx, 0); /* eval: the plain sum */
  fsq_tensor *c = fsq_dropout_add(ctx, r, x, 0.25);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_EQUAL(((float *)c->data)[5], ((float *)r->data)[5] + ((float *)x->data)[5]);
  CU_ASSERT_PTR_NULL(fsq_dropout_add(ctx, r, x, 1.0));
  fsq_ctx_destroy(ctx);
}

/* One step of loss = sum((r + dropout(h))^2) with h = x @ w a body output,
 * the sum by fsq_dropout_add_inplace (inplace) or fsq_dropout_add; with
 * reader, a later backward (relu's) reads h too. The sum, w's and r's
 * gradients go to y, gw, gr; returns 1 when the sum took h's storage. */
static int dropout_add_step(int inplace, int reader, float *y, float *gw, float *gr) {
  enum { N = 33, K = 9, C = 17 };
  const int64_t xs[2] = {N, K}, ws[2] = {K, C}, rs[2] = {N, C};
  float xv[N * K], wv[K * C], rv[N * C];
  for (int i = 0; i < N * K; i++) xv[i] = (float)sin(0.7 * i);
  for (int i = 0; i < K * C; i++) wv[i] = (float)cos(0.3 * i);
  for (int i = 0; i < N * C; i++) rv[i] = (float)sin(1.1 * i + 0.5);
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *w = fsq_from_data(ctx, FSQ_F32, 2, ws, wv), *r = fsq_from_data(ctx, FSQ_F32, 2, rs, rv);
  fsq_requires_grad(w);
  fsq_requires_grad(r);
  fsq_ctx_set_seed(ctx, 5, 11);
  fsq_tensor *h = fsq_matmul(ctx, fsq_from_data(ctx, FSQ_F32, 2, xs, xv), w, 0, 0);
  fsq_tensor *extra = reader ? fsq_sum_all(ctx, fsq_relu(ctx, h)) : NULL;
  fsq_tensor *sum = inplace ? fsq_dropout_add_inplace(ctx, r, h, 0.25) : fsq_dropout_add(ctx, r, h, 0.25);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
  int took = sum->data == h->data;
  memcpy(y, sum->data, (size_t)(N * C) * sizeof(float));
  fsq_tensor *loss = fsq_sum_all(ctx, fsq_mul(ctx, sum, sum));
  if (extra) loss = fsq_add(ctx, loss, extra);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  memcpy(gw, w->grad->data, (size_t)(K * C) * sizeof(float));
  memcpy(gr, r->grad->data, (size_t)(N * C) * sizeof(float));
  fsq_ctx_destroy(ctx);
  return took;
}

/* fsq_dropout_add_inplace writes the sum over a body output no backward
 * reads, with the bits of fsq_dropout_add (sum and gradients); an output a
 * backward reads, or a leaf, keeps its values. */
static void test_dropout_add_inplace_takes_only_dead_storage(void) {
  float y[3][33 * 17], gw[3][9 * 17], gr[3][33 * 17];
  CU_ASSERT_FALSE(dropout_add_step(0, 0, y[0], gw[0], gr[0]));
  CU_ASSERT_TRUE(dropout_add_step(1, 0, y[1], gw[1], gr[1]));
  CU_ASSERT_FALSE(dropout_add_step(1, 1, y[2], gw[2], gr[2])); /* h read by relu's backward */
  for (int k = 1; k < 3; k++) {
    CU_ASSERT_EQUAL(memcmp(y[0], y[k], sizeof y[0]), 0);
    CU_ASSERT_EQUAL(memcmp(gr[0], gr[k], sizeof gr[0]), 0);
  }
  CU_ASSERT_EQUAL(memcmp(gw[0], gw[1], sizeof gw[0]), 0);
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[1] = {4};
  const float v[4] = {1, 2, 3, 4};
  fsq_tensor *leaf = fsq_from_data(ctx, FSQ_F32, 1, s, v);
  fsq_requires_grad(leaf);
  fsq_tensor *sum = fsq_dropout_add_inplace(ctx, fsq_full(ctx, FSQ_F32, 1, s, 1.0), leaf, 0.25);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
  CU_ASSERT_PTR_NOT_EQUAL(sum->data, leaf->data);
  CU_ASSERT_EQUAL(memcmp(leaf->data, v, sizeof v), 0);
  fsq_ctx_destroy(ctx);
}

static void test_dropout_is_identity_when_not_training(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[1] = {5};
  fsq_tensor *x = fsq_full(ctx, FSQ_F32, 1, s, 2.0);
  fsq_ctx_set_training(ctx, 0);
  CU_ASSERT_PTR_EQUAL(fsq_dropout(ctx, x, 0.5), x);
  fsq_ctx_destroy(ctx);
}

/* A weight used twice gets both contributions, and a second backward adds
 * to the first until zero_grad. */
static void test_gradients_accumulate_for_shared_weights(void) {
  fsq_params *p = fsq_params_create();
  const int64_t s[1] = {3};
  fsq_tensor *w = fsq_params_add(p, "decoder.embed_tokens.weight", FSQ_F64, 1, s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  CU_ASSERT_PTR_NULL(fsq_params_add(p, "decoder.embed_tokens.weight", FSQ_F64, 1, s));
  CU_ASSERT_PTR_EQUAL(fsq_params_find(p, "decoder.embed_tokens.weight"), w);
  CU_ASSERT_STRING_EQUAL(fsq_params_at(p, 0)->name, "decoder.embed_tokens.weight");
  double *wv = w->data;
  wv[0] = 1;
  wv[1] = 2;
  wv[2] = 3;
  fsq_ctx *ctx = fsq_ctx_create(0);
  for (int step = 0; step < 2; step++) {
    fsq_ctx_reset(ctx);
    /* loss = sum(w * w) + sum(3 w): d/dw = 2w + 3 */
    fsq_tensor *loss = fsq_add(ctx, fsq_sum_all(ctx, fsq_mul(ctx, w, w)),
                               fsq_sum_all(ctx, fsq_scale(ctx, w, 3)));
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  }
  const double *g = w->grad->data;
  for (int i = 0; i < 3; i++) CLOSE(g[i], 2 * (2 * wv[i] + 3), 1e-12);
  fsq_params_zero_grad(p);
  CU_ASSERT_EQUAL(g[1], 0.0);
  /* a buffer (optimizer state) has no gradient and stops nothing */
  fsq_tensor *m = fsq_params_add_buffer(p, "optimizer.exp_avg.0", FSQ_F32, 1, s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_FALSE(m->requires_grad);
  CU_ASSERT_PTR_NULL(m->grad);
  CU_ASSERT_EQUAL(fsq_params_count(p), 2);
  fsq_params_zero_grad(p);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

/* The grad-ready hook (fsq_ctx_set_grad_ready_hook): one call per leaf on
 * the tape, once its gradient is final, in the order backward finishes them. */
struct ready_log {
  fsq_tensor *leaf[8];
  double grad0[8]; /* the leaf's first gradient value when the hook ran */
  int n;
  int fail_at; /* return an error on this call (-1: never) */
};

static fsq_status record_ready(fsq_tensor *leaf, void *user) {
  struct ready_log *log = user;
  if (log->n == log->fail_at) return fsq_error(FSQ_ERR_IO, "hook failed on purpose");
  if (log->n < 8) {
    log->leaf[log->n] = leaf;
    log->grad0[log->n] = ((const double *)leaf->grad->data)[0];
  }
  log->n++;
  return FSQ_OK;
}

static void test_grad_ready_hook_fires_once_per_leaf_when_final(void) {
  fsq_params *p = fsq_params_create();
  const int64_t s[1] = {3};
  fsq_tensor *a = fsq_params_add(p, "a", FSQ_F64, 1, s);
  fsq_tensor *b = fsq_params_add(p, "b", FSQ_F64, 1, s);
  fsq_tensor *c = fsq_params_add(p, "c", FSQ_F64, 1, s);
  fsq_tensor *unused = fsq_params_add(p, "unused", FSQ_F64, 1, s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(unused);
  for (int i = 0; i < 3; i++) {
    ((double *)a->data)[i] = 1 + i;
    ((double *)b->data)[i] = 0.5 * i;
    ((double *)c->data)[i] = -1;
  }
  fsq_ctx *ctx = fsq_ctx_create(0);
  struct ready_log log = {.fail_at = -1};
  fsq_ctx_set_grad_ready_hook(ctx, record_ready, &log);
  /* a is used by the first op and again by the last: its gradient is final
   * only after the first op's backward, so it comes after b. c feeds an op
   * off the loss path: final at once (zero). */
  fsq_tensor *h = fsq_mul(ctx, a, a);
  fsq_tensor *off = fsq_scale(ctx, c, 2);
  fsq_tensor *loss = fsq_add(ctx, fsq_sum_all(ctx, fsq_mul(ctx, h, b)),
                             fsq_sum_all(ctx, fsq_scale(ctx, a, 3)));
  CU_ASSERT_PTR_NOT_NULL_FATAL(off);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(log.n, 3);
  CU_ASSERT_PTR_EQUAL(log.leaf[0], b);
  CU_ASSERT_PTR_EQUAL(log.leaf[1], c);
  CU_ASSERT_PTR_EQUAL(log.leaf[2], a);
  for (int k = 0; k < 3; k++) /* the value seen by the hook is the final one */
    CU_ASSERT_EQUAL(log.grad0[k], ((const double *)log.leaf[k]->grad->data)[0]);
  CLOSE(((const double *)a->grad->data)[0], 2 * 1 * 0.0 + 3, 1e-12); /* 2 a b + 3 */
  CLOSE(((const double *)a->grad->data)[2], 2 * 3 * 1.0 + 3, 1e-12);
  CLOSE(((const double *)b->grad->data)[1], 4, 1e-12); /* a^2 */
  CU_ASSERT_EQUAL(((const double *)c->grad->data)[0], 0.0);

  /* an error from the hook stops backward with it */
  fsq_ctx_reset(ctx);
  log = (struct ready_log){.fail_at = 1};
  loss = fsq_sum_all(ctx, fsq_mul(ctx, fsq_mul(ctx, a, a), b));
  CU_ASSERT_EQUAL(fsq_backward(ctx, loss), FSQ_ERR_IO);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "hook failed on purpose"));
  CU_ASSERT_EQUAL(log.n, 1);

  /* no hook: nothing is called */
  fsq_ctx_reset(ctx);
  fsq_ctx_set_grad_ready_hook(ctx, NULL, NULL);
  log = (struct ready_log){.fail_at = -1};
  CU_ASSERT_EQUAL(fsq_backward(ctx, fsq_sum_all(ctx, fsq_mul(ctx, a, b))), FSQ_OK);
  CU_ASSERT_EQUAL(log.n, 0);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

/* linear -> reshape -> cross_entropy, and its backward; with_reader adds a
 * zero term read from the logits by an op recorded before the loss. Returns
 * whether the logits' memory still holds the logits after backward. */
static int ce_step(fsq_params *p, int with_reader, float *gw, float *gx) {
  enum { N = 12, K = 16, V = 50 };
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *w = fsq_params_find(p, "w");
  const int64_t xs[2] = {N, K}, ts[1] = {N}, rs[2] = {-1, V};
  float xv[N * K];
  int64_t tv[N];
  for (int i = 0; i < N * K; i++) xv[i] = (float)sin(0.7 * i);
  for (int i = 0; i < N; i++) tv[i] = (i * 7) % V;
  fsq_tensor *x = fsq_from_data(ctx, FSQ_F32, 2, xs, xv);
  fsq_requires_grad(x);
  fsq_tensor *logits = fsq_linear(ctx, x, w, NULL, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(logits);
  float before[N * V];
  memcpy(before, logits->data, sizeof before);
  fsq_tensor *extra = NULL;
  if (with_reader) {
    fsq_tensor *zero = fsq_zeros(ctx, FSQ_F32, 2, logits->shape);
    extra = fsq_sum_all(ctx, fsq_mul(ctx, logits, zero));
  }
  fsq_tensor *loss = fsq_cross_entropy(ctx, fsq_reshape(ctx, logits, 2, rs),
                                       fsq_from_data(ctx, FSQ_I64, 1, ts, tv), 0.1, 1, NULL);
  if (extra) loss = fsq_add(ctx, loss, extra);
  fsq_params_zero_grad(p);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  memcpy(gw, w->grad->data, (size_t)(V * K) * sizeof(float));
  memcpy(gx, x->grad->data, (size_t)(N * K) * sizeof(float));
  int kept = memcmp(before, logits->data, sizeof before) == 0;
  fsq_ctx_destroy(ctx);
  return kept;
}

/* The logits' gradient goes over the logits when no later backward reads
 * them (one [N, V] buffer less at the peak), and only then; either way the
 * gradients are the same bits. */
static void test_cross_entropy_writes_gradient_over_dead_logits(void) {
  fsq_params *p = fsq_params_create();
  const int64_t ws[2] = {50, 16};
  fsq_tensor *w = fsq_params_add(p, "w", FSQ_F32, 2, ws);
  CU_ASSERT_PTR_NOT_NULL_FATAL(w);
  for (int i = 0; i < 50 * 16; i++) ((float *)w->data)[i] = (float)cos(0.3 * i);
  float gw[2][50 * 16], gx[2][12 * 16];
  CU_ASSERT_FALSE(ce_step(p, 0, gw[0], gx[0])); /* overwritten */
  CU_ASSERT_TRUE(ce_step(p, 1, gw[1], gx[1]));  /* a reader: kept */
  CU_ASSERT_EQUAL(memcmp(gw[0], gw[1], sizeof gw[0]), 0);
  CU_ASSERT_EQUAL(memcmp(gx[0], gx[1], sizeof gx[0]), 0);
  fsq_params_destroy(p);
  /* logits that are an input (a leaf), directly or through a view: never taken */
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t flat[1] = {15}, ls[2] = {3, 5}, ts[1] = {3};
  float lv[15];
  int64_t tv[3] = {0, 4, 2};
  for (int i = 0; i < 15; i++) lv[i] = (float)sin(1.3 * i);
  for (int view = 0; view < 2; view++) {
    fsq_ctx_reset(ctx);
    fsq_tensor *leaf = fsq_from_data(ctx, FSQ_F32, view ? 1 : 2, view ? flat : ls, lv);
    fsq_requires_grad(leaf);
    fsq_tensor *l = view ? fsq_reshape(ctx, leaf, 2, ls) : leaf;
    fsq_tensor *loss = fsq_cross_entropy(ctx, l, fsq_from_data(ctx, FSQ_I64, 1, ts, tv), 0.1,
                                         -100, NULL);
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
    CU_ASSERT_EQUAL(memcmp(leaf->data, lv, sizeof lv), 0);
    CU_ASSERT_PTR_NOT_EQUAL(leaf->grad->data, leaf->data);
  }
  fsq_ctx_destroy(ctx);
}

/* w @ v over heads that are views of v [S, B, H, D] comes out laid out as
 * [T, B, H, D]: merging the heads back is a view of the product, and the
 * values are those of the product over contiguous copies. */
static void test_heads_product_merges_without_copy(void) {
  const int64_t ws[4] = {2, 3, 4, 5}, vs[4] = {5, 2, 3, 6}, merged[3] = {4, 2, 18};
  static const int split[4] = {1, 2, 0, 3}, merge[4] = {2, 0, 1, 3};
  float wv[120], vv[180];
  for (int i = 0; i < 120; i++) wv[i] = (float)sin(0.7 * i);
  for (int i = 0; i < 180; i++) vv[i] = (float)cos(0.3 * i);
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *w = fsq_from_data(ctx, FSQ_F32, 4, ws, wv);
  fsq_tensor *vh = fsq_permute(ctx, fsq_from_data(ctx, FSQ_F32, 4, vs, vv), split);
  fsq_tensor *y = fsq_matmul(ctx, w, vh, 0, 0); /* [B, H, T, D] */
  fsq_tensor *a = fsq_reshape(ctx, fsq_permute(ctx, y, merge), 3, merged);
  fsq_tensor *ref = fsq_matmul(ctx, w, fsq_contiguous(ctx, vh), 0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  CU_ASSERT_PTR_EQUAL(a->data, y->data);
  CU_ASSERT_TRUE(fsq_is_contiguous(ref));
  for (int64_t b = 0; b < 2; b++)
    for (int64_t h = 0; h < 3; h++)
      for (int64_t t = 0; t < 4; t++)
        for (int64_t d = 0; d < 6; d++)
          CU_ASSERT_EQUAL(fsq_get(a, ((t * 2 + b) * 3 + h) * 6 + d),
                          fsq_get(ref, ((b * 3 + h) * 4 + t) * 6 + d));
  fsq_ctx_destroy(ctx);
}

static void test_embedding_gives_no_gradient_to_padding_row(void) {
  fsq_params *p = fsq_params_create();
  const int64_t ws[2] = {4, 2}, is[1] = {5};
  fsq_tensor *w = fsq_params_add(p, "embed.weight", FSQ_F64, 2, ws);
  for (int i = 0; i < 8; i++) ((double *)w->data)[i] = i;
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t idx[5] = {1, 3, 1, 0, 1};
  fsq_tensor *e = fsq_embedding(ctx, w, fsq_from_data(ctx, FSQ_I64, 1, is, idx), 1, 2.0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL(fsq_get(e, 2), 12.0); /* row 3 = {6, 7} scaled by 2 */
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, fsq_sum_all(ctx, e)), FSQ_OK);
  const double *g = w->grad->data;
  const double want[8] = {2, 2, 0, 0, 0, 0, 2, 2};
  for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(g[i], want[i]);
  const int64_t bad[1] = {4};
  const int64_t one[1] = {1};
  CU_ASSERT_PTR_NULL(fsq_embedding(ctx, w, fsq_from_data(ctx, FSQ_I64, 1, one, bad), 1, 1.0));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "outside [0, 4)"));
  const int64_t minus1[1] = {-1};
  CU_ASSERT_PTR_NULL(fsq_embedding(ctx, w, fsq_from_data(ctx, FSQ_I64, 1, one, minus1), -1, 1.0));
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

static void test_views_share_storage(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t s[3] = {2, 3, 4};
  fsq_tensor *x = fsq_zeros(ctx, FSQ_F32, 3, s);
  fsq_tensor *t = fsq_transpose(ctx, x, 0, 2);
  CU_ASSERT_PTR_EQUAL(t->data, x->data);
  CU_ASSERT_FALSE(fsq_is_contiguous(t));
  CU_ASSERT_EQUAL(t->shape[0], 4);
  CU_ASSERT_EQUAL(t->stride[0], 1);
  fsq_tensor *n = fsq_narrow(ctx, x, 1, 1, 2);
  CU_ASSERT_PTR_EQUAL(n->data, (float *)x->data + 4);
  const int64_t flat[2] = {6, -1};
  fsq_tensor *r = fsq_reshape(ctx, x, 2, flat);
  CU_ASSERT_PTR_EQUAL(r->data, x->data);
  CU_ASSERT_EQUAL(r->shape[1], 4);
  fsq_tensor *rc = fsq_reshape(ctx, t, 2, flat); /* not contiguous: copies */
  CU_ASSERT_PTR_NOT_EQUAL(rc->data, x->data);
  ((float *)x->data)[5] = 7; /* x[0][1][1] is t[1][1][0] */
  CU_ASSERT_EQUAL(fsq_get(t, 1 * 6 + 1 * 2 + 0), 7.0);
  fsq_ctx_destroy(ctx);
}

static void test_failed_op_returns_null_and_chains(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t a[2] = {2, 3}, b[2] = {4, 5};
  fsq_tensor *x = fsq_zeros(ctx, FSQ_F32, 2, a), *y = fsq_zeros(ctx, FSQ_F32, 2, b);
  fsq_tensor *z = fsq_add(ctx, x, y);
  CU_ASSERT_PTR_NULL(z);
  CU_ASSERT_EQUAL(fsq_ctx_status(ctx), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "do not broadcast"));
  CU_ASSERT_PTR_NULL(fsq_relu(ctx, fsq_matmul(ctx, z, x, 0, 0)));
  CU_ASSERT_PTR_NULL(fsq_matmul(ctx, x, x, 0, 0)); /* 3 vs 2 inner sizes */
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "matmul"));
  CU_ASSERT_NOT_EQUAL(fsq_backward(ctx, x), FSQ_OK);
  fsq_ctx_reset(ctx);
  CU_ASSERT_EQUAL(fsq_ctx_status(ctx), FSQ_OK);
  const int64_t is[1] = {1};
  const int64_t idx[1] = {0};
  fsq_tensor *i64 = fsq_from_data(ctx, FSQ_I64, 1, is, idx);
  CU_ASSERT_PTR_NULL(fsq_relu(ctx, i64));
  CU_ASSERT_EQUAL(fsq_ctx_status(ctx), FSQ_ERR_UNSUPPORTED);
  fsq_ctx_destroy(ctx);
}

static void test_no_grad_mode_records_nothing(void) {
  fsq_params *p = fsq_params_create();
  const int64_t s[1] = {4};
  fsq_tensor *w = fsq_params_add(p, "w", FSQ_F32, 1, s);
  fsq_ctx *ctx = fsq_ctx_create(0);
  CU_ASSERT_EQUAL(fsq_ctx_set_grad(ctx, 0), 1);
  fsq_tensor *y = fsq_tanh(ctx, w);
  CU_ASSERT_FALSE(y->requires_grad);
  CU_ASSERT_PTR_NULL(y->node);
  CU_ASSERT_NOT_EQUAL(fsq_backward(ctx, fsq_sum_all(ctx, y)), FSQ_OK);
  fsq_ctx_set_grad(ctx, 1);
  CU_ASSERT_TRUE(fsq_tanh(ctx, w)->requires_grad);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

/* After one step has sized the arena, the same step allocates nothing new. */
static void test_arena_is_reused_across_steps(void) {
  fsq_params *p = fsq_params_create();
  const int64_t ws[2] = {64, 32}, xs[2] = {16, 32};
  fsq_tensor *w = fsq_params_add(p, "w", FSQ_F32, 2, ws);
  fsq_ctx *ctx = fsq_ctx_create(1 << 16);
  size_t reserved = 0;
  for (int step = 0; step < 3; step++) {
    fsq_ctx_reset(ctx);
    fsq_tensor *x = fsq_full(ctx, FSQ_F32, 2, xs, 0.5);
    fsq_tensor *h = fsq_gelu(ctx, fsq_matmul(ctx, x, w, 0, 1));
    fsq_tensor *l = fsq_sum_all(ctx, fsq_layer_norm(ctx, h, NULL, NULL, 1e-5));
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, l), FSQ_OK);
    if (step == 1) reserved = fsq_arena_reserved(fsq_ctx_arena(ctx));
    if (step == 2) CU_ASSERT_EQUAL(fsq_arena_reserved(fsq_ctx_arena(ctx)), reserved);
  }
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

/* Big enough that the threaded and vectorized paths run; checked against
 * plain loops. */
static void test_large_ops_agree_with_reference_loops(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t rows = 300, c = 515, s[2] = {rows, c}, cs[1] = {c};
  fsq_rng rng = fsq_rng_make(3, 3);
  float *xv = malloc((size_t)(rows * c) * sizeof(float)), *bv = malloc((size_t)c * sizeof(float));
  for (int64_t i = 0; i < rows * c; i++) xv[i] = fsq_rng_uniform(&rng) * 4 - 2;
  for (int64_t i = 0; i < c; i++) bv[i] = fsq_rng_uniform(&rng);
  fsq_tensor *x = fsq_from_data(ctx, FSQ_F32, 2, s, xv), *b = fsq_from_data(ctx, FSQ_F32, 1, cs, bv);
  fsq_tensor *sm = fsq_softmax(ctx, x), *ln = fsq_layer_norm(ctx, x, NULL, b, 1e-5);
  fsq_tensor *ad = fsq_bias_add(ctx, x, b), *sum0 = fsq_sum(ctx, x, 0, 0);
  double worst = 0;
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = xv + r * c;
    double mx = -1e30, z = 0, m = 0, v = 0;
    for (int64_t j = 0; j < c; j++) mx = xr[j] > mx ? xr[j] : mx;
    for (int64_t j = 0; j < c; j++) z += exp(xr[j] - mx);
    for (int64_t j = 0; j < c; j++) m += xr[j];
    m /= c;
    for (int64_t j = 0; j < c; j++) v += (xr[j] - m) * (xr[j] - m);
    v /= c;
    for (int64_t j = 0; j < c; j++) {
      double e1 = fabs(fsq_get(sm, r * c + j) - exp(xr[j] - mx) / z);
      double e2 = fabs(fsq_get(ln, r * c + j) - ((xr[j] - m) / sqrt(v + 1e-5) + bv[j]));
      double e3 = fabs(fsq_get(ad, r * c + j) - (xr[j] + bv[j]));
      worst = fmax(worst, fmax(e1, fmax(e2, e3)));
    }
  }
  for (int64_t j = 0; j < c; j++) {
    double acc = 0;
    for (int64_t r = 0; r < rows; r++) acc += xv[r * c + j];
    worst = fmax(worst, fabs(fsq_get(sum0, j) - acc) / 100);
  }
  CU_ASSERT(worst < 1e-4);
  free(xv);
  free(bv);
  fsq_ctx_destroy(ctx);
}

/* fsq_cross_entropy is fused; at a vocabulary's size (vectorized, threaded
 * f32 paths) it agrees with log_softmax then label_smoothed_nll, in loss,
 * nll and the logits' gradient. */
static void test_large_cross_entropy_matches_log_softmax_then_nll(void) {
  const int64_t n = 64, v = 1003, s[2] = {n, v}, ts[1] = {n};
  fsq_params *p = fsq_params_create();
  fsq_tensor *w = fsq_params_add(p, "w", FSQ_F32, 2, s);
  int64_t tg[64];
  fsq_rng rng = fsq_rng_make(5, 1);
  for (int64_t i = 0; i < n * v; i++) ((float *)w->data)[i] = fsq_rng_uniform(&rng) * 8 - 4;
  for (int64_t i = 0; i < n; i++) tg[i] = i % 9 == 4 ? 1 : (int64_t)(fsq_rng_uniform(&rng) * v) % v;
  double loss[2], nll[2];
  float *grad[2];
  for (int fused = 0; fused < 2; fused++) {
    fsq_ctx *ctx = fsq_ctx_create(0);
    fsq_tensor *t = fsq_from_data(ctx, FSQ_I64, 1, ts, tg), *nl;
    fsq_tensor *l = fused ? fsq_cross_entropy(ctx, w, t, 0.1, 1, &nl)
                          : fsq_label_smoothed_nll(ctx, fsq_log_softmax(ctx, w), t, 0.1, 1, &nl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    loss[fused] = fsq_get(l, 0);
    nll[fused] = fsq_get(nl, 0);
    CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, fsq_add(ctx, l, fsq_scale(ctx, nl, 0.5))), FSQ_OK);
    grad[fused] = malloc((size_t)(n * v) * sizeof(float));
    memcpy(grad[fused], w->grad->data, (size_t)(n * v) * sizeof(float));
    fsq_params_zero_grad(p);
    fsq_ctx_destroy(ctx);
  }
  CU_ASSERT(fabs(loss[1] - loss[0]) < 1e-5 * fabs(loss[0]));
  CU_ASSERT(fabs(nll[1] - nll[0]) < 1e-5 * fabs(nll[0]));
  double worst = 0;
  for (int64_t i = 0; i < n * v; i++) worst = fmax(worst, fabs((double)grad[1][i] - grad[0][i]));
  CU_ASSERT(worst < 1e-6);
  free(grad[0]);
  free(grad[1]);
  fsq_params_destroy(p);
}

/* Decoding's log_softmax over its own step output: the same bits as the
 * op that writes a new tensor, at a vocabulary's size (vectorized and
 * threaded f32 rows) and through the 16-bit path; refused where the
 * overwrite could break a backward or a view. */
static void test_log_softmax_in_place_equals_out_of_place(void) {
  const int64_t n = 40, v = 12704, s[2] = {n, v};
  const fsq_dtype types[2] = {FSQ_F32, FSQ_BF16};
  for (int d = 0; d < 2; d++) {
    fsq_ctx *ctx = fsq_ctx_create(0);
    fsq_ctx_set_grad(ctx, 0);
    fsq_tensor *x = fsq_empty(ctx, FSQ_F32, 2, s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    fsq_rng rng = fsq_rng_make(11, (uint64_t)d);
    for (int64_t i = 0; i < n * v; i++) ((float *)x->data)[i] = fsq_rng_uniform(&rng) * 30 - 15;
    x = fsq_cast(ctx, x, types[d]);
    fsq_tensor *want = fsq_log_softmax(ctx, x);
    fsq_tensor *got = fsq_log_softmax_in_place(ctx, x);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    CU_ASSERT_PTR_EQUAL_FATAL(got, x);
    size_t bytes = (size_t)(n * v) * fsq_dtype_size(types[d]);
    CU_ASSERT_EQUAL(memcmp(got->data, want->data, bytes), 0);
    CU_ASSERT_PTR_NULL(fsq_log_softmax_in_place(ctx, fsq_transpose(ctx, x, 0, 1)));
    fsq_ctx_destroy(ctx);
  }
  fsq_ctx *ctx = fsq_ctx_create(0); /* grad mode on: refused */
  const double x2[2] = {1, 2};
  const int64_t s2[1] = {2};
  CU_ASSERT_PTR_NULL(fsq_log_softmax_in_place(ctx, f64(ctx, 1, s2, x2)));
  CU_ASSERT_EQUAL(fsq_ctx_status(ctx), FSQ_ERR_INVALID);
  fsq_ctx_destroy(ctx);
}

/* Many small products (attention's heads) run one per thread, read from a
 * permuted view in place; each agrees with the same product done alone. */
static void test_large_batched_matmul_matches_per_batch_products(void) {
  const int64_t nb = 256, t = 16, d = 32, xs[3] = {t, nb, d}, ws[3] = {nb, t, d};
  fsq_params *p = fsq_params_create();
  fsq_tensor *x = fsq_params_add(p, "x", FSQ_F32, 3, xs), *w = fsq_params_add(p, "w", FSQ_F32, 3, ws);
  fsq_rng rng = fsq_rng_make(7, 2);
  for (int64_t i = 0; i < nb * t * d; i++) {
    ((float *)x->data)[i] = fsq_rng_uniform(&rng) - 0.5f;
    ((float *)w->data)[i] = fsq_rng_uniform(&rng) - 0.5f;
  }
  float *ref_y = malloc((size_t)(nb * t * t) * sizeof(float));
  float *ref_gx = malloc((size_t)(nb * t * d) * sizeof(float));
  float *ref_gw = malloc((size_t)(nb * t * d) * sizeof(float));
  /* one product per batch, on contiguous copies of each slice */
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *xv = fsq_transpose(ctx, x, 0, 1); /* [nb, t, d], strided */
  fsq_tensor *loss = NULL;
  for (int64_t b = 0; b < nb; b++) {
    int64_t s2[2] = {t, d};
    fsq_tensor *xb = fsq_reshape(ctx, fsq_narrow(ctx, xv, 0, b, 1), 2, s2);
    fsq_tensor *wb = fsq_reshape(ctx, fsq_narrow(ctx, w, 0, b, 1), 2, s2);
    fsq_tensor *yb = fsq_matmul(ctx, xb, wb, 0, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(yb);
    memcpy(ref_y + b * t * t, yb->data, (size_t)(t * t) * sizeof(float));
    fsq_tensor *l = fsq_sum_all(ctx, fsq_mul(ctx, yb, yb));
    loss = loss ? fsq_add(ctx, loss, l) : l;
  }
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  memcpy(ref_gx, x->grad->data, (size_t)(nb * t * d) * sizeof(float));
  memcpy(ref_gw, w->grad->data, (size_t)(nb * t * d) * sizeof(float));
  fsq_params_zero_grad(p);
  fsq_ctx_reset(ctx);
  /* the same as one batched product */
  xv = fsq_transpose(ctx, x, 0, 1);
  fsq_tensor *y = fsq_matmul(ctx, xv, w, 0, 1); /* [nb, t, t] */
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, fsq_sum_all(ctx, fsq_mul(ctx, y, y))), FSQ_OK);
  double worst = 0;
  for (int64_t i = 0; i < nb * t * t; i++) worst = fmax(worst, fabs(((float *)y->data)[i] - ref_y[i]));
  for (int64_t i = 0; i < nb * t * d; i++) {
    worst = fmax(worst, fabs(((float *)x->grad->data)[i] - ref_gx[i]));
    worst = fmax(worst, fabs(((float *)w->grad->data)[i] - ref_gw[i]));
  }
  CU_ASSERT(worst < 1e-5);
  free(ref_y);
  free(ref_gx);
  free(ref_gw);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

/* Large enough for the tiled transpose path, forward (copy) and backward
 * (accumulate through the view's strides), checked element by element
 * through fsq_get on views, which reads strides without any kernel. */
static void check_permuted_copy(const int *perm) {
  fsq_params *p = fsq_params_create();
  const int64_t ws[3] = {3, 70, 45};
  fsq_tensor *w = fsq_params_add(p, "w", FSQ_F32, 3, ws);
  int64_t n = fsq_numel(w);
  for (int64_t i = 0; i < n; i++) ((float *)w->data)[i] = (float)i;
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *v = fsq_permute(ctx, w, perm);
  fsq_tensor *t = fsq_contiguous(ctx, v);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_PTR_NOT_EQUAL(t->data, w->data);
  int bad = 0;
  for (int64_t i = 0; i < n; i++)
    if (fsq_get(t, i) != fsq_get(v, i)) bad++;
  CU_ASSERT_EQUAL(bad, 0);
  fsq_tensor *r = fsq_empty(ctx, FSQ_F32, 3, t->shape);
  for (int64_t i = 0; i < n; i++) ((float *)r->data)[i] = (float)(3 * i);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, fsq_sum_all(ctx, fsq_mul(ctx, t, r))), FSQ_OK);
  fsq_tensor *gv = fsq_permute(ctx, w->grad, perm); /* grads record nothing */
  bad = 0;
  for (int64_t i = 0; i < n; i++)
    if (fsq_get(gv, i) != (double)(3 * i)) bad++;
  CU_ASSERT_EQUAL(bad, 0);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

static void test_large_transposes_copy_and_accumulate(void) {
  static const int last_two[3] = {0, 2, 1}, rotate[3] = {2, 0, 1};
  check_permuted_copy(last_two);
  check_permuted_copy(rotate);
}

/* Beam search reorders integer state: index_select and gather take any dtype. */
static void test_index_select_and_gather_reorder_integer_tensors(void) {
  fsq_ctx *ctx = fsq_ctx_create(0);
  const int64_t ts[2] = {3, 2}, is[1] = {4}, gs[2] = {3, 1};
  const int64_t tok[6] = {10, 11, 20, 21, 30, 31}, order[4] = {2, 2, 0, 1}, pick[3] = {1, 0, 1};
  fsq_tensor *t = fsq_from_data(ctx, FSQ_I64, 2, ts, tok);
  fsq_tensor *r = fsq_index_select(ctx, t, 0, fsq_from_data(ctx, FSQ_I64, 1, is, order));
  CU_ASSERT_PTR_NOT_NULL_FATAL(r);
  const double want[8] = {30, 31, 30, 31, 10, 11, 20, 21};
  for (int i = 0; i < 8; i++) CU_ASSERT_EQUAL(fsq_get(r, i), want[i]);
  fsq_tensor *g = fsq_gather(ctx, t, 1, fsq_from_data(ctx, FSQ_I64, 2, gs, pick));
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  CU_ASSERT_EQUAL(fsq_get(g, 0), 11);
  CU_ASSERT_EQUAL(fsq_get(g, 1), 20);
  CU_ASSERT_EQUAL(fsq_get(g, 2), 31);
  uint8_t m[3] = {1, 0, 1};
  const int64_t ms[1] = {3}, two[1] = {2}, sel[2] = {1, 1};
  fsq_tensor *mm = fsq_index_select(ctx, fsq_from_data(ctx, FSQ_U8, 1, ms, m), 0,
                                    fsq_from_data(ctx, FSQ_I64, 1, two, sel));
  CU_ASSERT_EQUAL(fsq_get(mm, 0), 0);
  const int64_t bad[3] = {1, 2, 0}, neg[3] = {0, -1, 0};
  CU_ASSERT_PTR_NULL(fsq_gather(ctx, t, 1, fsq_from_data(ctx, FSQ_I64, 2, gs, bad)));
  CU_ASSERT_PTR_NULL(fsq_gather(ctx, t, 1, fsq_from_data(ctx, FSQ_I64, 2, gs, neg)));
  const int64_t three[1] = {3};
  CU_ASSERT_PTR_NULL(fsq_index_select(ctx, t, 0, fsq_from_data(ctx, FSQ_I64, 1, three, neg)));
  fsq_ctx_destroy(ctx);
}

/* Broadcast gradients large enough for the threaded column reduction. */
static void test_large_broadcast_gradients_reduce_correctly(void) {
  fsq_params *p = fsq_params_create();
  const int64_t as[3] = {40, 1, 200}, bs[1] = {200}, ys[3] = {40, 30, 200};
  fsq_tensor *a = fsq_params_add(p, "a", FSQ_F64, 3, as), *b = fsq_params_add(p, "b", FSQ_F64, 1, bs);
  fsq_ctx *ctx = fsq_ctx_create(0);
  fsq_tensor *r = fsq_empty(ctx, FSQ_F64, 3, ys);
  double *rv = r->data;
  for (int64_t i = 0; i < 40 * 30 * 200; i++) rv[i] = (double)(i % 13) - 6;
  fsq_tensor *y = fsq_add(ctx, fsq_add(ctx, fsq_zeros(ctx, FSQ_F64, 3, ys), a), b);
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, fsq_sum_all(ctx, fsq_mul(ctx, y, r))), FSQ_OK);
  const double *ga = a->grad->data, *gb = b->grad->data;
  int bad = 0;
  for (int64_t j = 0; j < 200; j++) {
    double want_b = 0;
    for (int64_t i = 0; i < 40 * 30; i++) want_b += rv[i * 200 + j];
    if (gb[j] != want_b) bad++;
    for (int64_t o = 0; o < 40; o++) {
      double want_a = 0;
      for (int64_t m = 0; m < 30; m++) want_a += rv[(o * 30 + m) * 200 + j];
      if (ga[o * 200 + j] != want_a) bad++;
    }
  }
  CU_ASSERT_EQUAL(bad, 0);
  fsq_ctx_destroy(ctx);
  fsq_params_destroy(p);
}

static void test_backend_reports_its_isa(void) {
  const fsq_kernels *k = fsq_kernels_cpu();
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  CU_ASSERT(strncmp(k->name, "cpu-", 4) == 0);
  CU_ASSERT_EQUAL(fsq_dtype_size(FSQ_BF16), 2);
  CU_ASSERT_STRING_EQUAL(fsq_dtype_name(FSQ_I64), "i64");
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_label_smoothed_nll_matches_hand_calculation),
      FSQ_TEST_CASE(test_cross_entropy_without_smoothing_is_nll),
      FSQ_TEST_CASE(test_large_cross_entropy_matches_log_softmax_then_nll),
      FSQ_TEST_CASE(test_large_batched_matmul_matches_per_batch_products),
      FSQ_TEST_CASE(test_log_softmax_in_place_equals_out_of_place),
      FSQ_TEST_CASE(test_layer_norm_normalizes_rows),
      FSQ_TEST_CASE(test_softmax_applies_causal_and_padding_masks),
      FSQ_TEST_CASE(test_fully_masked_row_gives_zero_weights),
      FSQ_TEST_CASE(test_conv_tbc_matches_hand_calculation),
      FSQ_TEST_CASE(test_matmul_matches_hand_calculation),
      FSQ_TEST_CASE(test_gelu_forms_match_known_values),
      FSQ_TEST_CASE(test_half_casts_round_to_nearest_even),
      FSQ_TEST_CASE(test_dropout_mask_is_same_for_any_thread_count),
      FSQ_TEST_CASE(test_dropout_mask_comes_from_philox_positions),
      FSQ_TEST_CASE(test_f32_transcendentals_are_accurate),
      FSQ_TEST_CASE(test_dropout_is_identity_when_not_training),
      FSQ_TEST_CASE(test_dropout_add_equals_add_of_dropout),
      FSQ_TEST_CASE(test_dropout_add_inplace_takes_only_dead_storage),
      FSQ_TEST_CASE(test_gradients_accumulate_for_shared_weights),
      FSQ_TEST_CASE(test_cross_entropy_writes_gradient_over_dead_logits),
      FSQ_TEST_CASE(test_grad_ready_hook_fires_once_per_leaf_when_final),
      FSQ_TEST_CASE(test_heads_product_merges_without_copy),
      FSQ_TEST_CASE(test_embedding_gives_no_gradient_to_padding_row),
      FSQ_TEST_CASE(test_views_share_storage),
      FSQ_TEST_CASE(test_failed_op_returns_null_and_chains),
      FSQ_TEST_CASE(test_no_grad_mode_records_nothing),
      FSQ_TEST_CASE(test_arena_is_reused_across_steps),
      FSQ_TEST_CASE(test_large_ops_agree_with_reference_loops),
      FSQ_TEST_CASE(test_large_transposes_copy_and_accumulate),
      FSQ_TEST_CASE(test_index_select_and_gather_reorder_integer_tensors),
      FSQ_TEST_CASE(test_large_broadcast_gradients_reduce_correctly),
      FSQ_TEST_CASE(test_backend_reports_its_isa),
      FSQ_TEST_END,
  };
  return fsq_test_main("tensor", cases);
}
