/* forward.c: the teacher-forced forward of fairseq's TransformerModel:
 * TransformerEncoderBase.forward over src_tokens, then
 * TransformerDecoderBase.forward over prev_output_tokens (causal self
 * attention + attention over the encoder output) and the output projection.
 * Layers run time-major ([T, B, C]), as fairseq's. The pieces are shared
 * with incremental.c (inference), so both paths run the same code. */
#include "components/models/transformer/transformer.h"

fsq_tensor *tf_padding_mask(fsq_ctx *ctx, fsq_tensor *tokens, int64_t pad, int *failed) {
  *failed = 0;
  /* Computed on the host from the batch's tokens (one small download on a
   * device), as whether there is padding at all decides the kernels. */
  const int64_t *tok = fsq_host_data(ctx, tokens); /* [B, T] */
  int64_t n = fsq_numel(tokens), pads = 0;
  uint8_t *m = tok != NULL ? fsq_ctx_host_alloc(ctx, (size_t)(n ? n : 1)) : NULL;
  if (m == NULL) {
    *failed = 1;
    return NULL;
  }
  for (int64_t i = 0; i < n; i++) {
    m[i] = tok[i] == pad;
    pads += m[i];
  }
  if (pads == 0) return NULL;
  fsq_tensor *mask = fsq_from_data(ctx, FSQ_U8, 2, tokens->shape, m);
  *failed = mask == NULL;
  return mask;
}

fsq_tensor *tf_embed_forward(fsq_ctx *ctx, tf_embed *e, fsq_tensor *tokens, int64_t step) {
  fsq_tensor *x = fsq_nn_embedding_forward(ctx, &e->tokens, tokens, e->scale);
  if (e->positions == 1) {
    fsq_tensor *pos = fsq_nn_sinusoidal_forward(ctx, &e->sinusoidal, tokens, step);
    /* the table is f32; a 16-bit model adds it rounded, as fairseq's half
     * copy of its table */
    if (pos != NULL && x != NULL && pos->dtype != x->dtype) pos = fsq_cast(ctx, pos, x->dtype);
    x = fsq_add(ctx, x, pos);
  }
  if (e->positions == 2)
    x = fsq_add(ctx, x, fsq_nn_learned_pos_forward(ctx, &e->learned, tokens, step));
  if (e->has_layernorm) x = fsq_nn_layer_norm_forward(ctx, &e->layernorm, x);
  return fsq_dropout(ctx, x, e->dropout);
}

int tf_check_tokens(const fsq_tensor *t, const char *what) {
  if (t == NULL || t->dtype != FSQ_I64 || t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0) {
    fsq_error(FSQ_ERR_INVALID, "transformer: %s must be a non-empty i64 [B, T] tensor", what);
    return 0;
  }
  return 1;
}

fsq_tensor *tf_encode(fsq_model *m, fsq_ctx *ctx, fsq_tensor *src_tokens, fsq_tensor **mask) {
  int failed;
  *mask = tf_padding_mask(ctx, src_tokens, m->pad, &failed);
  if (failed) return NULL;
  fsq_tensor *x = tf_embed_forward(ctx, &m->enc_embed, src_tokens, -1); /* [B, S, C] */
  if (*mask != NULL) {
    /* fairseq zeroes the padded positions: x * (1 - mask) */
    int64_t shape[3] = {src_tokens->shape[0], src_tokens->shape[1], 1};
    x = fsq_masked_fill(ctx, x, fsq_reshape(ctx, *mask, 3, shape), 0.0);
  }
  x = fsq_transpose(ctx, x, 0, 1); /* [S, B, C] */
  for (int64_t i = 0; i < m->cfg.enc.layers && x != NULL; i++)
    x = fsq_nn_encoder_layer_forward(ctx, &m->enc_layers[i], x, *mask);
  if (m->enc_final_norm) x = fsq_nn_layer_norm_forward(ctx, &m->enc_norm, x);
  return x;
}

fsq_tensor *tf_decoder_output(fsq_model *m, fsq_ctx *ctx, fsq_tensor *x) {
  if (m->dec_final_norm) x = fsq_nn_layer_norm_forward(ctx, &m->dec_norm, x);
  x = fsq_transpose(ctx, x, 0, 1); /* [B, T, C] */
  if (m->has_project_out) x = fsq_nn_linear_forward(ctx, &m->project_out, x);
  return fsq_nn_linear_forward(ctx, &m->output_projection, x);
}

fsq_tensor *tf_decode(fsq_model *m, fsq_ctx *ctx, fsq_tensor *prev, fsq_tensor *enc,
                      fsq_tensor *enc_mask) {
  int failed;
  fsq_tensor *self_mask = tf_padding_mask(ctx, prev, m->pad, &failed);
  if (failed) return NULL;
  fsq_tensor *x = fsq_transpose(ctx, tf_embed_forward(ctx, &m->dec_embed, prev, -1), 0, 1);
  for (int64_t i = 0; i < m->cfg.dec.layers && x != NULL; i++) /* x: [T, B, C] */
    x = fsq_nn_decoder_layer_forward(ctx, &m->dec_layers[i], x, self_mask, enc, enc_mask, NULL);
  return x != NULL ? tf_decoder_output(m, ctx, x) : NULL;
}

fsq_tensor *tf_forward(fsq_model *m, fsq_ctx *ctx, const fsq_sample *sample) {
  if (!tf_check_tokens(sample->src_tokens, "src_tokens") ||
      !tf_check_tokens(sample->prev_output_tokens, "prev_output_tokens"))
    return NULL;
  if (sample->src_tokens->shape[0] != sample->prev_output_tokens->shape[0]) {
    fsq_error(FSQ_ERR_INVALID, "transformer: src_tokens has %lld sentences, prev_output_tokens %lld",
              (long long)sample->src_tokens->shape[0],
              (long long)sample->prev_output_tokens->shape[0]);
    return NULL;
  }
  fsq_tensor *enc_mask = NULL;
  fsq_tensor *enc = tf_encode(m, ctx, sample->src_tokens, &enc_mask);
  if (enc == NULL) return NULL;
  return tf_decode(m, ctx, sample->prev_output_tokens, enc, enc_mask);
}
