/* fsq_kernels.h: the backend table. A backend (kernels/cpu, later
 * kernels/cuda) fills one fsq_kernels struct of functions over raw buffers;
 * framework/tensor holds the shape logic and autograd and reaches all
 * arithmetic through this table. Kernels know nothing of tensors or tapes.
 *
 * Conventions: element counts and strides are in elements; buffers are
 * contiguous unless a stride array is given; "accumulate" kernels add into
 * their output (+=), which is how gradients are written. The float kernels
 * run in FSQ_F32 and FSQ_F64, and take FSQ_F16 and FSQ_BF16 storage too
 * (mixed-precision training): computed in f32 and rounded once, to nearest
 * even, on the store; GEMMs round C once (beta * C included), and sums into
 * a 16-bit output (accumulating copies, embedding_backward and the index
 * scatter-adds) are summed in f32 and rounded once per element. Both
 * backends do so; the CPU's 16-bit path is for checking, not speed (it
 * widens to f32, runs its f32 kernels and rounds), so that 16-bit code runs
 * and is tested without a GPU. cast handles every dtype. */
#ifndef FSQ_KERNELS_H
#define FSQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fsq_dtype {
  FSQ_F32 = 0,
  FSQ_F64,
  FSQ_F16,
  FSQ_BF16,
  FSQ_I32,
  FSQ_I64,
  FSQ_U8,
  FSQ_DTYPE_COUNT
} fsq_dtype;

#define FSQ_KMAX_DIMS 8

typedef enum fsq_binop { FSQ_BIN_ADD, FSQ_BIN_SUB, FSQ_BIN_MUL, FSQ_BIN_DIV } fsq_binop;

/* y = f(x); alpha is the factor of SCALE and the value of ADD_SCALAR. */
typedef enum fsq_unop {
  FSQ_UN_SCALE,
  FSQ_UN_ADD_SCALAR,
  FSQ_UN_RELU,
  FSQ_UN_GELU,      /* x * Phi(x), erf form */
  FSQ_UN_GELU_TANH, /* tanh approximation */
  FSQ_UN_TANH,
  FSQ_UN_SIGMOID,
  FSQ_UN_EXP,
  FSQ_UN_LOG
} fsq_unop;

typedef struct fsq_kernels {
  const char *name; /* e.g. "cpu-avx512" */

  /* Memory. host is 1 when the backend's buffers are host memory (the CPU
   * backend), which C code may read and write directly. A device backend
   * (host 0) owns memory the host never touches: tensors, parameters and
   * arenas on it are made, cleared and read only through these entries and
   * the kernels below. mem_alloc: NULL when out of memory; 64-byte aligned
   * at least. mem_download returns once the bytes are on the host, after
   * every kernel launched before it has finished. */
  int host;
  void *(*mem_alloc)(size_t bytes);
  void (*mem_free)(void *p);
  void (*mem_zero)(void *p, size_t bytes);
  void (*mem_upload)(void *dst, const void *host_src, size_t bytes);
  void (*mem_download)(void *host_dst, const void *src, size_t bytes);
  /* FSQ_OK, or the first failure of this backend's functions since the last
   * call (they return nothing; a device reports launch and copy errors
   * here), with fsq_error set to it. Callers check it at sync points: after
   * an update, after a download they act on. */
  fsq_status (*status)(void);

  /* C = alpha * op(A) op(B) + beta * C, row-major; op(A): [M, K], op(B): [K, N]. */
  void (*gemm)(fsq_dtype t, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
               double beta, void *c, int64_t ldc);

  /* batch GEMMs as gemm's: product i reads a + a_off[i], b + b_off[i] and
   * writes c + c_off[i] (element offsets); the c's must not overlap. Small
   * products run side by side, one per thread, instead of each split. */
  void (*gemm_batched)(fsq_dtype t, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                       double alpha, const void *a, int64_t lda, const int64_t *a_off,
                       const void *b, int64_t ldb, const int64_t *b_off, double beta, void *c,
                       int64_t ldc, const int64_t *c_off, int64_t batch);

  /* dst[idx] (+)= src[idx] over shape; strides may be 0 (broadcast on src,
   * reduction on dst when accumulate is set). Any dtype when !accumulate. */
  void (*copy)(fsq_dtype t, int ndim, const int64_t *shape, void *dst, const int64_t *dst_stride,
               const void *src, const int64_t *src_stride, int accumulate);
  /* Elementwise conversion; f16/bf16 round to nearest even. */
  void (*cast)(fsq_dtype dst_t, void *dst, fsq_dtype src_t, const void *src, int64_t n);
  void (*fill)(fsq_dtype t, void *dst, int64_t n, double value);

  /* out[idx] = a[idx] op b[idx]; out contiguous over shape, a and b strided. */
  void (*binary)(fsq_dtype t, fsq_binop op, int ndim, const int64_t *shape, void *out,
                 const void *a, const int64_t *a_stride, const void *b, const int64_t *b_stride);
  /* y[i] = f(x[i]) (y may equal x). */
  void (*unary)(fsq_dtype t, fsq_unop op, int64_t n, void *y, const void *x, double alpha);
  /* dx[i] += dy[i] * f'(x[i]) given x and y = f(x). */
  void (*unary_backward)(fsq_dtype t, fsq_unop op, int64_t n, void *dx, const void *dy,
                         const void *x, const void *y, double alpha);
  /* y[i] += alpha * x[i] */
  void (*axpy)(fsq_dtype t, int64_t n, double alpha, const void *x, void *y);

  /* Softmax over the last dim of x: [R, S]. Row r is query i = r % t_len of
   * batch b = r / rows_per_batch. mask: u8 [B, S], nonzero = padding (or NULL);
   * causal masks key j > i + (S - t_len). Fully masked rows give 0 (softmax)
   * or -inf (log). y may be x (in place). */
  void (*softmax)(fsq_dtype t, int64_t rows, int64_t s, void *y, const void *x,
                  const uint8_t *mask, int64_t rows_per_batch, int64_t t_len, int causal,
                  int log);
  /* dx += softmax backward from y and dy. */
  void (*softmax_backward)(fsq_dtype t, int64_t rows, int64_t s, void *dx, const void *dy,
                           const void *y, int log);

  /* x, y: [R, C]; w, b: [C] (either may be NULL); mean, rstd: [R], same
   * dtype as x, but f32 when x is f16/bf16 (fairseq's --fp16 layer norm
   * keeps its statistics in f32); the backward reads them so. */
  void (*layer_norm)(fsq_dtype t, int64_t rows, int64_t c, void *y, void *mean, void *rstd,
                     const void *x, const void *w, const void *b, double eps);
  /* dx, dw, db accumulate (each may be NULL). */
  void (*layer_norm_backward)(fsq_dtype t, int64_t rows, int64_t c, void *dx, void *dw,
                              void *db, const void *dy, const void *x, const void *w,
                              const void *mean, const void *rstd);

  /* y (+)= x * keep / (1 - p), keep = uniform(seed, stream, i) >= p. The mask is
   * a pure function of the element index, so any thread count gives it. */
  void (*dropout)(fsq_dtype t, int64_t n, void *y, const void *x, double p, uint64_t seed,
                  uint64_t stream, int accumulate);

  /* out: [N, D] = w[idx[n]] * scale; w: [V, D]. */
  void (*embedding)(fsq_dtype t, int64_t n, int64_t d, void *out, const void *w,
                    const int64_t *idx, double scale);
  /* dw[idx[n]] += dy[n] * scale, skipping idx == padding_idx. */
  void (*embedding_backward)(fsq_dtype t, int64_t n, int64_t d, void *dw, const void *dy,
                             const int64_t *idx, int64_t padding_idx, double scale);

  /* x: [O, S, I] -> out: [O, N, I] with out[o, j] = x[o, idx[j]] (any dtype);
   * backward adds (float). */
  void (*index_select)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *out,
                       const void *x, const int64_t *idx, int64_t n);
  void (*index_select_backward)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *dx,
                                const void *dy, const int64_t *idx, int64_t n);
  /* torch.gather: x: [O, S, I], idx and out: [O, N, I],
   * out[o, j, i] = x[o, idx[o, j, i], i] (any dtype); backward adds (float). */
  void (*gather)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n, void *out,
                 const void *x, const int64_t *idx);
  void (*gather_backward)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n,
                          void *dx, const void *dy, const int64_t *idx);

  /* x: [O, S, I] -> y: [O, I]: sum or max over S (argmax: [O, I] or NULL). */
  void (*reduce_sum)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                     const void *x, double scale);
  void (*reduce_max)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                     int64_t *argmax, const void *x);
  /* dx[o, argmax[o, i], i] += dy[o, i] */
  void (*reduce_max_backward)(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *dx,
                              const void *dy, const int64_t *argmax);

  /* out = mask ? value : x over shape; x and out contiguous, mask u8 strided. */
  void (*masked_fill)(fsq_dtype t, int ndim, const int64_t *shape, void *out, const void *x,
                      const uint8_t *mask, const int64_t *mask_stride, double value);

  /* fairseq's label_smoothed_nll_loss, reduce=sum. lprobs: [N, V], target: [N].
   * loss/nll: one element each of dtype t, but f32 when t is f16/bf16 (sums
   * in f32: fairseq's lprobs are log_softmax(logits.float())); dlprobs keeps t. */
  void (*label_smoothed_nll)(fsq_dtype t, int64_t n, int64_t v, const void *lprobs,
                             const int64_t *target, double epsilon, int64_t ignore_index,
                             void *loss, void *nll);
  /* dlprobs += g_loss * dloss/dlprobs + g_nll * dnll/dlprobs. */
  void (*label_smoothed_nll_backward)(fsq_dtype t, int64_t n, int64_t v, void *dlprobs,
                                      const int64_t *target, double epsilon,
                                      int64_t ignore_index, double g_loss, double g_nll);

  /* The same loss of log_softmax(logits) in one pass, without materializing
   * the [N, V] log-probabilities: logits: [N, V]; lse: [N] receives each
   * row's log-sum-exp (every row, ignored ones too), which backward reuses.
   * f16/bf16 logits are computed in f32, and lse, loss and nll are then f32
   * (fairseq takes log_softmax of logits.float()); dlogits keeps t. */
  void (*cross_entropy)(fsq_dtype t, int64_t n, int64_t v, const void *logits,
                        const int64_t *target, double epsilon, int64_t ignore_index, void *lse,
                        void *loss, void *nll);
  /* dlogits (+)= the gradient of g_loss * loss + g_nll * nll, from the logits
   * and their lse: G - softmax * sum(G) with G the label_smoothed_nll one.
   * Without accumulate, dlogits is written (ignored rows get 0). */
  void (*cross_entropy_backward)(fsq_dtype t, int64_t n, int64_t v, void *dlogits,
                                 const void *logits, const void *lse, const int64_t *target,
                                 double epsilon, int64_t ignore_index, double g_loss,
                                 double g_nll, int accumulate);
  /* ReLU's backward from its output, in place: g[i] = y[i] > 0 ? g[i] : 0. */
  void (*relu_mask)(fsq_dtype t, int64_t n, void *g, const void *y);

  /* One step of fairseq's Adam (AdamW: decoupled weight decay) over one f32
   * parameter, in place; p, g, exp_avg, exp_avg_sq: [n]. With
   * gi = g[i] * grad_scale (1: the gradient as it is; unscaling f16
   * gradients or clipping multiply into it):
   *   m = b1 m + (1 - b1) gi;  v = b2 v + (1 - b2) gi^2;  p -= weight_decay lr p;
   *   p -= lr sqrt(1 - b2^step) / (1 - b1^step) * m / (sqrt(v) + eps)
   * in f32 (the scalars in double first, fsq_k_adam_prepare), without fused
   * multiply-adds: every backend and ISA gives the same bits. step counts
   * this parameter's updates, this one included (1 at the first). */
  void (*adam)(int64_t n, float *p, const float *g, float *exp_avg, float *exp_avg_sq,
               double lr, double beta1, double beta2, double eps, double weight_decay,
               int64_t step, double grad_scale);
  /* out[0] += sum of x[i]^2 in double; x: [n] f32, out: one double in the
   * backend's memory. The CPU adds in a fixed order that depends on n only
   * (16384-element chunks, each over 4 interleaved lanes), not on threads. */
  void (*sum_squares)(int64_t n, const float *x, double *out);
} fsq_kernels;

/* The CPU backend, with the widest SIMD this processor supports (AVX-512,
 * AVX2 or portable C, chosen once at first call; $FSQ_CPU_ISA=avx512|avx2|generic
 * forces one). Also sets the BLAS thread count to fsq_num_threads(). */
const fsq_kernels *fsq_kernels_cpu(void);
/* "OpenBLAS <core>" (the kernels OpenBLAS runs), or "BLAS". */
const char *fsq_kernels_blas_name(void);
/* Element size in bytes and name ("f32", ...). */
size_t fsq_dtype_size(fsq_dtype t);
const char *fsq_dtype_name(fsq_dtype t);

/* Scalar conversions used by cast (round to nearest even). */
uint16_t fsq_f32_to_f16(float f);
float fsq_f16_to_f32(uint16_t h);
uint16_t fsq_f32_to_bf16(float f);
float fsq_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_KERNELS_H */
