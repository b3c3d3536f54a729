/* transformer_layer.c: fairseq's TransformerEncoderLayerBase and
 * TransformerDecoderLayerBase (transformer_layer.py): each sublayer is
 * residual + dropout(body(x)), with the layer norm before the body
 * (normalize_before) or after the residual (post-norm, the default). */
#include "nn/nn_internal.h"

#include <string.h>

/* One sublayer's prologue: the body's input. */
static fsq_tensor *pre(fsq_ctx *ctx, const fsq_nn_layer_config *cfg,
                       const fsq_nn_layer_norm *ln, fsq_tensor *x) {
  return cfg->normalize_before ? fsq_nn_layer_norm_forward(ctx, ln, x) : x;
}

/* Its epilogue: residual + dropout(y), then the post-norm. Nothing reads
 * the body's output y afterwards, so the sum may take its storage. */
static fsq_tensor *post(fsq_ctx *ctx, const fsq_nn_layer_config *cfg,
                        const fsq_nn_layer_norm *ln, fsq_tensor *residual, fsq_tensor *y) {
  fsq_tensor *x = fsq_dropout_add_inplace(ctx, residual, y, cfg->dropout);
  return cfg->normalize_before ? x : fsq_nn_layer_norm_forward(ctx, ln, x);
}

static fsq_status build_common(fsq_nn_mha *self_attn, fsq_nn_layer_norm *self_ln,
                               fsq_nn_ffn *ffn, fsq_nn_layer_norm *final_ln, fsq_params *p,
                               const char *prefix, const fsq_nn_layer_config *cfg,
                               uint64_t seed) {
  char sub[FSQ_NN_NAME_MAX];
  fsq_status st = fsq_nn_join(sub, prefix, "self_attn");
  if (st == FSQ_OK)
    st = fsq_nn_mha_build(self_attn, p, sub, cfg->embed_dim, cfg->num_heads,
                          cfg->attention_dropout, seed);
  if (st == FSQ_OK) st = fsq_nn_join(sub, prefix, "self_attn_layer_norm");
  if (st == FSQ_OK) st = fsq_nn_layer_norm_build(self_ln, p, sub, cfg->embed_dim);
  if (st == FSQ_OK)
    st = fsq_nn_ffn_build(ffn, p, prefix, cfg->embed_dim, cfg->ffn_dim, cfg->activation,
                          cfg->activation_dropout, seed);
  if (st == FSQ_OK) st = fsq_nn_join(sub, prefix, "final_layer_norm");
  if (st == FSQ_OK) st = fsq_nn_layer_norm_build(final_ln, p, sub, cfg->embed_dim);
  return st;
}

fsq_status fsq_nn_encoder_layer_build(fsq_nn_encoder_layer *l, fsq_params *p,
                                      const char *prefix, const fsq_nn_layer_config *cfg,
                                      uint64_t seed) {
  l->cfg = *cfg;
  return build_common(&l->self_attn, &l->self_attn_layer_norm, &l->ffn, &l->final_layer_norm,
                      p, prefix, cfg, seed);
}

fsq_tensor *fsq_nn_encoder_layer_forward(fsq_ctx *ctx, const fsq_nn_encoder_layer *l,
                                         fsq_tensor *x, fsq_tensor *padding_mask) {
  const fsq_nn_layer_config *cfg = &l->cfg;
  fsq_tensor *h = pre(ctx, cfg, &l->self_attn_layer_norm, x);
  h = fsq_nn_mha_forward(ctx, &l->self_attn, h, NULL, NULL, padding_mask, 0, NULL, 0);
  x = post(ctx, cfg, &l->self_attn_layer_norm, x, h);
  h = fsq_nn_ffn_forward(ctx, &l->ffn, pre(ctx, cfg, &l->final_layer_norm, x));
  return post(ctx, cfg, &l->final_layer_norm, x, h);
}

fsq_status fsq_nn_decoder_layer_build(fsq_nn_decoder_layer *l, fsq_params *p,
                                      const char *prefix, const fsq_nn_layer_config *cfg,
                                      uint64_t seed) {
  l->cfg = *cfg;
  fsq_status st = build_common(&l->self_attn, &l->self_attn_layer_norm, &l->ffn,
                               &l->final_layer_norm, p, prefix, cfg, seed);
  if (st != FSQ_OK || cfg->no_encoder_attn) return st;
  char sub[FSQ_NN_NAME_MAX];
  int64_t kv = cfg->encoder_embed_dim > 0 ? cfg->encoder_embed_dim : cfg->embed_dim;
  st = fsq_nn_join(sub, prefix, "encoder_attn");
  if (st == FSQ_OK)
    st = fsq_nn_mha_build_kv(&l->encoder_attn, p, sub, cfg->embed_dim, kv, kv, cfg->num_heads,
                             cfg->attention_dropout, seed);
  if (st == FSQ_OK) st = fsq_nn_join(sub, prefix, "encoder_attn_layer_norm");
  if (st == FSQ_OK) st = fsq_nn_layer_norm_build(&l->encoder_attn_layer_norm, p, sub, cfg->embed_dim);
  return st;
}

fsq_status fsq_nn_decoder_layer_state_init(fsq_nn_decoder_layer_state *st,
                                           const fsq_nn_decoder_layer *l, int64_t max_batch,
                                           int64_t max_tgt_len, int64_t max_src_len) {
  memset(st, 0, sizeof *st);
  fsq_status s = fsq_nn_mha_state_init(&st->self_attn, &l->self_attn, max_batch, max_tgt_len);
  if (s != FSQ_OK || l->cfg.no_encoder_attn) return s;
  s = fsq_nn_mha_state_init(&st->encoder_attn, &l->encoder_attn, max_batch, max_src_len);
  if (s != FSQ_OK) fsq_nn_mha_state_free(&st->self_attn);
  return s;
}

void fsq_nn_decoder_layer_state_free(fsq_nn_decoder_layer_state *st) {
  fsq_nn_mha_state_free(&st->self_attn);
  fsq_nn_mha_state_free(&st->encoder_attn);
}

void fsq_nn_decoder_layer_state_clear(fsq_nn_decoder_layer_state *st) {
  fsq_nn_mha_state_clear(&st->self_attn);
  fsq_nn_mha_state_clear(&st->encoder_attn);
}

fsq_status fsq_nn_decoder_layer_state_reorder(fsq_nn_decoder_layer_state *st,
                                              const int64_t *index, int64_t n,
                                              int encoder_in_place) {
  fsq_status s = fsq_nn_mha_state_reorder(&st->self_attn, index, n);
  if (s != FSQ_OK) return s;
  /* An unused encoder cache (no_encoder_attn) is empty: both are no-ops. */
  return encoder_in_place ? fsq_nn_mha_state_keep_rows(&st->encoder_attn, n)
                          : fsq_nn_mha_state_reorder(&st->encoder_attn, index, n);
}

fsq_tensor *fsq_nn_decoder_layer_forward(fsq_ctx *ctx, const fsq_nn_decoder_layer *l,
                                         fsq_tensor *x, fsq_tensor *self_padding_mask,
                                         fsq_tensor *enc, fsq_tensor *enc_padding_mask,
                                         fsq_nn_decoder_layer_state *state) {
  const fsq_nn_layer_config *cfg = &l->cfg;
  fsq_tensor *h = pre(ctx, cfg, &l->self_attn_layer_norm, x);
  h = fsq_nn_mha_forward(ctx, &l->self_attn, h, NULL, NULL, self_padding_mask, 1,
                         state ? &state->self_attn : NULL, 0);
  x = post(ctx, cfg, &l->self_attn_layer_norm, x, h);
  if (enc && !cfg->no_encoder_attn) {
    h = pre(ctx, cfg, &l->encoder_attn_layer_norm, x);
    h = fsq_nn_mha_forward(ctx, &l->encoder_attn, h, enc, enc, enc_padding_mask, 0,
                           state ? &state->encoder_attn : NULL, 1);
    x = post(ctx, cfg, &l->encoder_attn_layer_norm, x, h);
  }
  h = fsq_nn_ffn_forward(ctx, &l->ffn, pre(ctx, cfg, &l->final_layer_norm, x));
  return post(ctx, cfg, &l->final_layer_norm, x, h);
}
