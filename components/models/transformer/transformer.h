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

#endif
