/* transformer.h: what the files of the transformer component share: the
 * resolved hyper-parameters and the model (fairseq's TransformerModel with
 * TransformerEncoderBase and TransformerDecoderBase). */
#ifndef FSQ_MODELS_TRANSFORMER_H
#define FSQ_MODELS_TRANSFORMER_H

#include "nn/fsq_nn.h"
#include "train/fsq_model.h"

/* One side's hyper-parameters (fairseq's cfg.encoder / cfg.decoder). */
typedef struct tf_side_config {
  int64_t embed_dim, ffn_embed_dim, layers, attention_heads;
  int normalize_before, learned_pos;
  int64_t max_positions;
} tf_side_config;

typedef struct tf_config {
  tf_side_config enc, dec;
  int64_t decoder_output_dim;
  double dropout, attention_dropout, activation_dropout;
  fsq_nn_activation activation;
  int share_decoder_input_output_embed, share_all_embeddings;
  int no_scale_embedding, layernorm_embedding, no_token_positional_embeddings;
} tf_config;

/* Reads cfg (a resolved configuration) into out; a missing or mistyped key
 * is an error naming the flag. */
fsq_status tf_config_read(struct json_object *cfg, tf_config *out);

/* The token front of either side: embed_scale * embed_tokens(tokens) +
 * positions, optional layernorm_embedding, dropout. */
typedef struct tf_embed {
  fsq_nn_embedding tokens; /* weight may be shared with the other side */
  double scale;
  int positions; /* 0: none, 1: sinusoidal, 2: learned */
  fsq_nn_sinusoidal sinusoidal;
  fsq_nn_learned_pos learned;
  int has_layernorm;
  fsq_nn_layer_norm layernorm;
  double dropout;
} tf_embed;

struct fsq_model {
  tf_config cfg;
  int64_t pad;
  tf_embed enc_embed, dec_embed;
  fsq_nn_encoder_layer *enc_layers; /* [enc.layers] */
  fsq_nn_decoder_layer *dec_layers; /* [dec.layers] */
  int enc_final_norm, dec_final_norm;
  fsq_nn_layer_norm enc_norm, dec_norm;
  int has_project_out;
  fsq_nn_linear project_out;       /* [output_dim, embed_dim], no bias */
  fsq_nn_linear output_projection; /* [V, output_dim], no bias; weight may be embed_tokens' */
};

fsq_status tf_build(struct json_object *cfg, const fsq_task_env *env, fsq_params *params,
                    fsq_model **out);
void tf_destroy(fsq_model *m);
fsq_tensor *tf_forward(fsq_model *m, fsq_ctx *ctx, const fsq_sample *sample);
void tf_max_positions(const fsq_model *m, int64_t *max_source, int64_t *max_target);

/* ---- the pieces of the forward (forward.c), shared with inference ---- */
/* 1 when t is a non-empty i64 [B, T]; else 0 with fsq_error naming what. */
int tf_check_tokens(const fsq_tensor *t, const char *what);
/* tokens: i64 [B, T] -> u8 [B, T], nonzero at padding; NULL when no token
 * is padding, as fairseq passes no mask then (*failed tells the two apart). */
fsq_tensor *tf_padding_mask(fsq_ctx *ctx, fsq_tensor *tokens, int64_t pad, int *failed);
/* fairseq's forward_embedding: tokens: i64 [B, T] -> [B, T, C]. step < 0:
 * positions from make_positions over tokens; step >= 0: tokens is the
 * last column of a prefix of step + 1 tokens, at fairseq's incremental
 * position padding_idx + step + 1. */
fsq_tensor *tf_embed_forward(fsq_ctx *ctx, tf_embed *e, fsq_tensor *tokens, int64_t step);
/* src_tokens: i64 [B, S] -> encoder_out [S, B, C]; *mask: u8 [B, S] or NULL. */
fsq_tensor *tf_encode(fsq_model *m, fsq_ctx *ctx, fsq_tensor *src_tokens, fsq_tensor **mask);
/* Teacher-forced decoder: prev: i64 [B, T], enc: [S, B, C], enc_mask: u8
 * [B, S] or NULL -> logits [B, T, V]. */
fsq_tensor *tf_decode(fsq_model *m, fsq_ctx *ctx, fsq_tensor *prev, fsq_tensor *enc,
                      fsq_tensor *enc_mask);
/* The decoder's last layers' output x: [T, B, C] -> logits [B, T, V]
 * (final layer norm, project_out_dim, output projection). */
fsq_tensor *tf_decoder_output(fsq_model *m, fsq_ctx *ctx, fsq_tensor *x);

/* ---- inference (incremental.c): fsq_model_ops' decoding ops ---- */
fsq_status tf_decoder_state_create(const fsq_model *m, int64_t max_batch, int64_t max_src_len,
                                   int64_t max_tgt_len, fsq_model_decoder_state **out);
void tf_decoder_state_destroy(fsq_model_decoder_state *st);
fsq_status tf_encode_state(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                           const fsq_tensor *src_tokens);
fsq_status tf_reorder(fsq_model_decoder_state *st, const int64_t *index, int64_t n);
fsq_tensor *tf_decode_step(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                           const fsq_tensor *prev_tokens, int incremental);

#endif
