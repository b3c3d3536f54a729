/* fsq_tensor.h: tensors, the op API and the autograd tape.
 *
 * A context (fsq_ctx) owns one step's activations (an arena), the tape, the
 * grad mode, the dropout seed and a sticky status. Ops compute at once and,
 * when grad mode is on and an input requires grad, record a node; fsq_backward
 * walks the nodes in reverse and accumulates (+=) into .grad. Parameters live
 * in an fsq_params store (persistent values + grads, named by checkpoint key).
 *
 * Errors: an op that fails returns NULL, sets fsq_error and the context's
 * status; an op given a NULL input returns NULL at once, so model code chains
 * ops and checks fsq_ctx_status() (or the last result) once.
 *
 * Shapes have up to FSQ_MAX_DIMS dims; strides are in elements; views
 * (transpose, permute, narrow, reshape of contiguous data) share storage and
 * every op accepts non-contiguous input. Float ops run in f32 and f64; f16,
 * bf16, i32, i64 and u8 are storage types reached through fsq_cast. */
#ifndef FSQ_TENSOR_H
#define FSQ_TENSOR_H

#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FSQ_MAX_DIMS FSQ_KMAX_DIMS

typedef struct fsq_ctx fsq_ctx;
typedef struct fsq_node fsq_node;
typedef struct fsq_params fsq_params;

typedef struct fsq_tensor {
  fsq_dtype dtype;
  int ndim;
  int64_t shape[FSQ_MAX_DIMS];
  int64_t stride[FSQ_MAX_DIMS]; /* elements */
  void *data;                   /* first element */
  struct fsq_tensor *grad;      /* contiguous, same shape; NULL until backward */
  int requires_grad;
  fsq_node *node;   /* the op that produced it (NULL for leaves) */
  const char *name; /* parameters: the checkpoint key */
  /* Whose memory data is: the backend of the context or parameter store
   * that made it. NULL, or a backend with host set, is host memory that C
   * code may read directly; any other is reached through the backend's
   * table only (fsq_get, fsq_download, fsq_upload do). */
  const fsq_kernels *backend;
} fsq_tensor;

/* ---- context -------------------------------------------------------------- */
/* arena_block_bytes: size of the activation arena's blocks (0: 64 MiB).
 * The context computes with the CPU backend. */
fsq_ctx *fsq_ctx_create(size_t arena_block_bytes);
/* The same on backend k (fsq_kernels_cpu(), or a device's table): every
 * tensor the context makes has its data in k's memory, and every op runs
 * k's kernels. Inputs of its ops must live there too (a parameter store
 * made with fsq_params_create_on(k), fsq_from_data, fsq_wrap of k's memory). */
fsq_ctx *fsq_ctx_create_on(const fsq_kernels *k, size_t arena_block_bytes);
void fsq_ctx_destroy(fsq_ctx *ctx);
/* Ends a step: drops the tape and every activation (the arena is reused),
 * clears the status and advances the dropout step counter. */
void fsq_ctx_reset(fsq_ctx *ctx);
fsq_status fsq_ctx_status(const fsq_ctx *ctx);
/* Grad mode (default on): off records nothing (inference, no_grad). Returns
 * the previous mode so callers can restore it. */
int fsq_ctx_set_grad(fsq_ctx *ctx, int enabled);
int fsq_ctx_grad_enabled(const fsq_ctx *ctx);
/* Training mode (default on): dropout is the identity when off. */
void fsq_ctx_set_training(fsq_ctx *ctx, int training);
/* Dropout masks are Philox(seed, stream = step << 20 | call index, element):
 * the same seed and step give the same masks on any thread count. */
void fsq_ctx_set_seed(fsq_ctx *ctx, uint64_t seed, uint64_t step);
const fsq_kernels *fsq_ctx_kernels(const fsq_ctx *ctx);
/* The arena of the tensors' data (in the backend's memory). */
fsq_arena *fsq_ctx_arena(fsq_ctx *ctx);

/* ---- tensors -------------------------------------------------------------- */
int64_t fsq_numel(const fsq_tensor *t);
int fsq_is_contiguous(const fsq_tensor *t);
/* dim < 0 counts from the end; returns -1 when out of range. */
int fsq_dim_index(const fsq_tensor *t, int dim);
/* Uninitialized / zero / filled arena tensors (contiguous). */
fsq_tensor *fsq_empty(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape);
fsq_tensor *fsq_zeros(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape);
fsq_tensor *fsq_full(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, double v);
/* A copy of host data (contiguous, dtype-sized elements) in the context's
 * memory. */
fsq_tensor *fsq_from_data(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape,
                          const void *data);
/* A tensor over caller-owned memory (no copy); the caller keeps it alive. */
fsq_tensor *fsq_wrap(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Element i (row-major logical order) as double, for tests and small reads
 * (from a device: one transfer, which waits for the kernels before it). */
double fsq_get(const fsq_tensor *t, int64_t i);
/* t's elements in row-major order into host memory (numel * element size
 * bytes); t lives in ctx's memory (or on the host). */
fsq_status fsq_download(fsq_ctx *ctx, const fsq_tensor *t, void *host_dst);
/* Overwrites contiguous t with host data (numel * element size bytes). */
fsq_status fsq_upload(const fsq_tensor *t, const void *host_src);
/* t's elements in row-major order where the host can read them: t's own
 * memory when it is contiguous on the host, else a copy in ctx's host arena
 * (valid until fsq_ctx_reset). For small reads that decide shapes or
 * positions (tokens, masks); NULL with the context's status on failure. */
const void *fsq_host_data(fsq_ctx *ctx, const fsq_tensor *t);
/* Host scratch memory for this step (64-byte aligned, released by
 * fsq_ctx_reset): what the host computes before fsq_from_data uploads it. */
void *fsq_ctx_host_alloc(fsq_ctx *ctx, size_t bytes);

/* ---- parameters ----------------------------------------------------------- */
/* Values and gradients in host memory (the CPU backend's). */
fsq_params *fsq_params_create(void);
/* The same in backend k's memory. */
fsq_params *fsq_params_create_on(const fsq_kernels *k);
void fsq_params_destroy(fsq_params *p);
/* A zero-filled parameter with a zero gradient; the name is copied and must
 * be unique. The tensor stays valid until fsq_params_destroy. */
fsq_tensor *fsq_params_add(fsq_params *p, const char *name, fsq_dtype dtype, int ndim,
                           const int64_t *shape);
/* The same without a gradient and never requiring grad: optimizer state,
 * fixed buffers (e.g. sinusoidal positions). */
fsq_tensor *fsq_params_add_buffer(fsq_params *p, const char *name, fsq_dtype dtype, int ndim,
                                  const int64_t *shape);
fsq_tensor *fsq_params_find(const fsq_params *p, const char *name);
size_t fsq_params_count(const fsq_params *p);
fsq_tensor *fsq_params_at(const fsq_params *p, size_t i); /* insertion order */
void fsq_params_zero_grad(fsq_params *p);
/* fairseq's model.half() / model.bfloat16(): every f32 parameter and buffer
 * (and its gradient) becomes dtype (FSQ_F16 or FSQ_BF16), its values
 * rounded to nearest even. The tensors keep their addresses, so a model
 * built over them runs in dtype from then on. Out of memory leaves p as
 * it was. */
fsq_status fsq_params_convert(fsq_params *p, fsq_dtype dtype);
/* A tensor that is a leaf of the graph but lives in the step arena (inputs
 * whose gradient a test wants): gets a zeroed grad on first backward. */
void fsq_requires_grad(fsq_tensor *t);

/* ---- autograd ------------------------------------------------------------- */
/* loss must have one element; its gradient starts at 1. Every tensor on the
 * path that requires grad gets .grad += d loss / d tensor. */
fsq_status fsq_backward(fsq_ctx *ctx, fsq_tensor *loss);
/* Called by fsq_backward once per leaf (a tensor that requires grad and was
 * made by no op: a parameter, or an input given fsq_requires_grad) that is
 * an input of some op on the tape and has a gradient buffer, as soon as that
 * leaf's gradient is final for this backward: right after the earliest
 * recorded op using it has run its backward (or been skipped, being off the
 * loss path). The leaf's .grad must not be written before fsq_backward
 * returns; reading it, or reducing it in place across processes, is fine.
 * A status other than FSQ_OK stops backward with that status. fn NULL:
 * no hook (the default). The hook stays set until changed. */
typedef fsq_status (*fsq_grad_ready_fn)(fsq_tensor *leaf, void *user);
void fsq_ctx_set_grad_ready_hook(fsq_ctx *ctx, fsq_grad_ready_fn fn, void *user);

/* ---- views and layout (share storage when possible) ------------------------ */
fsq_tensor *fsq_transpose(fsq_ctx *ctx, fsq_tensor *x, int d0, int d1);
fsq_tensor *fsq_permute(fsq_ctx *ctx, fsq_tensor *x, const int *perm);
/* One entry of shape may be -1. Copies only when x is not contiguous. */
fsq_tensor *fsq_reshape(fsq_ctx *ctx, fsq_tensor *x, int ndim, const int64_t *shape);
fsq_tensor *fsq_narrow(fsq_ctx *ctx, fsq_tensor *x, int dim, int64_t start, int64_t len);
fsq_tensor *fsq_contiguous(fsq_ctx *ctx, fsq_tensor *x); /* x itself when contiguous */
fsq_tensor *fsq_concat(fsq_ctx *ctx, int n, fsq_tensor *const *xs, int dim);
/* n equal parts along dim into out[0..n) (views); returns status. */
fsq_status fsq_split(fsq_ctx *ctx, fsq_tensor *x, int dim, int n, fsq_tensor **out);
/* Differentiable between float dtypes; any dtype otherwise (no grad). */
fsq_tensor *fsq_cast(fsq_ctx *ctx, fsq_tensor *x, fsq_dtype dtype);

/* ---- elementwise (numpy broadcasting) --------------------------------------- */
fsq_tensor *fsq_add(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b);
fsq_tensor *fsq_sub(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b);
fsq_tensor *fsq_mul(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b);
fsq_tensor *fsq_div(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b);
/* x: [..., C] + bias: [C] */
fsq_tensor *fsq_bias_add(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *bias);
fsq_tensor *fsq_scale(fsq_ctx *ctx, fsq_tensor *x, double alpha);
fsq_tensor *fsq_add_scalar(fsq_ctx *ctx, fsq_tensor *x, double v);
fsq_tensor *fsq_relu(fsq_ctx *ctx, fsq_tensor *x);
fsq_tensor *fsq_gelu(fsq_ctx *ctx, fsq_tensor *x);      /* erf form */
fsq_tensor *fsq_gelu_tanh(fsq_ctx *ctx, fsq_tensor *x); /* tanh approximation */
fsq_tensor *fsq_tanh(fsq_ctx *ctx, fsq_tensor *x);
fsq_tensor *fsq_sigmoid(fsq_ctx *ctx, fsq_tensor *x);
fsq_tensor *fsq_exp(fsq_ctx *ctx, fsq_tensor *x);
fsq_tensor *fsq_ln(fsq_ctx *ctx, fsq_tensor *x); /* natural log */
/* a * sigmoid(b) of the two halves of dim (fairseq's F.glu). */
fsq_tensor *fsq_glu(fsq_ctx *ctx, fsq_tensor *x, int dim);
/* Identity when p == 0 or not training. */
fsq_tensor *fsq_dropout(fsq_ctx *ctx, fsq_tensor *x, double p);
/* residual + dropout(x, p) (same shapes), as fsq_add(residual,
 * fsq_dropout(x, p)) computes it, mask included, storing one output. */
fsq_tensor *fsq_dropout_add(fsq_ctx *ctx, fsq_tensor *residual, fsq_tensor *x, double p);
/* The same, the sum written over x's storage when that changes nothing
 * backward computes (x an op's contiguous f32/f64 output no recorded
 * backward reads), else stored apart: for a body output that no later op
 * reads, as residual blocks' (PyTorch's inplace=True). */
fsq_tensor *fsq_dropout_add_inplace(fsq_ctx *ctx, fsq_tensor *residual, fsq_tensor *x,
                                    double p);
/* mask: u8, broadcastable to x; nonzero positions become value (no grad). */
fsq_tensor *fsq_masked_fill(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *mask, double value);

/* ---- reductions ----------------------------------------------------------- */
fsq_tensor *fsq_sum(fsq_ctx *ctx, fsq_tensor *x, int dim, int keepdim);
fsq_tensor *fsq_mean(fsq_ctx *ctx, fsq_tensor *x, int dim, int keepdim);
fsq_tensor *fsq_max(fsq_ctx *ctx, fsq_tensor *x, int dim, int keepdim);
fsq_tensor *fsq_sum_all(fsq_ctx *ctx, fsq_tensor *x); /* shape [] */

/* ---- linear algebra --------------------------------------------------------- */
/* a: [..., M, K] (or [..., K, M] when trans_a), b: [..., K, N] (or [..., N, K]);
 * batch dims equal, or b 2-D and shared by every batch (a linear layer:
 * fsq_matmul(ctx, x, w, 0, 1) with w: [out, in]). Out: [..., M, N]. */
fsq_tensor *fsq_matmul(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b, int trans_a, int trans_b);
/* alpha * op(a) op(b) as the GEMM's alpha: no scaled copy of an operand is
 * made or kept (attention's scores). */
fsq_tensor *fsq_matmul_scaled(fsq_ctx *ctx, fsq_tensor *a, fsq_tensor *b, int trans_a,
                              int trans_b, double alpha);
/* A linear layer in one op: x: [..., K], w: [N, K], bias: [N] or NULL ->
 * [..., N] = x w^T + bias (the bias is the GEMM's starting value, as
 * torch.addmm), then max(0, .) when relu is set. Stores one [..., N] output
 * where matmul, bias_add and relu store three. */
fsq_tensor *fsq_linear(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *w, fsq_tensor *bias, int relu);
/* fairseq's ConvTBC: x: [T, B, Cin], w: [K, Cin, Cout], bias: [Cout] (or NULL)
 * -> [T + 2 * pad - K + 1, B, Cout]. */
fsq_tensor *fsq_conv_tbc(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *w, fsq_tensor *bias,
                         int64_t pad);

/* ---- normalization, attention, embeddings ------------------------------------ */
/* Over the last dim; weight, bias: [C] or NULL. */
fsq_tensor *fsq_layer_norm(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *weight, fsq_tensor *bias,
                           double eps);
/* Over the last dim. */
fsq_tensor *fsq_softmax(fsq_ctx *ctx, fsq_tensor *x);
fsq_tensor *fsq_log_softmax(fsq_ctx *ctx, fsq_tensor *x);
/* log_softmax written over x itself and x returned: grad mode off, x
 * contiguous. Decoding's [rows, V] step output, where a second buffer of
 * that size only adds memory traffic. */
fsq_tensor *fsq_log_softmax_in_place(fsq_ctx *ctx, fsq_tensor *x);
/* Attention softmax: x: [B*H, T, S] or [B, H, T, S] (b-major rows);
 * key_padding_mask: u8 [B, S], nonzero = pad (or NULL); causal masks key j >
 * i + S - T. Masked weights are 0; a fully masked row is all 0. */
fsq_tensor *fsq_softmax_masked(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *key_padding_mask,
                               int causal, int log);
/* weight: [V, D], indices: i64 [...] -> [..., D] * scale; no gradient reaches
 * row padding_idx (pass -1 for none). */
fsq_tensor *fsq_embedding(fsq_ctx *ctx, fsq_tensor *weight, fsq_tensor *indices,
                          int64_t padding_idx, double scale);
/* out = x gathered along dim at indices (i64 [N]), e.g. beam reordering;
 * any dtype (differentiable between float dtypes). */
fsq_tensor *fsq_index_select(fsq_ctx *ctx, fsq_tensor *x, int dim, fsq_tensor *indices);
/* torch.gather: index (i64) has x's shape except along dim;
 * out[..., j, ...] = x[..., index[..., j, ...], ...]; any dtype. */
fsq_tensor *fsq_gather(fsq_ctx *ctx, fsq_tensor *x, int dim, fsq_tensor *index);

/* ---- losses ----------------------------------------------------------------- */
/* fairseq's label_smoothed_nll_loss(lprobs, target, epsilon, ignore_index,
 * reduce=True): lprobs: [N, V], target: i64 [N]. Returns loss (shape []) and,
 * when nll_out is given, nll_loss (shape []); both are differentiable. */
fsq_tensor *fsq_label_smoothed_nll(fsq_ctx *ctx, fsq_tensor *lprobs, fsq_tensor *target,
                                   double epsilon, int64_t ignore_index, fsq_tensor **nll_out);
/* The same from logits: log_softmax then label_smoothed_nll, fused (epsilon 0 is
 * plain cross entropy, summed). */
fsq_tensor *fsq_cross_entropy(fsq_ctx *ctx, fsq_tensor *logits, fsq_tensor *target,
                              double epsilon, int64_t ignore_index, fsq_tensor **nll_out);

/* ---- recurrent ---------------------------------------------------------------- */
/* One LSTM step (PyTorch gate order i, f, g, o): x: [B, In], h, c: [B, H],
 * w_ih: [4H, In], w_hh: [4H, H], b_ih, b_hh: [4H] (either may be NULL).
 * Writes h', c' to *h_out, *c_out. */
fsq_status fsq_lstm_cell(fsq_ctx *ctx, fsq_tensor *x, fsq_tensor *h, fsq_tensor *c,
                         fsq_tensor *w_ih, fsq_tensor *w_hh, fsq_tensor *b_ih,
                         fsq_tensor *b_hh, fsq_tensor **h_out, fsq_tensor **c_out);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_TENSOR_H */
