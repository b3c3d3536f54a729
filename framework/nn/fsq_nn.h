/* fsq_nn.h: layers made of tensor ops, following fairseq/modules.
 *
 * Each layer is a small struct filled by a build function that registers its
 * parameters in an fsq_params store under "<prefix>.<fairseq name>" (so
 * "encoder.layers.0.self_attn.k_proj.weight" is the same key as in a fairseq
 * state dict) and initializes them as fairseq does, drawing from Philox with
 * one stream per parameter name: the same seed gives the same weights in any
 * build order. Forward functions take an fsq_ctx and tensors and return an
 * arena tensor, or NULL with fsq_error set (a failing op inside also sets
 * the context's status; a shape check of the layer itself does not, since
 * fsq_tensor.h has no call for it); a NULL input gives NULL.
 *
 * Transformer layers are time-major: x: [T, B, C], as fairseq's. Token
 * inputs of embeddings are batch-major i64 [B, T], as fairseq's src_tokens.
 * Key padding masks are u8 [B, S], nonzero = pad. Only f32 is supported for
 * the incremental caches. */
#ifndef FSQ_NN_H
#define FSQ_NN_H

#include "core/fsq_core.h"
#include "tensor/fsq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- initialization (one Philox stream per parameter name) ---------------- */
/* The same values wherever t lives (drawn on the host, uploaded to a
 * device); FSQ_ERR_NOMEM when the host copy cannot be made. */
/* U(-bound, bound) */
fsq_status fsq_nn_init_uniform(fsq_tensor *t, double bound, uint64_t seed);
/* N(0, std) */
fsq_status fsq_nn_init_normal(fsq_tensor *t, double std, uint64_t seed);
/* t: [fan_out, fan_in]; U(+-gain * sqrt(6 / (fan_in + fan_out))) */
fsq_status fsq_nn_init_xavier_uniform(fsq_tensor *t, double gain, uint64_t seed);
fsq_status fsq_nn_init_constant(fsq_tensor *t, double value);

/* ---- linear ------------------------------------------------------------------ */
typedef enum fsq_nn_linear_init {
  FSQ_NN_INIT_TORCH,  /* nn.Linear's default: weight and bias U(+-1/sqrt(in)) */
  FSQ_NN_INIT_XAVIER  /* fairseq's Linear(): xavier_uniform_ weight, bias 0 */
} fsq_nn_linear_init;

typedef struct fsq_nn_linear {
  fsq_tensor *weight; /* [out, in] */
  fsq_tensor *bias;   /* [out] or NULL */
  int64_t in, out;
} fsq_nn_linear;

/* Registers <prefix>.weight and (when bias) <prefix>.bias. */
fsq_status fsq_nn_linear_build(fsq_nn_linear *l, fsq_params *p, const char *prefix, int64_t in,
                               int64_t out, int bias, fsq_nn_linear_init init, uint64_t seed);
/* x: [..., in] -> [..., out] */
fsq_tensor *fsq_nn_linear_forward(fsq_ctx *ctx, const fsq_nn_linear *l, fsq_tensor *x);

/* ---- token embedding ------------------------------------------------------------ */
typedef struct fsq_nn_embedding {
  fsq_tensor *weight; /* [num, dim] */
  int64_t num, dim, padding_idx;
} fsq_nn_embedding;

/* fairseq's Embedding(): N(0, dim^-0.5), row padding_idx zero. */
fsq_status fsq_nn_embedding_build(fsq_nn_embedding *e, fsq_params *p, const char *prefix,
                                  int64_t num, int64_t dim, int64_t padding_idx, uint64_t seed);
/* tokens: i64 [B, T] -> [B, T, dim] * scale (fairseq's embed_scale); the
 * padding row gets no gradient. */
fsq_tensor *fsq_nn_embedding_forward(fsq_ctx *ctx, const fsq_nn_embedding *e, fsq_tensor *tokens,
                                     double scale);

/* ---- positional embeddings -------------------------------------------------------- */
/* fairseq's utils.make_positions: tokens: i64 [B, T] -> i64 [B, T]; padding
 * positions are padding_idx, others padding_idx + 1 + (non-pad count before
 * them), so left padding does not shift the first real token. */
fsq_tensor *fsq_nn_make_positions(fsq_ctx *ctx, fsq_tensor *tokens, int64_t padding_idx);

typedef struct fsq_nn_sinusoidal {
  float *table; /* [rows, dim], row padding_idx zero; owned, grown on demand */
  int64_t rows, dim, padding_idx;
  /* The table's copy in a device backend's memory, made by the first
   * forward on that device and remade when the table grows. */
  void *device_table;
  const fsq_kernels *device;
  int64_t device_rows;
} fsq_nn_sinusoidal;

/* fairseq's SinusoidalPositionalEmbedding (no parameters): half = dim / 2,
 * freq_i = exp(-i * log(10000) / (half - 1)), row p = [sin(p freq), cos(p
 * freq)] (+ a zero column when dim is odd). init_size rows are made now. */
fsq_status fsq_nn_sinusoidal_init(fsq_nn_sinusoidal *s, int64_t dim, int64_t padding_idx,
                                  int64_t init_size);
void fsq_nn_sinusoidal_free(fsq_nn_sinusoidal *s);
/* tokens: i64 [B, T] -> [B, T, dim] (no gradient). step >= 0 is incremental
 * decoding: every row gets position padding_idx + step + 1 (fairseq uses the
 * length of the prefix, ignoring pads), and tokens may be [B, 1]. step < 0:
 * make_positions. May grow the table (allocates) past init_size. */
fsq_tensor *fsq_nn_sinusoidal_forward(fsq_ctx *ctx, fsq_nn_sinusoidal *s, fsq_tensor *tokens,
                                      int64_t step);

typedef struct fsq_nn_learned_pos {
  fsq_tensor *weight; /* [num + padding_idx + 1, dim] */
  int64_t max_positions, dim, padding_idx;
} fsq_nn_learned_pos;

/* fairseq's PositionalEmbedding(learned=True): num_embeddings + padding_idx +
 * 1 rows, N(0, dim^-0.5), padding row zero. Registers <prefix>.weight. */
fsq_status fsq_nn_learned_pos_build(fsq_nn_learned_pos *e, fsq_params *p, const char *prefix,
                                    int64_t num_embeddings, int64_t dim, int64_t padding_idx,
                                    uint64_t seed);
/* As fsq_nn_sinusoidal_forward, with a gradient into the weight. */
fsq_tensor *fsq_nn_learned_pos_forward(fsq_ctx *ctx, const fsq_nn_learned_pos *e,
                                       fsq_tensor *tokens, int64_t step);

/* ---- layer norm ------------------------------------------------------------------ */
typedef struct fsq_nn_layer_norm {
  fsq_tensor *weight, *bias; /* [dim] */
  double eps;
} fsq_nn_layer_norm;

/* weight 1, bias 0, eps 1e-5 (torch.nn.LayerNorm's defaults). */
fsq_status fsq_nn_layer_norm_build(fsq_nn_layer_norm *ln, fsq_params *p, const char *prefix,
                                   int64_t dim);
fsq_tensor *fsq_nn_layer_norm_forward(fsq_ctx *ctx, const fsq_nn_layer_norm *ln, fsq_tensor *x);

/* ---- multihead attention ------------------------------------------------------------ */
typedef struct fsq_nn_mha {
  fsq_nn_linear q_proj;   /* [C, C] */
  fsq_nn_linear k_proj;   /* [C, kdim] */
  fsq_nn_linear v_proj;   /* [C, vdim] */
  fsq_nn_linear out_proj; /* [C, C] */
  int64_t embed_dim, kdim, vdim, num_heads, head_dim;
  double dropout; /* on the attention weights */
} fsq_nn_mha;

/* fairseq's MultiheadAttention.reset_parameters: q/k/v weights
 * xavier_uniform_ with gain 1/sqrt(2) when kdim == vdim == embed_dim
 * (qkv_same_dim), gain 1 otherwise; their biases keep nn.Linear's init;
 * out_proj xavier_uniform_ with bias 0. kdim, vdim: the width of key and
 * value inputs (fairseq's encoder attention gets the encoder's embed_dim). */
fsq_status fsq_nn_mha_build_kv(fsq_nn_mha *m, fsq_params *p, const char *prefix,
                               int64_t embed_dim, int64_t kdim, int64_t vdim, int64_t num_heads,
                               double dropout, uint64_t seed);
/* The same with kdim = vdim = embed_dim. */
fsq_status fsq_nn_mha_build(fsq_nn_mha *m, fsq_params *p, const char *prefix, int64_t embed_dim,
                            int64_t num_heads, double dropout, uint64_t seed);

/* Cached keys and values of one attention for incremental decoding, owned by
 * the caller, for max_batch rows (sentences x beam) and up to max_len steps.
 * Inference only (grad mode off). The cache lives where the layer's
 * parameters live: host memory, or their device backend's memory, which
 * only that backend's kernels touch (the steps then run on a ctx of that
 * backend). */
typedef struct fsq_nn_mha_state {
  void *key, *value; /* prev_key, prev_value: [max_batch, H, cap, Dh] of dtype */
  void *scratch;     /* same size: reorder target, swapped with key/value */
  /* The layer's weights' dtype (f32, or f16/bf16 after fsq_params_convert),
   * which its projections produce, and its size in bytes. */
  fsq_dtype dtype;
  size_t elem;
  /* NULL: key, value and scratch are host memory (malloc). Otherwise the
   * device backend that allocated them, with device_index: [max_batch], a
   * reorder's index uploaded for its index_select. */
  const fsq_kernels *device;
  int64_t *device_index;
  int64_t max_batch, num_heads, max_len, head_dim;
  /* Steps allocated per row: grows (doubling, at most max_len) when an
   * append needs it, so memory follows the longest decoded prefix rather
   * than the largest one allowed. */
  int64_t cap;
  int64_t batch, len; /* the live part: [batch, H, len, Dh] */
  int static_kv;      /* filled once from the encoder output (encoder attention) */
} fsq_nn_mha_state;

fsq_status fsq_nn_mha_state_init(fsq_nn_mha_state *st, const fsq_nn_mha *m, int64_t max_batch,
                                 int64_t max_len);
void fsq_nn_mha_state_free(fsq_nn_mha_state *st);
/* Forget the cached steps (a new batch). */
void fsq_nn_mha_state_clear(fsq_nn_mha_state *st);
/* Room for len cached steps (len <= max_len), keeping the live part. */
fsq_status fsq_nn_mha_state_reserve(fsq_nn_mha_state *st, int64_t len);
/* fairseq's reorder_incremental_state: row b of the cache becomes old row
 * index[b] (index_select on the batch dim); n may differ from the batch.
 * index is host memory (uploaded once per call on a device). */
fsq_status fsq_nn_mha_state_reorder(fsq_nn_mha_state *st, const int64_t *index, int64_t n);
/* The reorder that moves nothing: rows [0, n) keep what they hold, the
 * batch becomes n (n <= the cached batch). For an owner that knows its
 * rows already hold what a reorder would give them (beams of one sentence
 * in a static cache). */
fsq_status fsq_nn_mha_state_keep_rows(fsq_nn_mha_state *st, int64_t n);

/* query: [T, B, C]; key: [S, B, kdim], value: [S, B, vdim] (NULL:
 * self-attention on query);
 * key_padding_mask: u8 [B, S_total] or NULL; causal: key j hidden from query i
 * when j > i + S_total - T (fairseq's future mask).
 * state NULL: full attention. Otherwise incremental: with static_kv the keys
 * and values are projected from key/value on the first call and reused after
 * (encoder-decoder attention); without, the T new keys and values of this
 * call are appended to the cache and the queries attend over all of them.
 * Returns [T, B, C]. */
fsq_tensor *fsq_nn_mha_forward(fsq_ctx *ctx, const fsq_nn_mha *m, fsq_tensor *query,
                               fsq_tensor *key, fsq_tensor *value, fsq_tensor *key_padding_mask,
                               int causal, fsq_nn_mha_state *state, int static_kv);

/* ---- feed-forward block ------------------------------------------------------------ */
typedef enum fsq_nn_activation {
  FSQ_NN_RELU,
  FSQ_NN_GELU,      /* erf form, fairseq's "gelu" */
  FSQ_NN_GELU_FAST, /* tanh approximation, "gelu_fast"/"gelu_accurate" */
  FSQ_NN_TANH,
  FSQ_NN_LINEAR
} fsq_nn_activation;

/* fairseq's activation names ("relu", "gelu", ...); -1 when unknown. */
int fsq_nn_activation_from_name(const char *name);
fsq_tensor *fsq_nn_activate(fsq_ctx *ctx, fsq_nn_activation act, fsq_tensor *x);

typedef struct fsq_nn_ffn {
  fsq_nn_linear fc1; /* [ffn, C] */
  fsq_nn_linear fc2; /* [C, ffn] */
  fsq_nn_activation activation;
  double activation_dropout;
} fsq_nn_ffn;

/* Registers <prefix>.fc1 and <prefix>.fc2 (nn.Linear's default init, as
 * fairseq's build_fc1/build_fc2). */
fsq_status fsq_nn_ffn_build(fsq_nn_ffn *f, fsq_params *p, const char *prefix, int64_t dim,
                            int64_t ffn_dim, fsq_nn_activation act, double activation_dropout,
                            uint64_t seed);
/* fc2(dropout(act(fc1(x)))) */
fsq_tensor *fsq_nn_ffn_forward(fsq_ctx *ctx, const fsq_nn_ffn *f, fsq_tensor *x);

/* ---- transformer layers -------------------------------------------------------------- */
typedef struct fsq_nn_layer_config {
  int64_t embed_dim, ffn_dim, num_heads;
  double dropout, attention_dropout, activation_dropout;
  fsq_nn_activation activation;
  int normalize_before; /* --encoder-normalize-before / --decoder-normalize-before */
  /* Decoder layers only: */
  int64_t encoder_embed_dim; /* key/value width of encoder_attn; 0: embed_dim */
  int no_encoder_attn;       /* language models: no encoder_attn sublayer */
} fsq_nn_layer_config;

typedef struct fsq_nn_encoder_layer {
  fsq_nn_mha self_attn;
  fsq_nn_layer_norm self_attn_layer_norm;
  fsq_nn_ffn ffn; /* fc1, fc2 directly under the layer's prefix */
  fsq_nn_layer_norm final_layer_norm;
  fsq_nn_layer_config cfg;
} fsq_nn_encoder_layer;

fsq_status fsq_nn_encoder_layer_build(fsq_nn_encoder_layer *l, fsq_params *p,
                                      const char *prefix, const fsq_nn_layer_config *cfg,
                                      uint64_t seed);
/* fairseq's TransformerEncoderLayerBase.forward: x: [T, B, C],
 * padding_mask: u8 [B, T] or NULL -> [T, B, C]. */
fsq_tensor *fsq_nn_encoder_layer_forward(fsq_ctx *ctx, const fsq_nn_encoder_layer *l,
                                         fsq_tensor *x, fsq_tensor *padding_mask);

typedef struct fsq_nn_decoder_layer {
  fsq_nn_mha self_attn;
  fsq_nn_layer_norm self_attn_layer_norm;
  fsq_nn_mha encoder_attn; /* unused (no parameters) with no_encoder_attn */
  fsq_nn_layer_norm encoder_attn_layer_norm;
  fsq_nn_ffn ffn;
  fsq_nn_layer_norm final_layer_norm;
  fsq_nn_layer_config cfg;
} fsq_nn_decoder_layer;

typedef struct fsq_nn_decoder_layer_state {
  fsq_nn_mha_state self_attn;    /* grows one step per call */
  fsq_nn_mha_state encoder_attn; /* static: the projected encoder output */
} fsq_nn_decoder_layer_state;

fsq_status fsq_nn_decoder_layer_build(fsq_nn_decoder_layer *l, fsq_params *p,
                                      const char *prefix, const fsq_nn_layer_config *cfg,
                                      uint64_t seed);
fsq_status fsq_nn_decoder_layer_state_init(fsq_nn_decoder_layer_state *st,
                                           const fsq_nn_decoder_layer *l, int64_t max_batch,
                                           int64_t max_tgt_len, int64_t max_src_len);
void fsq_nn_decoder_layer_state_free(fsq_nn_decoder_layer_state *st);
void fsq_nn_decoder_layer_state_clear(fsq_nn_decoder_layer_state *st);
/* Both caches to index (fsq_nn_mha_state_reorder); with encoder_in_place
 * the encoder attention's keep their rows (fsq_nn_mha_state_keep_rows):
 * the caller knows every row already holds its sentence's. */
fsq_status fsq_nn_decoder_layer_state_reorder(fsq_nn_decoder_layer_state *st,
                                              const int64_t *index, int64_t n,
                                              int encoder_in_place);
/* fairseq's TransformerDecoderLayerBase.forward: x: [T, B, C];
 * self_padding_mask: u8 [B, T] or NULL (full mode only); enc: [S, B,
 * encoder_embed_dim] (NULL, or ignored, with no_encoder_attn);
 * enc_padding_mask: u8 [B, S] or NULL. state NULL: the whole target with a
 * causal mask; otherwise x holds the next T steps (usually 1). -> [T, B, C]. */
fsq_tensor *fsq_nn_decoder_layer_forward(fsq_ctx *ctx, const fsq_nn_decoder_layer *l,
                                         fsq_tensor *x, fsq_tensor *self_padding_mask,
                                         fsq_tensor *enc, fsq_tensor *enc_padding_mask,
                                         fsq_nn_decoder_layer_state *state);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_NN_H */
