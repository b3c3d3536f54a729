/* incremental.c: the inference ops of fsq_model_ops for the transformer:
 * fairseq's forward_encoder, forward_decoder with an incremental_state, and
 * reorder_encoder_out + reorder_incremental_state, as the sequence
 * generator calls them for beam search.
 *
 * The state keeps its own copy of the encoder output (the ctx that ran the
 * encoder may be reset between steps) and one fsq_nn_decoder_layer_state per
 * decoder layer; everything is allocated at create, so a step allocates
 * only arena temporaries in the caller's ctx. It lives where the model's
 * parameters live: host memory, or a device's, where only the device's
 * table touches it (the caller's ctx must compute there); and it holds
 * what they compute: the encoder copy and the attention caches take the
 * parameters' dtype, 16-bit after fsq_params_convert (fairseq's
 * model.half()). Each step's logits come out in that dtype and are widened
 * to f32 for the log-softmax, as fairseq's log_softmax(logits.float()). */
#include "components/models/transformer/transformer.h"

#include <stdlib.h>
#include <string.h>

struct fsq_model_decoder_state {
  const fsq_model *model;
  int64_t max_batch, max_src_len, max_tgt_len;
  int64_t dim;      /* the encoder's embed_dim (C) */
  int64_t rows;     /* live rows: B after encode, n after reorder; 0: not encoded */
  int64_t src_len;  /* S of the encoded batch */
  int64_t steps;    /* incremental steps cached; -1: broken by a failed step */
  /* Batch-major, so a reorder moves whole rows: [rows, S, C] in the first
   * rows * S * C values (fairseq's encoder_out [S, B, C] is a transposed
   * view of it), of the encoder's dtype (enc_dtype, enc_elem bytes). */
  void *enc, *enc_scratch;        /* [max_batch * max_src_len * C] each */
  fsq_dtype enc_dtype;
  size_t enc_elem;
  uint8_t *mask, *mask_scratch;   /* [rows, S]; [max_batch * max_src_len] each */
  int has_pads;                   /* 0: fairseq passes no encoder padding mask */
  /* tag[b]: the encoded sentence whose output (and mask) row b holds, so a
   * reorder among one sentence's beams moves nothing here nor in the
   * encoder attention's caches (tf_reorder). */
  int64_t *tag, *tag_scratch;     /* [max_batch] each (host memory) */
  /* NULL: enc, mask and their scratch are host memory (malloc). Otherwise
   * the device backend of the model's parameters, which allocated them,
   * and index: [max_batch], a reorder's index uploaded there. */
  const fsq_kernels *device;
  int64_t *index;
  fsq_nn_decoder_layer_state *layers; /* [dec.layers] */
  int64_t layers_made;
};

/* ---- create / destroy ------------------------------------------------------- */

/* The state's device buffers go back to the device, host ones to free. */
static void buffer_free(const fsq_model_decoder_state *st, void *p) {
  if (p == NULL) return;
  if (st->device)
    st->device->mem_free(p);
  else
    free(p);
}

void tf_decoder_state_destroy(fsq_model_decoder_state *st) {
  if (st == NULL) return;
  for (int64_t i = 0; i < st->layers_made; i++) fsq_nn_decoder_layer_state_free(&st->layers[i]);
  free(st->layers);
  buffer_free(st, st->enc);
  buffer_free(st, st->enc_scratch);
  buffer_free(st, st->mask);
  buffer_free(st, st->mask_scratch);
  buffer_free(st, st->index);
  free(st->tag);
  free(st->tag_scratch);
  free(st);
}

/* The encoder copies and masks in the device's memory (nothing there needs
 * zeroing: encode writes what a step reads). */
static int alloc_device_buffers(fsq_model_decoder_state *st, size_t cells) {
  const fsq_kernels *k = st->device;
  st->enc = k->mem_alloc(cells * (size_t)st->dim * st->enc_elem);
  st->enc_scratch = k->mem_alloc(cells * (size_t)st->dim * st->enc_elem);
  st->mask = k->mem_alloc(cells);
  st->mask_scratch = k->mem_alloc(cells);
  st->index = k->mem_alloc((size_t)st->max_batch * sizeof(int64_t));
  return st->enc && st->enc_scratch && st->mask && st->mask_scratch && st->index;
}

static fsq_status alloc_buffers(fsq_model_decoder_state *st, int64_t layers) {
  size_t cells = (size_t)(st->max_batch * st->max_src_len);
  int made;
  if (st->device) {
    made = alloc_device_buffers(st, cells);
  } else {
    st->enc = malloc(cells * (size_t)st->dim * st->enc_elem);
    st->enc_scratch = malloc(cells * (size_t)st->dim * st->enc_elem);
    st->mask = calloc(cells, 1);
    st->mask_scratch = calloc(cells, 1);
    made = st->enc && st->enc_scratch && st->mask && st->mask_scratch;
  }
  st->layers = calloc((size_t)layers, sizeof *st->layers);
  st->tag = calloc((size_t)st->max_batch, sizeof(int64_t));
  st->tag_scratch = calloc((size_t)st->max_batch, sizeof(int64_t));
  if (!made || !st->tag || !st->tag_scratch || !st->layers)
    return fsq_error(FSQ_ERR_NOMEM,
                     "transformer: decoder state of %lld x %lld x %lld %s in %s memory",
                     (long long)st->max_batch, (long long)st->max_src_len, (long long)st->dim,
                     fsq_dtype_name(st->enc_dtype), st->device ? st->device->name : "host");
  return FSQ_OK;
}

/* The device backend of the model's parameters; NULL for host memory. */
static const fsq_kernels *params_device(const fsq_model *m) {
  const fsq_kernels *k = m->dec_embed.tokens.weight->backend;
  return k != NULL && !k->host ? k : NULL;
}

fsq_status tf_decoder_state_create(const fsq_model *m, int64_t max_batch, int64_t max_src_len,
                                   int64_t max_tgt_len, fsq_model_decoder_state **out) {
  *out = NULL;
  if (max_batch <= 0 || max_src_len <= 0 || max_tgt_len <= 0)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: decoder state needs positive sizes (max_batch %lld, "
                     "max_src_len %lld, max_tgt_len %lld)",
                     (long long)max_batch, (long long)max_src_len, (long long)max_tgt_len);
  fsq_model_decoder_state *st = calloc(1, sizeof *st);
  if (st == NULL) return fsq_error(FSQ_ERR_NOMEM, "transformer: out of memory");
  st->model = m;
  st->max_batch = max_batch;
  st->max_src_len = max_src_len;
  st->max_tgt_len = max_tgt_len;
  st->dim = m->cfg.enc.embed_dim;
  st->device = params_device(m);
  /* the encoder's output has its embedding's dtype (every layer keeps it) */
  st->enc_dtype = m->enc_embed.tokens.weight->dtype;
  st->enc_elem = fsq_dtype_size(st->enc_dtype);
  fsq_status s = alloc_buffers(st, m->cfg.dec.layers);
  for (int64_t i = 0; s == FSQ_OK && i < m->cfg.dec.layers; i++) {
    s = fsq_nn_decoder_layer_state_init(&st->layers[i], &m->dec_layers[i], max_batch,
                                        max_tgt_len, max_src_len);
    if (s == FSQ_OK) st->layers_made = i + 1;
  }
  if (s != FSQ_OK) {
    tf_decoder_state_destroy(st);
    return s;
  }
  *out = st;
  return FSQ_OK;
}

/* ---- encode ------------------------------------------------------------------ */

static void clear_caches(fsq_model_decoder_state *st) {
  for (int64_t i = 0; i < st->layers_made; i++) fsq_nn_decoder_layer_state_clear(&st->layers[i]);
  st->steps = 0;
}

/* mask: u8 [B, S] (contiguous, from tf_padding_mask) or NULL -> st->mask,
 * through the table on a device. */
static void keep_mask(const fsq_kernels *k, fsq_model_decoder_state *st, const fsq_tensor *mask,
                      int64_t cells) {
  if (st->device == NULL) {
    if (mask != NULL)
      memcpy(st->mask, mask->data, (size_t)cells);
    else
      memset(st->mask, 0, (size_t)cells);
  } else if (mask != NULL) {
    int64_t one = 1;
    k->copy(FSQ_U8, 1, &cells, st->mask, &one, mask->data, &one, 0);
  } else {
    k->mem_zero(st->mask, (size_t)cells);
  }
}

/* enc: [S, B, C] (any strides, st->enc_dtype) -> st->enc as [B, S, C];
 * mask: u8 [B, S] or NULL. */
static fsq_status keep_encoder_out(fsq_ctx *ctx, fsq_model_decoder_state *st,
                                   const fsq_tensor *enc, const fsq_tensor *mask) {
  if (enc->dtype != st->enc_dtype)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: decoder state keeps %s encoder output, the encoder gave %s "
                     "(parameters converted after the state was made?)",
                     fsq_dtype_name(st->enc_dtype), fsq_dtype_name(enc->dtype));
  int64_t bsz = enc->shape[1], len = enc->shape[0], c = enc->shape[2];
  int64_t shape[3] = {bsz, len, c};
  int64_t dst_stride[3] = {len * c, c, 1};
  int64_t src_stride[3] = {enc->stride[1], enc->stride[0], enc->stride[2]};
  const fsq_kernels *k = fsq_ctx_kernels(ctx);
  k->copy(st->enc_dtype, 3, shape, st->enc, dst_stride, enc->data, src_stride, 0);
  for (int64_t b = 0; b < bsz; b++) st->tag[b] = b;
  st->has_pads = mask != NULL;
  keep_mask(k, st, mask, bsz * len);
  st->rows = bsz;
  st->src_len = len;
  return FSQ_OK;
}

static fsq_status check_source(const fsq_model_decoder_state *st, const fsq_tensor *src) {
  if (!tf_check_tokens(src, "src_tokens")) return fsq_error_code();
  if (src->shape[0] > st->max_batch || src->shape[1] > st->max_src_len)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: src_tokens [%lld, %lld] exceed the decoder state's "
                     "max_batch %lld x max_src_len %lld",
                     (long long)src->shape[0], (long long)src->shape[1],
                     (long long)st->max_batch, (long long)st->max_src_len);
  return FSQ_OK;
}

static fsq_status check_model(const fsq_model *m, const fsq_model_decoder_state *st) {
  if (st == NULL || st->model != m)
    return fsq_error(FSQ_ERR_INVALID, "transformer: decoder state %s",
                     st == NULL ? "is NULL" : "was made for another model");
  return FSQ_OK;
}

/* ctx's kernels write the state: they must compute where it lives. */
static fsq_status check_ctx(const fsq_model_decoder_state *st, fsq_ctx *ctx) {
  const fsq_kernels *k = fsq_ctx_kernels(ctx);
  if (st->device ? k == st->device : k->host) return FSQ_OK;
  return fsq_error(FSQ_ERR_INVALID, "transformer: decoder state in %s memory, ctx computes on %s",
                   st->device ? st->device->name : "host", k->name);
}

fsq_status tf_encode_state(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                           const fsq_tensor *src_tokens) {
  fsq_status s = check_model(m, st);
  if (s == FSQ_OK) s = check_ctx(st, ctx);
  if (s == FSQ_OK) s = check_source(st, src_tokens);
  if (s != FSQ_OK) return s;
  st->rows = 0; /* not encoded until the copy below succeeds */
  clear_caches(st);
  /* A header of our own over the caller's tokens: the ops take non-const
   * tensors, and with grad mode off nothing keeps a pointer to it. */
  fsq_tensor src = *src_tokens;
  src.grad = NULL;
  src.node = NULL;
  src.requires_grad = 0;
  int was = fsq_ctx_set_grad(ctx, 0);
  fsq_tensor *mask = NULL;
  fsq_tensor *enc = tf_encode(m, ctx, &src, &mask);
  fsq_ctx_set_grad(ctx, was);
  if (enc == NULL) return fsq_error_wrap(fsq_error_code(), "transformer: encode");
  return keep_encoder_out(ctx, st, enc, mask);
}

/* ---- reorder ------------------------------------------------------------------- */

/* Rows of width bytes: scratch row b = buf row index[b], then swapped. */
static void gather_rows(void **buf, void **scratch, size_t width, const int64_t *index,
                        int64_t n) {
  for (int64_t b = 0; b < n; b++)
    memcpy((char *)*scratch + (size_t)b * width, (char *)*buf + (size_t)index[b] * width, width);
  void *t = *buf;
  *buf = *scratch;
  *scratch = t;
}

/* The device's gather_rows for enc and mask: index uploaded once, one
 * index_select per buffer. */
static void reorder_device(fsq_model_decoder_state *st, const int64_t *index, int64_t n) {
  const fsq_kernels *k = st->device;
  k->mem_upload(st->index, index, (size_t)n * sizeof(int64_t));
  k->index_select(st->enc_dtype, 1, st->rows, st->src_len * st->dim, st->enc_scratch, st->enc,
                  st->index, n);
  k->index_select(FSQ_U8, 1, st->rows, st->src_len, st->mask_scratch, st->mask, st->index, n);
  void *e = st->enc;
  st->enc = st->enc_scratch;
  st->enc_scratch = e;
  uint8_t *m = st->mask;
  st->mask = st->mask_scratch;
  st->mask_scratch = m;
}

fsq_status tf_reorder(fsq_model_decoder_state *st, const int64_t *index, int64_t n) {
  if (st == NULL || st->rows == 0)
    return fsq_error(FSQ_ERR_INVALID, "transformer: reorder before encode");
  if (index == NULL || n <= 0 || n > st->max_batch)
    return fsq_error(FSQ_ERR_INVALID, "transformer: reorder to %lld rows (max_batch %lld)",
                     (long long)n, (long long)st->max_batch);
  for (int64_t b = 0; b < n; b++)
    if (index[b] < 0 || index[b] >= st->rows)
      return fsq_error(FSQ_ERR_INVALID, "transformer: reorder index %lld outside %lld rows",
                       (long long)index[b], (long long)st->rows);
  /* Every row b < n already holds what index[b] would give it when both
   * hold copies of one encoded sentence (beams of one sentence): then the
   * encoder output, its mask and the encoder attention's keys and values
   * stay where they are, as fairseq's reorder_incremental_state leaves
   * encoder-decoder keys and values alone while the batch keeps its size.
   * (Rows of one sentence are equal up to how a GEMM rounds a row by its
   * position, which some BLAS kernels do: deciding by the tags makes every
   * backend and kernel keep the same rows, without reading them.) */
  int same = 1;
  for (int64_t b = 0; same && b < n; b++) same = b < st->rows && st->tag[index[b]] == st->tag[b];
  /* Checked above against the same rows the caches hold (they follow every
   * step and reorder), so the layers' reorders cannot fail half-way. */
  for (int64_t i = 0; i < st->layers_made; i++) {
    fsq_status s = fsq_nn_decoder_layer_state_reorder(&st->layers[i], index, n, same);
    if (s != FSQ_OK) {
      st->steps = -1;
      return fsq_error_wrap(s, "transformer: reorder");
    }
  }
  if (!same) {
    for (int64_t b = 0; b < n; b++) st->tag_scratch[b] = st->tag[index[b]];
    gather_rows((void **)&st->tag, (void **)&st->tag_scratch, 0, index, 0); /* swap */
    if (st->device) {
      reorder_device(st, index, n);
    } else {
      size_t width = (size_t)(st->src_len * st->dim) * st->enc_elem;
      gather_rows(&st->enc, &st->enc_scratch, width, index, n);
      gather_rows((void **)&st->mask, (void **)&st->mask_scratch, (size_t)st->src_len, index, n);
    }
  }
  st->rows = n;
  return FSQ_OK;
}

/* ---- decode step ------------------------------------------------------------------ */

/* The kept encoder output as fairseq's encoder_out [S, rows, C] (a view)
 * and its padding mask u8 [rows, S] (NULL when the source had no pad). */
static fsq_tensor *encoder_view(fsq_ctx *ctx, fsq_model_decoder_state *st, fsq_tensor **mask) {
  int64_t shape[3] = {st->rows, st->src_len, st->dim}, mshape[2] = {st->rows, st->src_len};
  *mask = st->has_pads ? fsq_wrap(ctx, FSQ_U8, 2, mshape, st->mask) : NULL;
  if (st->has_pads && *mask == NULL) return NULL;
  return fsq_transpose(ctx, fsq_wrap(ctx, st->enc_dtype, 3, shape, st->enc), 0, 1);
}

static fsq_status check_step(const fsq_model_decoder_state *st, const fsq_tensor *prev,
                             int incremental) {
  if (!tf_check_tokens(prev, "prev_tokens")) return fsq_error_code();
  if (st->rows == 0) return fsq_error(FSQ_ERR_INVALID, "transformer: decode_step before encode");
  int64_t n = prev->shape[0], t = prev->shape[1];
  if (n != st->rows)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: prev_tokens has %lld rows, the decoder state %lld "
                     "(max_batch %lld; reorder first)",
                     (long long)n, (long long)st->rows, (long long)st->max_batch);
  if (t > st->max_tgt_len)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: prev_tokens has %lld steps, the decoder state max_tgt_len %lld",
                     (long long)t, (long long)st->max_tgt_len);
  if (incremental && st->steps < 0)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: the decoder state was broken by a failed step; encode again");
  if (incremental && t != st->steps + 1)
    return fsq_error(FSQ_ERR_INVALID,
                     "transformer: incremental step with %lld tokens after %lld cached steps "
                     "(each step adds exactly one)",
                     (long long)t, (long long)st->steps);
  return FSQ_OK;
}

/* fairseq's extract_features with an incremental_state: positions at the
 * prefix's length (padding_idx + t, pads not discounted), then only the last
 * token is embedded and run through the layers against their caches. The
 * self-attention padding mask is that of the whole prefix, which is what
 * fairseq's per-step masks add up to in the cache (NULL without pads).
 * prev: i64 [n, t] -> logits [n, 1, V]. */
static fsq_tensor *incremental_logits(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                                      fsq_tensor *prev) {
  int64_t t = prev->shape[1];
  int failed;
  fsq_tensor *self_mask = tf_padding_mask(ctx, prev, m->pad, &failed);
  fsq_tensor *enc_mask = NULL, *enc = failed ? NULL : encoder_view(ctx, st, &enc_mask);
  if (enc == NULL) return NULL;
  fsq_tensor *last = fsq_narrow(ctx, prev, 1, t - 1, 1); /* [n, 1] */
  fsq_tensor *x = fsq_transpose(ctx, tf_embed_forward(ctx, &m->dec_embed, last, t - 1), 0, 1);
  for (int64_t i = 0; i < m->cfg.dec.layers && x != NULL; i++) /* x: [1, n, C] */
    x = fsq_nn_decoder_layer_forward(ctx, &m->dec_layers[i], x, self_mask, enc, enc_mask,
                                     &st->layers[i]);
  return x != NULL ? tf_decoder_output(m, ctx, x) : NULL;
}

/* The teacher-forced decoder over the whole prefix against the kept encoder
 * output; the caches are not touched. -> logits [n, 1, V] of the last step. */
static fsq_tensor *full_logits(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                               fsq_tensor *prev) {
  fsq_tensor *enc_mask = NULL, *enc = encoder_view(ctx, st, &enc_mask);
  fsq_tensor *logits = enc != NULL ? tf_decode(m, ctx, prev, enc, enc_mask) : NULL;
  return fsq_narrow(ctx, logits, 1, prev->shape[1] - 1, 1);
}

/* logits: [n, 1, V] (any float dtype) -> f32 log-probabilities [n, V]:
 * 16-bit logits are widened first, as fairseq's get_normalized_probs
 * takes log_softmax(logits.float()), so the search sees f32 whatever the
 * model computes in. Grad mode is off: the logits (the step's own) are
 * overwritten when they are contiguous. */
static fsq_tensor *log_probs(fsq_ctx *ctx, fsq_tensor *logits, int64_t n) {
  if (logits == NULL) return NULL;
  int64_t shape[2] = {n, logits->shape[2]};
  fsq_tensor *x = fsq_reshape(ctx, logits, 2, shape);
  if (x != NULL && x->dtype != FSQ_F32) x = fsq_cast(ctx, x, FSQ_F32);
  if (x != NULL && fsq_is_contiguous(x)) return fsq_log_softmax_in_place(ctx, x);
  return fsq_log_softmax(ctx, x);
}

fsq_tensor *tf_decode_step(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                           const fsq_tensor *prev_tokens, int incremental) {
  if (check_model(m, st) != FSQ_OK || check_ctx(st, ctx) != FSQ_OK ||
      check_step(st, prev_tokens, incremental) != FSQ_OK)
    return NULL;
  fsq_tensor prev = *prev_tokens; /* our own header, as in tf_encode_state */
  prev.grad = NULL;
  prev.node = NULL;
  prev.requires_grad = 0;
  int was = fsq_ctx_set_grad(ctx, 0);
  fsq_tensor *logits = incremental ? incremental_logits(m, ctx, st, &prev)
                                   : full_logits(m, ctx, st, &prev);
  fsq_tensor *out = log_probs(ctx, logits, prev.shape[0]);
  fsq_ctx_set_grad(ctx, was);
  if (incremental) {
    /* A failure after some layer appended to its cache leaves the caches
     * out of step with each other: refuse further steps until encode. */
    st->steps = out != NULL ? st->steps + 1 : -1;
  }
  if (out == NULL) fsq_error_wrap(fsq_error_code(), "transformer: decode_step");
  return out;
}
