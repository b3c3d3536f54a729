/* test_tensor_grad.c: one table row per op (ggml's test-backend-ops is the
 * model). Each row builds the op from its float inputs; the harness checks
 *  - the backward pass against central finite differences in f64, with
 *    contiguous inputs and again with every >= 2-D input a transposed view;
 *  - that the op runs in f32 and agrees with the f64 forward.
 * A new backend or op is tested by adding a row. */
#include "tensor/fsq_tensor.h"
#include "fsq_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN 5

typedef struct op_row op_row;
typedef fsq_tensor *(*op_fn)(fsq_ctx *ctx, fsq_tensor **in);

struct op_row {
  const char *name;
  op_fn fn;
  int n_in;
  int ndim[MAX_IN];
  int64_t shape[MAX_IN][4];
  unsigned positive; /* bit k: input k drawn from [0.5, 1.5] instead of [-1, 1] */
};

static fsq_tensor *mk_i64(fsq_ctx *ctx, int ndim, const int64_t *shape, const int64_t *v) {
  return fsq_from_data(ctx, FSQ_I64, ndim, shape, v);
}

static fsq_tensor *mk_u8(fsq_ctx *ctx, int ndim, const int64_t *shape, const uint8_t *v) {
  return fsq_from_data(ctx, FSQ_U8, ndim, shape, v);
}

/* ---- the ops under test ------------------------------------------------------ */
static fsq_tensor *op_add(fsq_ctx *c, fsq_tensor **x) { return fsq_add(c, x[0], x[1]); }
static fsq_tensor *op_sub(fsq_ctx *c, fsq_tensor **x) { return fsq_sub(c, x[0], x[1]); }
static fsq_tensor *op_mul(fsq_ctx *c, fsq_tensor **x) { return fsq_mul(c, x[0], x[1]); }
static fsq_tensor *op_div(fsq_ctx *c, fsq_tensor **x) { return fsq_div(c, x[0], x[1]); }
static fsq_tensor *op_bias_add(fsq_ctx *c, fsq_tensor **x) { return fsq_bias_add(c, x[0], x[1]); }
static fsq_tensor *op_scale(fsq_ctx *c, fsq_tensor **x) { return fsq_scale(c, x[0], -1.75); }
static fsq_tensor *op_add_scalar(fsq_ctx *c, fsq_tensor **x) { return fsq_add_scalar(c, x[0], 0.25); }
static fsq_tensor *op_relu(fsq_ctx *c, fsq_tensor **x) { return fsq_relu(c, x[0]); }
static fsq_tensor *op_gelu(fsq_ctx *c, fsq_tensor **x) { return fsq_gelu(c, x[0]); }
static fsq_tensor *op_gelu_tanh(fsq_ctx *c, fsq_tensor **x) { return fsq_gelu_tanh(c, x[0]); }
static fsq_tensor *op_tanh(fsq_ctx *c, fsq_tensor **x) { return fsq_tanh(c, x[0]); }
static fsq_tensor *op_sigmoid(fsq_ctx *c, fsq_tensor **x) { return fsq_sigmoid(c, x[0]); }
static fsq_tensor *op_exp(fsq_ctx *c, fsq_tensor **x) { return fsq_exp(c, x[0]); }
static fsq_tensor *op_ln(fsq_ctx *c, fsq_tensor **x) { return fsq_ln(c, x[0]); }
static fsq_tensor *op_glu(fsq_ctx *c, fsq_tensor **x) { return fsq_glu(c, x[0], -1); }
static fsq_tensor *op_glu_dim0(fsq_ctx *c, fsq_tensor **x) { return fsq_glu(c, x[0], 0); }
static fsq_tensor *op_dropout(fsq_ctx *c, fsq_tensor **x) { return fsq_dropout(c, x[0], 0.3); }
static fsq_tensor *op_dropout_add(fsq_ctx *c, fsq_tensor **x) {
  return fsq_dropout_add(c, x[0], x[1], 0.3);
}

/* the sum written over a matmul's output (no backward reads it) */
static fsq_tensor *op_dropout_add_inplace(fsq_ctx *c, fsq_tensor **x) {
  return fsq_dropout_add_inplace(c, x[0], fsq_matmul(c, x[1], x[2], 0, 0), 0.3);
}

static fsq_tensor *op_masked_fill(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ms[2] = {4, 1};
  static const uint8_t m[4] = {0, 1, 0, 1};
  return fsq_masked_fill(c, x[0], mk_u8(c, 2, ms, m), -3.0);
}

static fsq_tensor *op_layer_norm(fsq_ctx *c, fsq_tensor **x) {
  return fsq_layer_norm(c, x[0], x[1], x[2], 1e-5);
}
static fsq_tensor *op_layer_norm_plain(fsq_ctx *c, fsq_tensor **x) {
  return fsq_layer_norm(c, x[0], NULL, NULL, 1e-5);
}
static fsq_tensor *op_softmax(fsq_ctx *c, fsq_tensor **x) { return fsq_softmax(c, x[0]); }
static fsq_tensor *op_log_softmax(fsq_ctx *c, fsq_tensor **x) { return fsq_log_softmax(c, x[0]); }

/* x: [B*H = 4, T = 3, S = 5], B = 2; key padding hides the last key of batch 1 */
static fsq_tensor *op_softmax_masked_causal(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ms[2] = {2, 5};
  static const uint8_t m[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return fsq_softmax_masked(c, x[0], mk_u8(c, 2, ms, m), 1, 0);
}

/* x: [B = 2, H = 2, T = 3, S = 5]; masked log-probs are -inf, so the row
 * zeroes them before they meet the test's random weights. */
static fsq_tensor *op_log_softmax_masked(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ms[2] = {2, 5}, ms4[4] = {2, 1, 1, 5};
  static const uint8_t m[10] = {0, 0, 1, 0, 0, 0, 0, 0, 1, 1};
  fsq_tensor *y = fsq_softmax_masked(c, x[0], mk_u8(c, 2, ms, m), 0, 1);
  return fsq_masked_fill(c, y, mk_u8(c, 4, ms4, m), 0.0);
}

static fsq_tensor *op_embedding(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t is[2] = {2, 4}, idx[8] = {3, 0, 6, 3, 2, 5, 6, 3};
  return fsq_embedding(c, x[0], mk_i64(c, 2, is, idx), -1, 2.5);
}

static fsq_tensor *op_index_select(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t is[1] = {4}, idx[4] = {2, 0, 2, 1};
  return fsq_index_select(c, x[0], 1, mk_i64(c, 1, is, idx));
}
static fsq_tensor *op_index_select0(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t is[1] = {3}, idx[3] = {1, 1, 0};
  return fsq_index_select(c, x[0], 0, mk_i64(c, 1, is, idx));
}

/* x: [3, 4, 2], gathered along dim 1 into [3, 5, 2] with repeats */
static fsq_tensor *op_gather(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t is[3] = {3, 5, 2};
  static const int64_t idx[30] = {0, 3, 1, 1, 2, 0, 3, 3, 0, 0, 2, 2, 1, 0, 3, 1, 1, 1, 0, 2,
                                  3, 0, 1, 2, 2, 2, 0, 3, 1, 1};
  return fsq_gather(c, x[0], 1, mk_i64(c, 3, is, idx));
}
static fsq_tensor *op_gather_last(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t is[2] = {4, 1};
  static const int64_t idx[4] = {6, 0, 3, 6};
  return fsq_gather(c, x[0], -1, mk_i64(c, 2, is, idx));
}

static fsq_tensor *op_transpose(fsq_ctx *c, fsq_tensor **x) {
  return fsq_mul(c, fsq_transpose(c, x[0], 0, 2), x[1]);
}
static fsq_tensor *op_permute(fsq_ctx *c, fsq_tensor **x) {
  static const int perm[3] = {2, 0, 1};
  return fsq_relu(c, fsq_permute(c, x[0], perm));
}
static fsq_tensor *op_reshape(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t s[2] = {5, -1};
  return fsq_tanh(c, fsq_reshape(c, fsq_transpose(c, x[0], 0, 1), 2, s));
}
static fsq_tensor *op_narrow(fsq_ctx *c, fsq_tensor **x) {
  return fsq_sigmoid(c, fsq_narrow(c, x[0], 1, 2, 3));
}
static fsq_tensor *op_contiguous(fsq_ctx *c, fsq_tensor **x) {
  return fsq_contiguous(c, fsq_transpose(c, x[0], 0, 1));
}
static fsq_tensor *op_concat(fsq_ctx *c, fsq_tensor **x) { return fsq_concat(c, 3, x, 1); }
static fsq_tensor *op_split(fsq_ctx *c, fsq_tensor **x) {
  fsq_tensor *p[3];
  if (fsq_split(c, x[0], 2, 3, p) != FSQ_OK) return NULL;
  return fsq_add(c, fsq_mul(c, p[0], p[2]), fsq_tanh(c, p[1]));
}
static fsq_tensor *op_sum(fsq_ctx *c, fsq_tensor **x) { return fsq_sum(c, x[0], 1, 0); }
static fsq_tensor *op_sum_keep(fsq_ctx *c, fsq_tensor **x) { return fsq_sum(c, x[0], -1, 1); }
static fsq_tensor *op_mean(fsq_ctx *c, fsq_tensor **x) { return fsq_mean(c, x[0], 0, 0); }
static fsq_tensor *op_max(fsq_ctx *c, fsq_tensor **x) { return fsq_max(c, x[0], 1, 1); }
static fsq_tensor *op_sum_all(fsq_ctx *c, fsq_tensor **x) { return fsq_sum_all(c, x[0]); }
static fsq_tensor *op_linear(fsq_ctx *c, fsq_tensor **x) { return fsq_linear(c, x[0], x[1], x[2], 0); }
static fsq_tensor *op_linear_relu(fsq_ctx *c, fsq_tensor **x) { return fsq_linear(c, x[0], x[1], x[2], 1); }
static fsq_tensor *op_linear_nobias(fsq_ctx *c, fsq_tensor **x) { return fsq_linear(c, x[0], x[1], NULL, 0); }
/* x's gradient exists (from the residual) before linear's backward adds to it */
static fsq_tensor *op_linear_residual(fsq_ctx *c, fsq_tensor **x) {
  return fsq_add(c, fsq_linear(c, x[0], x[1], x[2], 1), x[0]);
}
/* gradients handed over without a copy (a sum's first operand, a reshape)
 * must still add up when a tensor has two consumers */
static fsq_tensor *op_add_self(fsq_ctx *c, fsq_tensor **x) {
  fsq_tensor *s = fsq_scale(c, x[0], 1.5);
  return fsq_mul(c, fsq_add(c, s, s), s);
}
static fsq_tensor *op_reshape_twice(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t s1[2] = {3, 4}, s2[1] = {12};
  fsq_tensor *t = fsq_tanh(c, x[0]);
  return fsq_mul(c, fsq_reshape(c, t, 1, s2), fsq_reshape(c, fsq_reshape(c, t, 2, s1), 1, s2));
}
/* one tensor as both operands: both gradients accumulate into one buffer */
static fsq_tensor *op_mm_self(fsq_ctx *c, fsq_tensor **x) { return fsq_matmul(c, x[0], x[0], 0, 1); }
/* batched over heads of permuted views, read in place ([B, T, H, D] -> [B, H, T, D]) */
static fsq_tensor *op_mm_heads(fsq_ctx *c, fsq_tensor **x) {
  static const int perm[4] = {0, 2, 1, 3};
  return fsq_matmul(c, fsq_permute(c, x[0], perm), fsq_permute(c, x[1], perm), 0, 1);
}
/* attention's scores: the scale as the GEMM's alpha, heads read in place */
static fsq_tensor *op_mm_heads_scaled(fsq_ctx *c, fsq_tensor **x) {
  static const int perm[4] = {0, 2, 1, 3};
  return fsq_matmul_scaled(c, fsq_permute(c, x[0], perm), fsq_permute(c, x[1], perm), 0, 1, 0.37);
}
static fsq_tensor *op_mm_scaled_shared(fsq_ctx *c, fsq_tensor **x) {
  return fsq_matmul_scaled(c, x[0], x[1], 0, 1, -1.5);
}
static fsq_tensor *op_mm_heads_ta(fsq_ctx *c, fsq_tensor **x) {
  static const int perm[4] = {0, 2, 1, 3};
  return fsq_matmul(c, fsq_permute(c, x[0], perm), fsq_permute(c, x[1], perm), 1, 0);
}
/* attention's w @ v over heads that are views of [S, B, H, D], then the
 * heads merged back to [T, B, H * D] (the product comes out in that layout) */
static fsq_tensor *op_mm_heads_merge(fsq_ctx *c, fsq_tensor **x) {
  static const int split[4] = {1, 2, 0, 3}, merge[4] = {2, 0, 1, 3};
  fsq_tensor *y = fsq_matmul(c, x[0], fsq_permute(c, x[1], split), 0, 0); /* [B, H, T, D] */
  const int64_t shape[3] = {3, 2, 10};
  return fsq_reshape(c, fsq_permute(c, y, merge), 3, shape);
}
static fsq_tensor *op_mm(fsq_ctx *c, fsq_tensor **x) { return fsq_matmul(c, x[0], x[1], 0, 0); }
static fsq_tensor *op_mm_ta(fsq_ctx *c, fsq_tensor **x) { return fsq_matmul(c, x[0], x[1], 1, 0); }
static fsq_tensor *op_mm_tb(fsq_ctx *c, fsq_tensor **x) { return fsq_matmul(c, x[0], x[1], 0, 1); }
static fsq_tensor *op_mm_tab(fsq_ctx *c, fsq_tensor **x) { return fsq_matmul(c, x[0], x[1], 1, 1); }
static fsq_tensor *op_matmul_bias(fsq_ctx *c, fsq_tensor **x) {
  return fsq_bias_add(c, fsq_matmul(c, x[0], x[1], 0, 1), x[2]);
}
static fsq_tensor *op_conv_tbc(fsq_ctx *c, fsq_tensor **x) { return fsq_conv_tbc(c, x[0], x[1], x[2], 1); }
static fsq_tensor *op_conv_tbc_nopad(fsq_ctx *c, fsq_tensor **x) {
  return fsq_conv_tbc(c, x[0], x[1], NULL, 0);
}
static fsq_tensor *op_lstm(fsq_ctx *c, fsq_tensor **x) {
  fsq_tensor *h, *cc, *both[2];
  if (fsq_lstm_cell(c, x[0], x[1], x[2], x[3], x[4], NULL, NULL, &h, &cc) != FSQ_OK) return NULL;
  both[0] = h;
  both[1] = cc;
  return fsq_concat(c, 2, both, 1);
}
static fsq_tensor *op_lstm_bias(fsq_ctx *c, fsq_tensor **x) {
  /* x0: [3, 4] input, x1: [3, 2] h and c side by side, x2: [8, 4], x3: [8, 2], x4: [8] */
  fsq_tensor *h, *cc;
  fsq_tensor *hc[2];
  if (fsq_split(c, x[1], 1, 2, hc) != FSQ_OK) return NULL;
  if (fsq_lstm_cell(c, x[0], hc[0], hc[1], x[2], x[3], x[4], x[4], &h, &cc) != FSQ_OK) return NULL;
  return fsq_mul(c, h, cc);
}

static const int64_t ls_target[5] = {2, -100, 0, 6, 2};
static fsq_tensor *op_ls_nll(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ts[1] = {5};
  fsq_tensor *nll;
  fsq_tensor *loss = fsq_label_smoothed_nll(c, x[0], mk_i64(c, 1, ts, ls_target), 0.1, -100, &nll);
  return fsq_add(c, loss, fsq_scale(c, nll, 0.3));
}
static fsq_tensor *op_cross_entropy(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ts[1] = {5};
  return fsq_cross_entropy(c, x[0], mk_i64(c, 1, ts, ls_target), 0.1, -100, NULL);
}
static fsq_tensor *op_cross_entropy_nll(fsq_ctx *c, fsq_tensor **x) {
  static const int64_t ts[1] = {5};
  fsq_tensor *nll;
  fsq_tensor *loss = fsq_cross_entropy(c, x[0], mk_i64(c, 1, ts, ls_target), 0.1, -100, &nll);
  return fsq_add(c, loss, fsq_scale(c, nll, 0.3));
}

static const op_row rows[] = {
    {"add_broadcast", op_add, 2, {3, 2}, {{3, 5, 7}, {5, 1}}, 0},
    {"sub_broadcast", op_sub, 2, {3, 2}, {{4, 1, 3}, {5, 3}}, 0},
    {"mul_broadcast", op_mul, 2, {3, 1}, {{3, 5, 7}, {7}}, 0},
    {"div_broadcast", op_div, 2, {2, 2}, {{6, 5}, {6, 1}}, 2},
    {"bias_add", op_bias_add, 2, {3, 1}, {{2, 3, 9}, {9}}, 0},
    {"scale", op_scale, 1, {3}, {{3, 5, 2}}, 0},
    {"add_scalar", op_add_scalar, 1, {2}, {{3, 5}}, 0},
    {"relu", op_relu, 1, {3}, {{3, 5, 7}}, 0},
    {"gelu", op_gelu, 1, {2}, {{7, 9}}, 0},
    {"gelu_tanh", op_gelu_tanh, 1, {2}, {{7, 9}}, 0},
    {"tanh", op_tanh, 1, {2}, {{5, 3}}, 0},
    {"sigmoid", op_sigmoid, 1, {2}, {{5, 3}}, 0},
    {"exp", op_exp, 1, {2}, {{5, 3}}, 0},
    {"ln", op_ln, 1, {2}, {{5, 3}}, 1},
    {"glu_last", op_glu, 1, {3}, {{3, 5, 8}}, 0},
    {"glu_dim0", op_glu_dim0, 1, {2}, {{6, 5}}, 0},
    {"dropout", op_dropout, 1, {2}, {{9, 13}}, 0},
    {"dropout_add", op_dropout_add, 2, {2, 2}, {{9, 13}, {9, 13}}, 0},
    {"dropout_add_inplace", op_dropout_add_inplace, 3, {2, 2, 2}, {{9, 13}, {9, 4}, {4, 13}}, 0},
    {"masked_fill", op_masked_fill, 1, {3}, {{3, 4, 5}}, 0},
    {"layer_norm", op_layer_norm, 3, {3, 1, 1}, {{3, 4, 7}, {7}, {7}}, 0},
    {"layer_norm_plain", op_layer_norm_plain, 1, {2}, {{5, 11}}, 0},
    {"softmax", op_softmax, 1, {3}, {{3, 4, 9}}, 0},
    {"log_softmax", op_log_softmax, 1, {2}, {{5, 7}}, 0},
    {"softmax_masked_causal", op_softmax_masked_causal, 1, {3}, {{4, 3, 5}}, 0},
    {"log_softmax_masked", op_log_softmax_masked, 1, {4}, {{2, 2, 3, 5}}, 0},
    {"embedding", op_embedding, 1, {2}, {{7, 5}}, 0},
    {"index_select_dim1", op_index_select, 1, {3}, {{4, 3, 5}}, 0},
    {"index_select_dim0", op_index_select0, 1, {2}, {{3, 7}}, 0},
    {"gather_dim1", op_gather, 1, {3}, {{3, 4, 2}}, 0},
    {"gather_last", op_gather_last, 1, {2}, {{4, 7}}, 0},
    {"transpose", op_transpose, 2, {3, 3}, {{2, 3, 5}, {5, 3, 2}}, 0},
    {"permute", op_permute, 1, {3}, {{2, 3, 5}}, 0},
    {"reshape", op_reshape, 1, {3}, {{3, 5, 2}}, 0},
    {"narrow", op_narrow, 1, {3}, {{3, 7, 2}}, 0},
    {"contiguous", op_contiguous, 1, {3}, {{3, 4, 5}}, 0},
    {"concat", op_concat, 3, {3, 3, 3}, {{2, 1, 3}, {2, 4, 3}, {2, 2, 3}}, 0},
    {"split", op_split, 1, {3}, {{2, 3, 9}}, 0},
    {"sum_dim", op_sum, 1, {3}, {{3, 5, 4}}, 0},
    {"sum_keepdim", op_sum_keep, 1, {3}, {{3, 5, 4}}, 0},
    {"mean", op_mean, 1, {3}, {{3, 5, 4}}, 0},
    {"max", op_max, 1, {3}, {{3, 5, 4}}, 0},
    {"sum_all", op_sum_all, 1, {3}, {{3, 5, 4}}, 0},
    {"matmul", op_mm, 2, {2, 2}, {{5, 3}, {3, 7}}, 0},
    {"matmul_self", op_mm_self, 1, {2}, {{3, 4}}, 0},
    {"add_self", op_add_self, 1, {2}, {{3, 4}}, 0},
    {"reshape_twice", op_reshape_twice, 1, {3}, {{2, 3, 2}}, 0},
    {"matmul_heads", op_mm_heads, 2, {4, 4}, {{2, 3, 4, 5}, {2, 2, 4, 5}}, 0},
    {"matmul_heads_scaled", op_mm_heads_scaled, 2, {4, 4}, {{2, 3, 4, 5}, {2, 2, 4, 5}}, 0},
    {"matmul_scaled_shared_b", op_mm_scaled_shared, 2, {3, 2}, {{2, 5, 3}, {4, 3}}, 0},
    {"matmul_heads_merge", op_mm_heads_merge, 2, {4, 4}, {{2, 2, 3, 4}, {4, 2, 2, 5}}, 0},
    {"matmul_heads_trans_a", op_mm_heads_ta, 2, {4, 4}, {{2, 3, 4, 5}, {2, 3, 4, 2}}, 0},
    {"linear", op_linear, 3, {3, 2, 1}, {{2, 3, 4}, {5, 4}, {5}}, 0},
    {"linear_relu", op_linear_relu, 3, {3, 2, 1}, {{2, 3, 4}, {5, 4}, {5}}, 0},
    {"linear_nobias", op_linear_nobias, 2, {2, 2}, {{3, 4}, {5, 4}}, 0},
    {"linear_relu_residual", op_linear_residual, 3, {2, 2, 1}, {{3, 4}, {4, 4}, {4}}, 0},
    {"matmul_trans_a", op_mm_ta, 2, {2, 2}, {{3, 5}, {3, 7}}, 0},
    {"matmul_trans_b", op_mm_tb, 2, {2, 2}, {{5, 3}, {7, 3}}, 0},
    {"matmul_trans_ab", op_mm_tab, 2, {2, 2}, {{3, 5}, {7, 3}}, 0},
    {"matmul_batched", op_mm, 2, {3, 3}, {{2, 5, 3}, {2, 3, 4}}, 0},
    {"matmul_batched_ta", op_mm_ta, 2, {4, 4}, {{2, 2, 3, 5}, {2, 2, 3, 4}}, 0},
    {"matmul_batched_tb", op_mm_tb, 2, {3, 3}, {{3, 5, 4}, {3, 2, 4}}, 0},
    {"matmul_shared_b", op_mm, 2, {3, 2}, {{2, 5, 3}, {3, 4}}, 0},
    {"matmul_shared_b_ta", op_mm_ta, 2, {3, 2}, {{2, 3, 5}, {3, 4}}, 0},
    {"matmul_bias_add", op_matmul_bias, 3, {3, 2, 1}, {{3, 2, 5}, {4, 5}, {4}}, 0},
    {"conv_tbc", op_conv_tbc, 3, {3, 3, 1}, {{6, 2, 3}, {3, 3, 4}, {4}}, 0},
    {"conv_tbc_nopad", op_conv_tbc_nopad, 2, {3, 3}, {{7, 3, 2}, {4, 2, 5}}, 0},
    {"lstm_cell", op_lstm, 5, {2, 2, 2, 2, 2}, {{3, 4}, {3, 2}, {3, 2}, {8, 4}, {8, 2}}, 0},
    {"lstm_cell_bias", op_lstm_bias, 5, {2, 2, 2, 2, 1}, {{3, 4}, {3, 4}, {8, 4}, {8, 2}, {8}}, 0},
    {"label_smoothed_nll", op_ls_nll, 1, {2}, {{5, 7}}, 0},
    {"cross_entropy", op_cross_entropy, 1, {2}, {{5, 7}}, 0},
    {"cross_entropy_nll", op_cross_entropy_nll, 1, {2}, {{5, 7}}, 0},
};
#define N_ROWS (sizeof(rows) / sizeof(rows[0]))

/* ---- the harness ----------------------------------------------------------------- */
typedef struct harness {
  const op_row *row;
  int noncontig;
  fsq_params *params;
  fsq_tensor *store[MAX_IN]; /* as stored (maybe with the last two dims swapped) */
  fsq_ctx *ctx;
  double *weights; /* random weights of the scalar loss = sum(out * weights) */
  int64_t n_out;
} harness;

static double uniform(fsq_rng *r, double lo, double hi) {
  return lo + (hi - lo) * ((double)fsq_rng_u32(r) / 4294967296.0);
}

static int harness_init(harness *h, const op_row *row, int noncontig, fsq_dtype dtype) {
  memset(h, 0, sizeof(*h));
  h->row = row;
  h->noncontig = noncontig;
  h->params = fsq_params_create();
  h->ctx = fsq_ctx_create(1 << 20);
  fsq_rng rng = fsq_rng_make(1234, 7);
  for (int k = 0; k < row->n_in; k++) {
    int64_t shape[4];
    int nd = row->ndim[k];
    memcpy(shape, row->shape[k], sizeof(shape));
    if (noncontig && nd >= 2) {
      int64_t t = shape[nd - 1];
      shape[nd - 1] = shape[nd - 2];
      shape[nd - 2] = t;
    }
    char name[32];
    snprintf(name, sizeof(name), "in%d", k);
    h->store[k] = fsq_params_add(h->params, name, dtype, nd, shape);
    if (!h->store[k]) return 0;
    int64_t n = fsq_numel(h->store[k]);
    for (int64_t i = 0; i < n; i++) {
      double v = (row->positive >> k) & 1 ? uniform(&rng, 0.5, 1.5) : uniform(&rng, -1, 1);
      if (dtype == FSQ_F64) ((double *)h->store[k]->data)[i] = v;
      else ((float *)h->store[k]->data)[i] = (float)v;
    }
  }
  return 1;
}

static void harness_free(harness *h) {
  fsq_ctx_destroy(h->ctx);
  fsq_params_destroy(h->params);
  free(h->weights);
}

/* One fresh forward pass; the op's output (or NULL). */
static fsq_tensor *harness_forward(harness *h) {
  fsq_ctx_reset(h->ctx);
  fsq_ctx_set_seed(h->ctx, 99, 3);
  fsq_tensor *in[MAX_IN];
  for (int k = 0; k < h->row->n_in; k++) {
    in[k] = h->store[k];
    if (h->noncontig && in[k]->ndim >= 2) in[k] = fsq_transpose(h->ctx, in[k], -1, -2);
  }
  return h->row->fn(h->ctx, in);
}

static fsq_tensor *harness_loss(harness *h) {
  fsq_tensor *y = harness_forward(h);
  if (!y) return NULL;
  if (!h->weights) {
    fsq_rng rng = fsq_rng_make(555, 1);
    h->n_out = fsq_numel(y);
    h->weights = malloc((size_t)h->n_out * sizeof(double));
    for (int64_t i = 0; i < h->n_out; i++) h->weights[i] = uniform(&rng, -1, 1);
  }
  fsq_tensor *w = fsq_wrap(h->ctx, FSQ_F64, y->ndim, y->shape, h->weights);
  return fsq_sum_all(h->ctx, fsq_mul(h->ctx, y, w));
}

static double loss_value(harness *h) {
  fsq_ctx_set_grad(h->ctx, 0);
  fsq_tensor *l = harness_loss(h);
  fsq_ctx_set_grad(h->ctx, 1);
  return l ? fsq_get(l, 0) : NAN;
}

/* ||analytic - numeric|| / max(||analytic||, ||numeric||) over all inputs. */
static double gradcheck(const op_row *row, int noncontig) {
  harness h;
  if (!harness_init(&h, row, noncontig, FSQ_F64)) {
    harness_free(&h);
    return INFINITY;
  }
  fsq_params_zero_grad(h.params);
  fsq_tensor *loss = harness_loss(&h);
  if (!loss || fsq_backward(h.ctx, loss) != FSQ_OK) {
    fprintf(stderr, "%s: %s\n", row->name, fsq_error_message());
    harness_free(&h);
    return INFINITY;
  }
  const double step = 1e-6;
  double diff2 = 0, an2 = 0, nu2 = 0;
  for (int k = 0; k < row->n_in; k++) {
    double *x = h.store[k]->data, *g = h.store[k]->grad->data;
    for (int64_t i = 0; i < fsq_numel(h.store[k]); i++) {
      double keep = x[i];
      x[i] = keep + step;
      double up = loss_value(&h);
      x[i] = keep - step;
      double down = loss_value(&h);
      x[i] = keep;
      double num = (up - down) / (2 * step);
      diff2 += (g[i] - num) * (g[i] - num);
      an2 += g[i] * g[i];
      nu2 += num * num;
    }
  }
  harness_free(&h);
  double scale = sqrt(an2 > nu2 ? an2 : nu2);
  return scale > 0 ? sqrt(diff2) / scale : sqrt(diff2);
}

static void run_gradchecks(int noncontig) {
  for (size_t r = 0; r < N_ROWS; r++) {
    double err = gradcheck(&rows[r], noncontig);
    if (!(err < 1e-6) || getenv("FSQ_TEST_VERBOSE"))
      fprintf(stderr, "gradcheck %s%s: relative error %.3g\n", rows[r].name,
              noncontig ? " (non-contiguous)" : "", err);
    CU_ASSERT(err < 1e-6);
  }
}

static void test_every_op_backward_matches_finite_differences(void) { run_gradchecks(0); }
static void test_every_op_backward_matches_on_noncontiguous_views(void) { run_gradchecks(1); }

/* Rows whose op takes one input of any shape with >= min_dims dims are
 * checked again on seeded random shapes (1..4 dims, sizes 1..7). layer_norm
 * over 2 features is flat (its output is +-1 up to eps), so its true gradient
 * is ~eps and the finite difference is pure rounding: its last dim is >= 3. */
static const struct {
  const char *name;
  int min_dims, min_last;
} any_shape[] = {
    {"scale", 1, 1}, {"add_scalar", 1, 1}, {"relu", 1, 1}, {"gelu", 1, 1},
    {"gelu_tanh", 1, 1}, {"tanh", 1, 1}, {"sigmoid", 1, 1}, {"exp", 1, 1},
    {"dropout", 1, 1}, {"layer_norm_plain", 1, 3}, {"softmax", 1, 1}, {"log_softmax", 1, 1},
    {"sum_dim", 2, 1}, {"mean", 1, 1}, {"max", 2, 1}, {"sum_all", 1, 1},
    {"contiguous", 2, 1}, {"reshape", 2, 1},
};

static const op_row *find_row(const char *name) {
  for (size_t r = 0; r < N_ROWS; r++)
    if (strcmp(rows[r].name, name) == 0) return &rows[r];
  return NULL;
}

static void test_backward_matches_on_random_shapes(void) {
  fsq_rng rng = fsq_rng_make(2026, 11);
  for (size_t i = 0; i < sizeof(any_shape) / sizeof(any_shape[0]); i++) {
    const op_row *base = find_row(any_shape[i].name);
    CU_ASSERT_PTR_NOT_NULL_FATAL(base);
    for (int trial = 0; trial < 3; trial++) {
      op_row row = *base;
      int lo = any_shape[i].min_dims;
      row.ndim[0] = lo + (int)fsq_rng_below(&rng, (uint32_t)(5 - lo));
      /* reshape to [5, -1] needs a multiple of 5 elements */
      int need5 = strcmp(row.name, "reshape") == 0;
      for (int d = 0; d < row.ndim[0]; d++) row.shape[0][d] = 1 + fsq_rng_below(&rng, 7);
      if (need5) row.shape[0][0] = 5;
      int64_t *last = &row.shape[0][row.ndim[0] - 1];
      if (*last < any_shape[i].min_last) *last = any_shape[i].min_last;
      for (int nc = 0; nc < 2; nc++) {
        double err = gradcheck(&row, nc);
        if (!(err < 1e-6) || getenv("FSQ_TEST_VERBOSE"))
          fprintf(stderr, "gradcheck %s on [%lld %lld %lld %lld]/%d%s: relative error %.3g\n",
                  row.name, (long long)row.shape[0][0], (long long)row.shape[0][1],
                  (long long)row.shape[0][2], (long long)row.shape[0][3], row.ndim[0],
                  nc ? " (non-contiguous)" : "", err);
        CU_ASSERT(err < 1e-6);
      }
    }
  }
}

/* f32 forward against the f64 forward of the same inputs. */
static void test_every_op_runs_in_f32_like_f64(void) {
  for (size_t r = 0; r < N_ROWS; r++) {
    harness h64, h32;
    int ok = harness_init(&h64, &rows[r], 1, FSQ_F64) && harness_init(&h32, &rows[r], 1, FSQ_F32);
    CU_ASSERT_FATAL(ok);
    fsq_tensor *y64 = harness_forward(&h64), *y32 = harness_forward(&h32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y64);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y32);
    CU_ASSERT_EQUAL(y32->dtype, FSQ_F32);
    CU_ASSERT_EQUAL(fsq_numel(y32), fsq_numel(y64));
    double worst = 0;
    for (int64_t i = 0; i < fsq_numel(y64); i++) {
      double a = fsq_get(y64, i), b = fsq_get(y32, i);
      double e = fabs(a - b) / (1.0 + fabs(a));
      if (e > worst) worst = e;
    }
    if (!(worst < 1e-5)) fprintf(stderr, "f32 %s: error %.3g\n", rows[r].name, worst);
    CU_ASSERT(worst < 1e-5);
    harness_free(&h64);
    harness_free(&h32);
  }
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_every_op_backward_matches_finite_differences),
      FSQ_TEST_CASE(test_every_op_backward_matches_on_noncontiguous_views),
      FSQ_TEST_CASE(test_backward_matches_on_random_shapes),
      FSQ_TEST_CASE(test_every_op_runs_in_f32_like_f64),
      FSQ_TEST_END,
  };
  return fsq_test_main("tensor_grad", cases);
}
