/* cpu_isa.c: the float kernels of the CPU backend for one instruction set.
 * This file is compiled three times (kernels/cpu/local.mk): portable, with
 * -mavx2 -mfma and with -mavx512*; FSQ_ISA names the copy. The dispatcher in
 * cpu_backend.c picks one at run time with __builtin_cpu_supports. */
#include "kernels/cpu/cpu_half.h"
#include "kernels/cpu/cpu_internal.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef FSQ_ISA
#define FSQ_ISA generic
#endif

#define T float
#define SUF f32
#define EXP fsq_k_expf
#define LOG logf
#define TANH fsq_k_tanhf
#define ERF fsq_k_erff
#define SQRT sqrtf
#include "kernels/cpu/cpu_ops.inc"
#undef T
#undef SUF
#undef EXP
#undef LOG
#undef TANH
#undef ERF
#undef SQRT

#define T double
#define SUF f64
#define EXP exp
#define LOG log
#define TANH tanh
#define ERF erf
#define SQRT sqrt
#include "kernels/cpu/cpu_ops.inc"
#undef T
#undef SUF

#define CT uint8_t
#define CSUF b1
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF
#define CT uint16_t
#define CSUF b2
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF
#define CT float
#define CSUF f32
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF
#define CT double
#define CSUF f64
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF
#define CT int32_t
#define CSUF i32
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF
#define CT int64_t
#define CSUF i64
#include "kernels/cpu/cpu_copy.inc"
#undef CT
#undef CSUF

#include "kernels/cpu/cpu_optim.inc"

/* Table entries: f16 and bf16 storage goes to cpu_half.c's entry of the
 * same name (one test, first, so f32 and f64 lose nothing), then the f32 or
 * f64 instance is picked (callers checked the dtype). */
#define HALF_FIRST(name, t, ...) \
  do { \
    if (fsq_kcpu_is_half(t)) { \
      fsq_kcpu_half.name((t), __VA_ARGS__); \
      return; \
    } \
  } while (0)
#define DISPATCH(name, t, ...) \
  do { \
    if ((t) == FSQ_F64) name##_f64(__VA_ARGS__); \
    else name##_f32(__VA_ARGS__); \
  } while (0)

static void k_copy(fsq_dtype t, int ndim, const int64_t *shape, void *dst, const int64_t *ds,
                   const void *src, const int64_t *ss, int accumulate) {
  switch (t) {
  case FSQ_F32: copy_f32(ndim, shape, dst, ds, src, ss, accumulate); break;
  case FSQ_F64: copy_f64(ndim, shape, dst, ds, src, ss, accumulate); break;
  case FSQ_I32: copy_i32(ndim, shape, dst, ds, src, ss, accumulate); break;
  case FSQ_I64: copy_i64(ndim, shape, dst, ds, src, ss, accumulate); break;
  case FSQ_F16:
  case FSQ_BF16: /* words move as they are; sums go through f32 */
    if (accumulate) fsq_kcpu_half.copy(t, ndim, shape, dst, ds, src, ss, accumulate);
    else copy_b2(ndim, shape, dst, ds, src, ss, 0);
    break;
  default: copy_b1(ndim, shape, dst, ds, src, ss, accumulate); break;
  }
}
static void k_fill(fsq_dtype t, void *dst, int64_t n, double value) {
  HALF_FIRST(fill, t, dst, n, value);
  DISPATCH(fill, t, n, dst, value);
}
static void k_binary(fsq_dtype t, fsq_binop op, int ndim, const int64_t *shape, void *out,
                     const void *a, const int64_t *as, const void *b, const int64_t *bs) {
  HALF_FIRST(binary, t, op, ndim, shape, out, a, as, b, bs);
  DISPATCH(binary, t, op, ndim, shape, out, a, as, b, bs);
}
static void k_unary(fsq_dtype t, fsq_unop op, int64_t n, void *y, const void *x, double alpha) {
  HALF_FIRST(unary, t, op, n, y, x, alpha);
  DISPATCH(unary, t, op, n, y, x, alpha);
}
static void k_unary_backward(fsq_dtype t, fsq_unop op, int64_t n, void *dx, const void *dy,
                             const void *x, const void *y, double alpha) {
  HALF_FIRST(unary_backward, t, op, n, dx, dy, x, y, alpha);
  DISPATCH(unary_backward, t, op, n, dx, dy, x, y, alpha);
}
static void k_axpy(fsq_dtype t, int64_t n, double alpha, const void *x, void *y) {
  HALF_FIRST(axpy, t, n, alpha, x, y);
  DISPATCH(axpy, t, n, alpha, x, y);
}
static void k_softmax(fsq_dtype t, int64_t rows, int64_t s, void *y, const void *x,
                      const uint8_t *mask, int64_t rpb, int64_t t_len, int causal, int log) {
  HALF_FIRST(softmax, t, rows, s, y, x, mask, rpb, t_len, causal, log);
  DISPATCH(softmax, t, rows, s, y, x, mask, rpb, t_len, causal, log);
}
static void k_softmax_backward(fsq_dtype t, int64_t rows, int64_t s, void *dx, const void *dy,
                               const void *y, int log) {
  HALF_FIRST(softmax_backward, t, rows, s, dx, dy, y, log);
  DISPATCH(softmax_backward, t, rows, s, dx, dy, y, log);
}
static void k_layer_norm(fsq_dtype t, int64_t rows, int64_t c, void *y, void *mean, void *rstd,
                         const void *x, const void *w, const void *b, double eps) {
  HALF_FIRST(layer_norm, t, rows, c, y, mean, rstd, x, w, b, eps);
  DISPATCH(layer_norm, t, rows, c, y, mean, rstd, x, w, b, eps);
}
static void k_layer_norm_backward(fsq_dtype t, int64_t rows, int64_t c, void *dx, void *dw,
                                  void *db, const void *dy, const void *x, const void *w,
                                  const void *mean, const void *rstd) {
  HALF_FIRST(layer_norm_backward, t, rows, c, dx, dw, db, dy, x, w, mean, rstd);
  DISPATCH(layer_norm_backward, t, rows, c, dx, dw, db, dy, x, w, mean, rstd);
}
static void k_dropout(fsq_dtype t, int64_t n, void *y, const void *x, double p, uint64_t seed,
                      uint64_t stream, int accumulate) {
  HALF_FIRST(dropout, t, n, y, x, p, seed, stream, accumulate);
  DISPATCH(dropout, t, n, y, x, p, seed, stream, accumulate);
}
static void k_embedding(fsq_dtype t, int64_t n, int64_t d, void *out, const void *w,
                        const int64_t *idx, double scale) {
  HALF_FIRST(embedding, t, n, d, out, w, idx, scale);
  DISPATCH(embedding, t, n, d, out, w, idx, scale);
}
static void k_embedding_backward(fsq_dtype t, int64_t n, int64_t d, void *dw, const void *dy,
                                 const int64_t *idx, int64_t pad, double scale) {
  HALF_FIRST(embedding_backward, t, n, d, dw, dy, idx, pad, scale);
  DISPATCH(embedding_backward, t, n, d, dw, dy, idx, pad, scale);
}
/* Data movement by element width, so every dtype can be reordered. */
#define BY_WIDTH(name, t, ...) \
  do { \
    switch (fsq_dtype_size(t)) { \
    case 8: name##_i64(__VA_ARGS__); break; \
    case 4: name##_i32(__VA_ARGS__); break; \
    case 2: name##_b2(__VA_ARGS__); break; \
    default: name##_b1(__VA_ARGS__); break; \
    } \
  } while (0)

static void k_index_select(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *out,
                           const void *x, const int64_t *idx, int64_t n) {
  BY_WIDTH(index_select, t, outer, s, inner, out, x, idx, n);
}
static void k_gather(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n, void *out,
                     const void *x, const int64_t *idx) {
  BY_WIDTH(gather, t, outer, s, inner, n, out, x, idx);
}
static void k_gather_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n,
                              void *dx, const void *dy, const int64_t *idx) {
  HALF_FIRST(gather_backward, t, outer, s, inner, n, dx, dy, idx);
  DISPATCH(gather_backward, t, outer, s, inner, n, dx, dy, idx);
}
static void k_index_select_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                                    void *dx, const void *dy, const int64_t *idx, int64_t n) {
  HALF_FIRST(index_select_backward, t, outer, s, inner, dx, dy, idx, n);
  DISPATCH(index_select_backward, t, outer, s, inner, dx, dy, idx, n);
}
static void k_reduce_sum(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                         const void *x, double scale) {
  HALF_FIRST(reduce_sum, t, outer, s, inner, y, x, scale);
  DISPATCH(reduce_sum, t, outer, s, inner, y, x, scale);
}
static void k_reduce_max(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                         int64_t *argmax, const void *x) {
  HALF_FIRST(reduce_max, t, outer, s, inner, y, argmax, x);
  DISPATCH(reduce_max, t, outer, s, inner, y, argmax, x);
}
static void k_reduce_max_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                                  void *dx, const void *dy, const int64_t *argmax) {
  HALF_FIRST(reduce_max_backward, t, outer, s, inner, dx, dy, argmax);
  DISPATCH(reduce_max_backward, t, outer, s, inner, dx, dy, argmax);
}
static void k_masked_fill(fsq_dtype t, int ndim, const int64_t *shape, void *out, const void *x,
                          const uint8_t *mask, const int64_t *ms, double value) {
  HALF_FIRST(masked_fill, t, ndim, shape, out, x, mask, ms, value);
  DISPATCH(masked_fill, t, ndim, shape, out, x, mask, ms, value);
}
static void k_ls_nll(fsq_dtype t, int64_t n, int64_t v, const void *lp, const int64_t *target,
                     double eps, int64_t ignore, void *loss, void *nll) {
  HALF_FIRST(label_smoothed_nll, t, n, v, lp, target, eps, ignore, loss, nll);
  DISPATCH(label_smoothed_nll, t, n, v, lp, target, eps, ignore, loss, nll);
}
static void k_ls_nll_backward(fsq_dtype t, int64_t n, int64_t v, void *dlp,
                              const int64_t *target, double eps, int64_t ignore, double g_loss,
                              double g_nll) {
  HALF_FIRST(label_smoothed_nll_backward, t, n, v, dlp, target, eps, ignore, g_loss, g_nll);
  DISPATCH(label_smoothed_nll_backward, t, n, v, dlp, target, eps, ignore, g_loss, g_nll);
}

static void k_cross_entropy(fsq_dtype t, int64_t n, int64_t v, const void *x,
                            const int64_t *target, double eps, int64_t ignore, void *lse,
                            void *loss, void *nll) {
  HALF_FIRST(cross_entropy, t, n, v, x, target, eps, ignore, lse, loss, nll);
  DISPATCH(cross_entropy, t, n, v, x, target, eps, ignore, lse, loss, nll);
}
static void k_cross_entropy_backward(fsq_dtype t, int64_t n, int64_t v, void *dx, const void *x,
                                     const void *lse, const int64_t *target, double eps,
                                     int64_t ignore, double g_loss, double g_nll,
                                     int accumulate) {
  HALF_FIRST(cross_entropy_backward, t, n, v, dx, x, lse, target, eps, ignore, g_loss, g_nll,
             accumulate);
  DISPATCH(cross_entropy_backward, t, n, v, dx, x, lse, target, eps, ignore, g_loss, g_nll,
           accumulate);
}
static void k_relu_mask(fsq_dtype t, int64_t n, void *g, const void *y) {
  HALF_FIRST(relu_mask, t, n, g, y);
  DISPATCH(relu_mask, t, n, g, y);
}

#define FILL_NAME_(isa) fsq_kcpu_fill_##isa
#define FILL_NAME(isa) FILL_NAME_(isa)

void FILL_NAME(FSQ_ISA)(fsq_kernels *k) {
  k->copy = k_copy;
  k->fill = k_fill;
  k->binary = k_binary;
  k->unary = k_unary;
  k->unary_backward = k_unary_backward;
  k->axpy = k_axpy;
  k->softmax = k_softmax;
  k->softmax_backward = k_softmax_backward;
  k->layer_norm = k_layer_norm;
  k->layer_norm_backward = k_layer_norm_backward;
  k->dropout = k_dropout;
  k->embedding = k_embedding;
  k->embedding_backward = k_embedding_backward;
  k->index_select = k_index_select;
  k->index_select_backward = k_index_select_backward;
  k->gather = k_gather;
  k->gather_backward = k_gather_backward;
  k->reduce_sum = k_reduce_sum;
  k->reduce_max = k_reduce_max;
  k->reduce_max_backward = k_reduce_max_backward;
  k->masked_fill = k_masked_fill;
  k->label_smoothed_nll = k_ls_nll;
  k->label_smoothed_nll_backward = k_ls_nll_backward;
  k->cross_entropy = k_cross_entropy;
  k->cross_entropy_backward = k_cross_entropy_backward;
  k->relu_mask = k_relu_mask;
  k->adam = k_adam;
  k->sum_squares = k_sum_squares;
}
