/* generator.c: fairseq's SequenceGenerator._generate and the searches of
 * fairseq/search.py over an ensemble of fsq_model_ops (see fsq_generate.h).
 *
 * The loop follows sequence_generator.py step for step: the ensemble's
 * log-probabilities for tokens[:, :step+1]; NaN, pad, unk penalty, max
 * length, prefix or min length, repeated n-grams; the search's step gives
 * cand_size = 2*beam candidates per sentence (sampling: beam); candidates
 * ending in </s> among the first beam are finalized; a sentence is done
 * with beam finalized hypotheses (or at max_len) and leaves the batch; the
 * first beam non-</s> candidates continue, and the decoder states are
 * reordered to them.
 *
 * The models compute on the generator's backend (their parameters and
 * decoder states live there); the search runs on the host. On a device,
 * each step uploads the [n, t] tokens and downloads the [n, V]
 * log-probabilities once into a host buffer kept between steps. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "generate/fsq_generate.h"
#include "generate/generate_internal.h"

struct pair {
  float v;
  int64_t i;
};

enum { SEARCH_BEAM, SEARCH_SAMPLING, SEARCH_DIVERSE_BEAM, SEARCH_LENGTH_CONSTRAINED,
       SEARCH_DIVERSE_SIBLINGS };

struct fsq_generator {
  fsq_gen_model *models;
  int n_models;
  int64_t V, beam, cand_size;
  int64_t pad, eos, unk;
  fsq_gen_options opt;
  int search;
  int64_t max_pos; /* the ensemble's max decoder positions */
  fsq_ctx *ctx;    /* on the models' backend */
  int device;      /* 1: ctx's memory is a device's, reached through its table only */

  /* decoder states and their capacity */
  fsq_model_decoder_state **states;
  int64_t st_rows, st_src, st_tgt;

  /* per-batch buffers, grown by reserve() */
  int64_t cap_bsz, cap_cols, cap_src, cap_prefix;
  int64_t *tokens, *tokens2;       /* [bsz*beam, cols] cols = max_len + 2 */
  float *scores, *scores2;         /* [bsz*beam, cols] */
  float *lprobs;                   /* [bsz*beam, V] this step's log-probs: the model's
                                      output in the step arena with one model, else lprobs_buf */
  float *lprobs_buf;               /* [bsz*beam, V] an ensemble's combination */
  float *lprobs_host;              /* [n_models, bsz*beam, V] on a device: the models'
                                      outputs downloaded */
  int64_t *prev;                   /* [bsz*beam, cols] contiguous decoder input */
  int64_t *src;                    /* [bsz, src_len] */
  float *cand_scores;              /* [bsz, cand_size] */
  int64_t *cand_indices, *cand_beams;
  uint8_t *eos_mask;               /* [bsz, cand_size] */
  uint8_t *ignore;                 /* [bsz, beam] cands_to_ignore */
  int64_t *active_hypos;           /* [bsz, beam] */
  int64_t *reorder;                /* [bsz*beam] */
  int64_t *sent_of;                /* [bsz] current row -> original sentence */
  int64_t *src_lengths;            /* [bsz] */
  int64_t *prefix;                 /* [bsz, prefix_len] */
  int64_t *ids;                    /* [bsz] */
  int64_t *batch_idxs;             /* [bsz] */
  uint8_t *finished;               /* [bsz] original sentences */
  int64_t *new_fin;                /* [bsz] */
  int64_t *hyp_count;              /* [bsz] */
  fsq_hypo *hypos;                 /* [bsz, beam] */
  int64_t *hyp_tokens;             /* [bsz*beam, cols] */
  float *hyp_pos;                  /* [bsz*beam, cols] */

  /* search scratch, sized by V and beam at creation */
  int n_threads;    /* slices of top_val, top_idx, rowp, rowadd */
  float *top_val;   /* [n_threads, cand_size] */
  int64_t *top_idx; /* [n_threads, cand_size] */
  float *dist_val;  /* [V] */
  int64_t *dist_idx;
  float *div_buf;   /* [V] diverse beam penalty counts */
  float *sib_val;   /* [beam * cand_size] */
  int64_t *sib_tok;
  const float **rowp; /* [n_threads, beam] */
  float *rowadd;      /* [n_threads, beam] */
  float *grp_val;     /* [cand_size] one diverse group's candidates */
  int64_t *grp_tok, *grp_beam;
  struct pair *pairs; /* [V] top-p sorting */
  const float **outs; /* [n_models] */
  int64_t prefix_len;
  int64_t n_out;      /* sentences of the last call */
  float *ref_logits;  /* --score-reference on a device: [cap_ref] host copy of the logits */
  size_t cap_ref;
};

/* ---- options ----------------------------------------------------------------- */

void fsq_gen_options_default(fsq_gen_options *o) {
  memset(o, 0, sizeof *o);
  o->beam = 5;
  o->nbest = 1;
  o->max_len_a = 0;
  o->max_len_b = 200;
  o->min_len = 1;
  o->normalize_scores = 1;
  o->lenpen = 1;
  o->unkpen = 0;
  o->temperature = 1.0;
  o->sampling_topk = -1;
  o->sampling_topp = -1.0;
  o->diverse_beam_groups = -1;
  o->diverse_beam_strength = 0.5;
  o->diversity_rate = -1;
  o->seed = 1;
}

fsq_status fsq_gen_options_check(const fsq_gen_options *o) {
  if (o->beam < 1) return fsq_error(FSQ_ERR_INVALID, "--beam must be at least 1 (got %lld)", (long long)o->beam);
  if (o->nbest < 1) /* above --beam it prints what there is, as fairseq */
    return fsq_error(FSQ_ERR_INVALID, "--nbest must be at least 1 (got %lld)", (long long)o->nbest);
  int exclusive = (o->sampling != 0) + (o->diverse_beam_groups > 0) + (o->match_source_len != 0) +
                  (o->diversity_rate > 0);
  if (exclusive > 1) return fsq_error(FSQ_ERR_INVALID, "Provided Search parameters are mutually exclusive.");
  if (o->sampling_topk >= 0 && !o->sampling)
    return fsq_error(FSQ_ERR_INVALID, "--sampling-topk requires --sampling");
  if (o->sampling_topp >= 0 && !o->sampling)
    return fsq_error(FSQ_ERR_INVALID, "--sampling-topp requires --sampling");
  if (o->sampling && o->nbest != o->beam)
    return fsq_error(FSQ_ERR_INVALID, "--sampling requires --nbest to be equal to --beam");
  if (o->diverse_beam_groups > 0 && o->beam % o->diverse_beam_groups != 0)
    return fsq_error(FSQ_ERR_INVALID,
                     "DiverseBeamSearch requires --beam to be divisible by the number of groups");
  if (!(o->temperature > 0)) return fsq_error(FSQ_ERR_INVALID, "--temperature must be greater than 0");
  if (o->no_repeat_ngram_size < 0)
    return fsq_error(FSQ_ERR_INVALID, "--no-repeat-ngram-size must be >= 0");
  return FSQ_OK;
}

/* ---- creation and buffers ------------------------------------------------------ */

static void *xrealloc(void *p, size_t n, size_t size, fsq_status *st) {
  if (*st != FSQ_OK) return p;
  void *q = realloc(p, (n ? n : 1) * size);
  if (q == NULL) *st = fsq_error(FSQ_ERR_NOMEM, "generator: out of memory");
  return q == NULL ? p : q;
}

fsq_status fsq_generator_create(const fsq_gen_model *models, int n_models, int64_t vocab_size,
                                const fsq_gen_options *opt, fsq_generator **out) {
  return fsq_generator_create_on(fsq_kernels_cpu(), models, n_models, vocab_size, opt, out);
}

fsq_status fsq_generator_create_on(const fsq_kernels *k, const fsq_gen_model *models,
                                   int n_models, int64_t vocab_size, const fsq_gen_options *opt,
                                   fsq_generator **out) {
  *out = NULL;
  if (k == NULL) return fsq_error(FSQ_ERR_INVALID, "generator: no backend");
  if (models == NULL || n_models < 1) return fsq_error(FSQ_ERR_INVALID, "generator: no models");
  if (vocab_size <= FSQ_DICT_UNK + 1)
    return fsq_error(FSQ_ERR_INVALID, "generator: vocabulary of %lld symbols is too small",
                     (long long)vocab_size);
  fsq_status st = fsq_gen_options_check(opt);
  if (st != FSQ_OK) return st;
  for (int i = 0; i < n_models; i++)
    if (models[i].ops == NULL || models[i].ops->decode_step == NULL ||
        models[i].ops->encode == NULL || models[i].ops->reorder == NULL ||
        models[i].ops->decoder_state_create == NULL)
      return fsq_error(FSQ_ERR_UNSUPPORTED, "generator: model %d has no inference ops", i + 1);
  fsq_generator *g = calloc(1, sizeof *g);
  if (g == NULL) return fsq_error(FSQ_ERR_NOMEM, "generator: out of memory");
  g->opt = *opt;
  g->n_models = n_models;
  g->V = vocab_size;
  g->pad = FSQ_DICT_PAD;
  g->eos = FSQ_DICT_EOS;
  g->unk = FSQ_DICT_UNK;
  g->beam = opt->beam < vocab_size - 1 ? opt->beam : vocab_size - 1;
  g->cand_size = 2 * g->beam;
  if (opt->sampling) g->search = SEARCH_SAMPLING;
  else if (opt->diverse_beam_groups > 0) g->search = SEARCH_DIVERSE_BEAM;
  else if (opt->match_source_len) g->search = SEARCH_LENGTH_CONSTRAINED;
  else if (opt->diversity_rate > -1) g->search = SEARCH_DIVERSE_SIBLINGS;
  else g->search = SEARCH_BEAM;
  if (g->search == SEARCH_DIVERSE_BEAM && g->beam % opt->diverse_beam_groups != 0) {
    free(g);
    return fsq_error(FSQ_ERR_INVALID,
                     "DiverseBeamSearch requires --beam to be divisible by the number of groups");
  }
  g->max_pos = INT64_MAX;
  for (int i = 0; i < n_models; i++) {
    int64_t ms = 0, mt = 0;
    if (models[i].ops->max_positions != NULL) {
      models[i].ops->max_positions(models[i].model, &ms, &mt);
      if (mt > 0 && mt < g->max_pos) g->max_pos = mt;
    }
  }
  g->models = malloc((size_t)n_models * sizeof *g->models);
  g->states = calloc((size_t)n_models, sizeof *g->states);
  g->ctx = fsq_ctx_create_on(k, 0);
  g->device = !k->host;
  if (g->models == NULL || g->states == NULL || g->ctx == NULL) {
    fsq_generator_destroy(g);
    return fsq_error(FSQ_ERR_NOMEM, "generator: out of memory");
  }
  memcpy(g->models, models, (size_t)n_models * sizeof *g->models);
  fsq_ctx_set_grad(g->ctx, 0);
  fsq_ctx_set_training(g->ctx, 0);
  size_t V = (size_t)g->V, cs = (size_t)g->cand_size, b = (size_t)g->beam;
  /* the beam search's scratch, one slice per thread (slice 0 for the rest) */
  g->n_threads = fsq_num_threads() > 0 ? fsq_num_threads() : 1;
  size_t nt = (size_t)g->n_threads;
  g->top_val = xrealloc(NULL, nt * cs, sizeof(float), &st);
  g->top_idx = xrealloc(NULL, nt * cs, sizeof(int64_t), &st);
  g->dist_val = xrealloc(NULL, V, sizeof(float), &st);
  g->dist_idx = xrealloc(NULL, V, sizeof(int64_t), &st);
  g->div_buf = xrealloc(NULL, V, sizeof(float), &st);
  g->sib_val = xrealloc(NULL, b * cs, sizeof(float), &st);
  g->sib_tok = xrealloc(NULL, b * cs, sizeof(int64_t), &st);
  g->rowp = xrealloc(NULL, nt * b, sizeof(float *), &st);
  g->rowadd = xrealloc(NULL, nt * b, sizeof(float), &st);
  g->grp_val = xrealloc(NULL, cs, sizeof(float), &st);
  g->grp_tok = xrealloc(NULL, cs, sizeof(int64_t), &st);
  g->grp_beam = xrealloc(NULL, cs, sizeof(int64_t), &st);
  g->pairs = xrealloc(NULL, V, sizeof(struct pair), &st);
  g->outs = xrealloc(NULL, (size_t)n_models, sizeof(float *), &st);
  if (st != FSQ_OK) {
    fsq_generator_destroy(g);
    return st;
  }
  memset(g->div_buf, 0, V * sizeof(float)); /* diverse beam: kept zero between sentences */
  *out = g;
  return FSQ_OK;
}

void fsq_generator_destroy(fsq_generator *g) {
  if (g == NULL) return;
  for (int i = 0; g->states != NULL && i < g->n_models; i++)
    if (g->states[i] != NULL) g->models[i].ops->decoder_state_destroy(g->states[i]);
  free(g->states);
  free(g->models);
  fsq_ctx_destroy(g->ctx);
  void *bufs[] = {g->tokens, g->tokens2, g->scores, g->scores2, g->lprobs_buf, g->prev, g->src,
                  g->cand_scores, g->cand_indices, g->cand_beams, g->eos_mask, g->ignore,
                  g->active_hypos, g->reorder, g->sent_of, g->src_lengths, g->prefix, g->ids,
                  g->batch_idxs, g->finished, g->new_fin, g->hyp_count, g->hypos, g->hyp_tokens,
                  g->hyp_pos, g->top_val, g->top_idx, g->dist_val, g->dist_idx, g->div_buf,
                  g->sib_val, g->sib_tok, (void *)g->rowp, g->rowadd, g->grp_val,
                  g->grp_tok, g->grp_beam, g->pairs, (void *)g->outs, g->lprobs_host,
                  g->ref_logits};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(g);
}

int64_t fsq_generator_beam(const fsq_generator *g) { return g->beam; }

/* Grows the per-batch buffers (never shrinks them). */
static fsq_status reserve(fsq_generator *g, int64_t bsz, int64_t cols, int64_t src_len,
                          int64_t prefix_len) {
  fsq_status st = FSQ_OK;
  if (bsz > g->cap_bsz || cols > g->cap_cols) {
    int64_t nb = bsz > g->cap_bsz ? bsz : g->cap_bsz, nc = cols > g->cap_cols ? cols : g->cap_cols;
    size_t rows = (size_t)(nb * g->beam), cs = (size_t)g->cand_size, B = (size_t)nb;
    g->tokens = xrealloc(g->tokens, rows * (size_t)nc, sizeof(int64_t), &st);
    g->tokens2 = xrealloc(g->tokens2, rows * (size_t)nc, sizeof(int64_t), &st);
    g->scores = xrealloc(g->scores, rows * (size_t)nc, sizeof(float), &st);
    g->scores2 = xrealloc(g->scores2, rows * (size_t)nc, sizeof(float), &st);
    g->prev = xrealloc(g->prev, rows * (size_t)nc, sizeof(int64_t), &st);
    g->hyp_tokens = xrealloc(g->hyp_tokens, rows * (size_t)nc, sizeof(int64_t), &st);
    g->hyp_pos = xrealloc(g->hyp_pos, rows * (size_t)nc, sizeof(float), &st);
    if (g->n_models > 1)
      g->lprobs_buf = xrealloc(g->lprobs_buf, rows * (size_t)g->V, sizeof(float), &st);
    if (g->device)
      g->lprobs_host = xrealloc(g->lprobs_host, (size_t)g->n_models * rows * (size_t)g->V,
                                sizeof(float), &st);
    g->cand_scores = xrealloc(g->cand_scores, B * cs, sizeof(float), &st);
    g->cand_indices = xrealloc(g->cand_indices, B * cs, sizeof(int64_t), &st);
    g->cand_beams = xrealloc(g->cand_beams, B * cs, sizeof(int64_t), &st);
    g->eos_mask = xrealloc(g->eos_mask, B * cs, sizeof(uint8_t), &st);
    g->ignore = xrealloc(g->ignore, rows, sizeof(uint8_t), &st);
    g->active_hypos = xrealloc(g->active_hypos, rows, sizeof(int64_t), &st);
    g->reorder = xrealloc(g->reorder, rows, sizeof(int64_t), &st);
    g->hypos = xrealloc(g->hypos, rows, sizeof(fsq_hypo), &st);
    g->sent_of = xrealloc(g->sent_of, B, sizeof(int64_t), &st);
    g->src_lengths = xrealloc(g->src_lengths, B, sizeof(int64_t), &st);
    g->ids = xrealloc(g->ids, B, sizeof(int64_t), &st);
    g->batch_idxs = xrealloc(g->batch_idxs, B, sizeof(int64_t), &st);
    g->finished = xrealloc(g->finished, B, sizeof(uint8_t), &st);
    g->new_fin = xrealloc(g->new_fin, B, sizeof(int64_t), &st);
    g->hyp_count = xrealloc(g->hyp_count, B, sizeof(int64_t), &st);
    if (st != FSQ_OK) return st;
    g->cap_bsz = nb;
    g->cap_cols = nc;
    g->cap_src = g->cap_prefix = 0; /* sized by bsz: regrow below */
  }
  if (bsz * src_len > g->cap_src) {
    g->src = xrealloc(g->src, (size_t)(bsz * src_len), sizeof(int64_t), &st);
    if (st != FSQ_OK) return st;
    g->cap_src = bsz * src_len;
  }
  if (bsz * prefix_len > g->cap_prefix) {
    g->prefix = xrealloc(g->prefix, (size_t)(bsz * prefix_len), sizeof(int64_t), &st);
    if (st != FSQ_OK) return st;
    g->cap_prefix = bsz * prefix_len;
  }
  return FSQ_OK;
}

/* Decoder states large enough for rows x src_len x tgt_len (recreated only
 * when a batch needs more than the last one). */
static fsq_status reserve_states(fsq_generator *g, int64_t rows, int64_t src_len, int64_t tgt_len) {
  if (g->states[0] != NULL && rows <= g->st_rows && src_len <= g->st_src && tgt_len <= g->st_tgt)
    return FSQ_OK;
  /* Batches come by increasing length: grow what is short by half again
   * at least, so the states (and their first-touch page faults) are not
   * made anew for every batch. */
  if (g->states[0] != NULL) {
    if (rows > g->st_rows && rows < g->st_rows + g->st_rows / 2) rows = g->st_rows + g->st_rows / 2;
    if (src_len > g->st_src && src_len < g->st_src + g->st_src / 2) src_len = g->st_src + g->st_src / 2;
    if (tgt_len > g->st_tgt && tgt_len < g->st_tgt + g->st_tgt / 2) tgt_len = g->st_tgt + g->st_tgt / 2;
  }
  if (rows < g->st_rows) rows = g->st_rows;
  if (src_len < g->st_src) src_len = g->st_src;
  if (tgt_len < g->st_tgt) tgt_len = g->st_tgt;
  for (int i = 0; i < g->n_models; i++) {
    if (g->states[i] != NULL) g->models[i].ops->decoder_state_destroy(g->states[i]);
    g->states[i] = NULL;
    fsq_status st = g->models[i].ops->decoder_state_create(g->models[i].model, rows, src_len,
                                                           tgt_len, &g->states[i]);
    if (st != FSQ_OK) return fsq_error_wrap(st, "generator: model %d", i + 1);
  }
  g->st_rows = rows;
  g->st_src = src_len;
  g->st_tgt = tgt_len;
  return FSQ_OK;
}

/* ---- the ensemble's next-token log-probabilities -------------------------------- */

/* x[0..V) = log_softmax(x / T) in place. */
static void log_softmax_temp(float *x, int64_t V, float T) {
  float mx = -INFINITY;
  for (int64_t v = 0; v < V; v++) {
    x[v] = x[v] / T;
    if (x[v] > mx) mx = x[v];
  }
  if (mx == -INFINITY) return;
  double sum = 0;
  for (int64_t v = 0; v < V; v++) sum += exp((double)(x[v] - mx));
  float lse = mx + (float)log(sum);
  for (int64_t v = 0; v < V; v++) x[v] -= lse;
}

/* Model i's step output t where the search reads it: the arena tensor
 * itself on the host (no copy), else downloaded once into model i's slice
 * of lprobs_host. */
static float *step_output(fsq_generator *g, int i, fsq_tensor *t, int64_t n,
                                fsq_status *st) {
  if (t == NULL) {
    *st = fsq_ctx_status(g->ctx) != FSQ_OK ? fsq_ctx_status(g->ctx) : fsq_error_code();
    if (*st == FSQ_OK) *st = FSQ_ERR_INTERNAL;
    fsq_error_wrap(*st, "generator: model %d decode_step", i + 1);
    return NULL;
  }
  if (t->dtype != FSQ_F32 || t->ndim != 2 || t->shape[0] != n || t->shape[1] != g->V) {
    *st = fsq_error(FSQ_ERR_INTERNAL, "generator: model %d decode_step returned %d-d dtype %d, "
                                      "expected f32 [%lld, %lld]",
                    i + 1, t->ndim, (int)t->dtype, (long long)n, (long long)g->V);
    return NULL;
  }
  if (g->device) {
    float *host = g->lprobs_host + (size_t)i * (size_t)(n * g->V);
    *st = fsq_download(g->ctx, t, host);
    if (*st == FSQ_OK) *st = fsq_ctx_kernels(g->ctx)->status(); /* the step's kernels, done */
    if (*st != FSQ_OK) {
      fsq_error_wrap(*st, "generator: model %d decode_step", i + 1);
      return NULL;
    }
    return host;
  }
  t = fsq_contiguous(g->ctx, t);
  if (t == NULL) {
    *st = fsq_error_code();
    return NULL;
  }
  return t->data;
}

/* Host tokens data: [rows, cols] as a tensor of the generator's ctx: the
 * buffer itself on the host (no copy), an upload on a device. */
static fsq_tensor *tokens_tensor(fsq_generator *g, int64_t *data, int64_t rows, int64_t cols) {
  int64_t shape[2] = {rows, cols};
  return g->device ? fsq_from_data(g->ctx, FSQ_I64, 2, shape, data)
                   : fsq_wrap(g->ctx, FSQ_I64, 2, shape, data);
}

/* lprobs[0..n) = EnsembleModel.forward_decoder(tokens[:, :t]). With one
 * model lprobs is the model's output itself, in the step arena (on a
 * device, its host copy): the search edits it in place, and it stays valid
 * until the next step (no copy of the [n, V] rows on the host). */
static fsq_status ensemble_step(fsq_generator *g, int64_t n, int64_t t) {
  fsq_ctx_reset(g->ctx);
  fsq_tensor *prev = tokens_tensor(g, g->prev, n, t);
  if (prev == NULL) return fsq_error_code();
  size_t nv = (size_t)(n * g->V);
  float T = (float)g->opt.temperature;
  fsq_status st = FSQ_OK;
  const float **outs = g->outs;
  int M = g->n_models;
  for (int i = 0; i < M; i++) {
    fsq_tensor *o = g->models[i].ops->decode_step(g->models[i].model, g->ctx, g->states[i], prev, 1);
    float *d = step_output(g, i, o, n, &st);
    if (d == NULL) return st;
    if (T != 1.0f) /* the arena tensor is ours until the next reset */
      for (int64_t r = 0; r < n; r++) log_softmax_temp(d + r * g->V, g->V, T);
    if (M == 1) {
      g->lprobs = d;
      return FSQ_OK;
    }
    outs[i] = d;
  }
  float logm = (float)log((double)M);
  g->lprobs = g->lprobs_buf;
  for (size_t k = 0; k < nv; k++) {
    float mx = -INFINITY;
    for (int i = 0; i < M; i++)
      if (outs[i][k] > mx) mx = outs[i][k];
    if (mx == -INFINITY) {
      g->lprobs[k] = -INFINITY;
      continue;
    }
    float s = 0;
    for (int i = 0; i < M; i++) s += expf(outs[i][k] - mx);
    g->lprobs[k] = mx + logf(s) - logm;
  }
  return FSQ_OK;
}

/* fairseq's lprobs[lprobs != lprobs] = -inf. A NaN is rare: one read-only
 * pass (a branch-free reduction) finds whether there is any. */
static void nan_to_neg_inf(float *x, int64_t n) {
  int bad = 0;
#pragma omp parallel for simd reduction(| : bad) schedule(static) if (n >= (1 << 20))
  for (int64_t i = 0; i < n; i++) bad |= x[i] != x[i];
  if (!bad) return;
  for (int64_t i = 0; i < n; i++)
    if (x[i] != x[i]) x[i] = -INFINITY;
}

/* ---- searches --------------------------------------------------------------------- */

/* The k largest of x(r, v) = (rows[r][v] + alpha * pen[v]) + add[r] over r < nr,
 * v < V, flattened as r * V + v, best first, ties by the lower index
 * (torch.topk over lprobs.view(bsz, -1)). */
static int64_t topk_rows(const float *const *rows, const float *add, int64_t nr, int64_t V,
                         const float *pen, float alpha, int64_t k, float *val, int64_t *idx) {
  enum { BLOCK = 32 };
  int64_t n = 0;
  for (int64_t r = 0; r < nr; r++) {
    const float *row = rows[r];
    for (int64_t v0 = 0; v0 < V; v0 += BLOCK) {
      int64_t end = v0 + BLOCK < V ? v0 + BLOCK : V;
      /* Once the list is full, a block whose largest value would not enter
       * it is skipped whole (x + add[r] is monotonic in x, so the test is
       * exact): most blocks, since the list soon holds the best of all. */
      if (n == k && pen == NULL) {
        float m = -INFINITY;
        for (int64_t v = v0; v < end; v++) m = row[v] > m ? row[v] : m;
        if (add != NULL) m = m + add[r];
        if (!(m > val[k - 1])) continue;
      }
      for (int64_t v = v0; v < end; v++) {
        float x = row[v];
        if (pen != NULL) x = x + alpha * pen[v];
        if (add != NULL) x = x + add[r];
        if (n == k && !(x > val[k - 1])) continue;
        int64_t p = n < k ? n : k - 1;
        while (p > 0 && x > val[p - 1]) {
          val[p] = val[p - 1];
          idx[p] = idx[p - 1];
          p--;
        }
        val[p] = x;
        idx[p] = r * V + v;
        if (n < k) n++;
      }
    }
  }
  return n;
}

/* BeamSearch.step for one sentence (or one group of it): rows are the
 * sentence's beam rows (nr of them), prev_scores[r] their cumulative scores
 * at step - 1. Writes ncand candidates with beams relative to the rows. */
static int64_t beam_step_into(fsq_generator *g, int64_t step, const float *const *rows,
                              const float *prev_scores, int64_t nr, const float *pen, float alpha,
                              float *cs, int64_t *ci, int64_t *cb, float *top_val,
                              int64_t *top_idx) {
  int64_t k;
  if (step == 0) {
    k = 2 * nr < g->V - 1 ? 2 * nr : g->V - 1;
    nr = 1; /* all hypotheses are equally likely: only the first beam */
    prev_scores = NULL;
  } else {
    k = 2 * nr < nr * g->V - 1 ? 2 * nr : nr * g->V - 1;
  }
  int64_t n = topk_rows(rows, prev_scores, nr, g->V, pen, alpha, k, top_val, top_idx);
  for (int64_t j = 0; j < n; j++) {
    cs[j] = top_val[j];
    ci[j] = top_idx[j] % g->V;
    cb[j] = top_idx[j] / g->V;
  }
  return n;
}

static int64_t beam_step(fsq_generator *g, int64_t step, const float *const *rows,
                         const float *prev_scores, int64_t nr, const float *pen, float alpha,
                         float *cs, int64_t *ci, int64_t *cb) {
  return beam_step_into(g, step, rows, prev_scores, nr, pen, alpha, cs, ci, cb, g->top_val,
                        g->top_idx);
}

static int cmp_pair_desc(const void *a, const void *b) {
  const struct pair *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

/* dist_val/dist_idx[0..n) sorted by value, largest first. */
static void sort_desc(fsq_generator *g, int64_t n) {
  for (int64_t j = 0; j < n; j++) g->pairs[j] = (struct pair){g->dist_val[j], g->dist_idx[j]};
  qsort(g->pairs, (size_t)n, sizeof *g->pairs, cmp_pair_desc);
  for (int64_t j = 0; j < n; j++) {
    g->dist_val[j] = g->pairs[j].v;
    g->dist_idx[j] = g->pairs[j].i;
  }
}

/* The distribution Sampling.step draws row from: tokens dist_idx[0..n),
 * unnormalized probabilities dist_val[0..n). */
static int64_t sampling_dist(fsq_generator *g, const float *row) {
  int64_t V = g->V, n;
  if (g->opt.sampling_topp > 0) {
    for (int64_t v = 0; v < V; v++) {
      g->dist_val[v] = expf(row[v]);
      g->dist_idx[v] = v;
    }
    sort_desc(g, V);
    float cum = 0;
    int64_t c = 0;
    for (int64_t v = 0; v < V; v++) {
      cum += g->dist_val[v];
      if (cum < (float)g->opt.sampling_topp) c++;
      else break;
    }
    if (c > V - 1) c = V - 1;
    n = c + 1;
  } else if (g->opt.sampling_topk > 0) {
    int64_t k = g->opt.sampling_topk < V ? g->opt.sampling_topk : V;
    n = topk_rows(&row, NULL, 1, V, NULL, 0, k, g->dist_val, g->dist_idx);
    for (int64_t j = 0; j < n; j++) g->dist_val[j] = expf(g->dist_val[j]);
  } else {
    for (int64_t v = 0; v < V; v++) {
      g->dist_val[v] = expf(row[v]);
      g->dist_idx[v] = v;
    }
    n = V;
  }
  return n;
}

/* torch.multinomial of one draw with uniform u in [0, 1). */
static int64_t draw(const float *p, int64_t n, float u) {
  double total = 0;
  for (int64_t j = 0; j < n; j++) total += p[j];
  double target = u * total, cum = 0;
  int64_t last = 0;
  for (int64_t j = 0; j < n; j++) {
    if (!(p[j] > 0)) continue;
    last = j;
    cum += p[j];
    if (cum > target) return j;
  }
  return last;
}

/* Sampling.step for sentence b: beam candidates. */
static int64_t sampling_step(fsq_generator *g, int64_t step, int64_t b, int64_t cols, float *cs,
                             int64_t *ci, int64_t *cb) {
  int64_t beam = g->beam, n = 0;
  uint64_t stream = (uint64_t)g->ids[g->sent_of[b]];
  for (int64_t j = 0; j < beam; j++) {
    int64_t r = b * beam + (step == 0 ? 0 : j);
    if (step > 0 || j == 0) n = sampling_dist(g, g->lprobs + r * g->V);
    float u = fsq_rng_uniform_at(g->opt.seed, stream, (uint64_t)(step * beam + j));
    int64_t pick = draw(g->dist_val, n, u);
    float s = logf(g->dist_val[pick]);
    if (step > 0) s += g->scores[r * cols + step - 1];
    cs[j] = s;
    ci[j] = g->dist_idx[pick];
    cb[j] = step == 0 ? 0 : j;
  }
  return beam;
}

/* DiverseBeamSearch.step for sentence b. */
static int64_t diverse_beam_step(fsq_generator *g, int64_t step, int64_t b, int64_t cols,
                                 float *cs, int64_t *ci, int64_t *cb) {
  int64_t G = g->opt.diverse_beam_groups, bg = g->beam / G, ncand = 0;
  float alpha = -(float)g->opt.diverse_beam_strength;
  float *gs = g->grp_val;
  int64_t *gi = g->grp_tok, *gb = g->grp_beam;
  for (int64_t gr = 0; gr < G; gr++) {
    for (int64_t i = 0; i < bg; i++) {
      int64_t r = b * g->beam + gr + i * G;
      g->rowp[i] = g->lprobs + r * g->V;
      g->rowadd[i] = step > 0 ? g->scores[r * cols + step - 1] : 0;
    }
    int64_t n = beam_step(g, step, g->rowp, g->rowadd, bg, gr > 0 ? g->div_buf : NULL, alpha,
                          gs, gi, gb);
    for (int64_t j = 0; j < n; j++) {
      cs[j * G + gr] = gs[j];
      ci[j * G + gr] = gi[j];
      cb[j * G + gr] = gb[j] * G + gr;
    }
    for (int64_t j = 0; j < n; j++) g->div_buf[gi[j]] += 1;
    ncand = n * G;
  }
  for (int64_t j = 0; j < ncand; j++) g->div_buf[ci[j]] = 0;
  return ncand;
}

/* DiverseSiblingsSearch.step for sentence b. */
static int64_t siblings_step(fsq_generator *g, int64_t step, int64_t b, int64_t cols, float *cs,
                             int64_t *ci, int64_t *cb) {
  int64_t beam = g->beam, V = g->V;
  for (int64_t i = 0; i < beam; i++) {
    int64_t r = b * beam + i;
    g->rowp[i] = g->lprobs + r * V;
    g->rowadd[i] = step > 0 ? g->scores[r * cols + step - 1] : 0;
  }
  if (step == 0) return beam_step(g, step, g->rowp, g->rowadd, beam, NULL, 0, cs, ci, cb);
  int64_t k = 2 * beam < beam * V - 1 ? 2 * beam : beam * V - 1;
  if (k > V) k = V;
  float rate = (float)g->opt.diversity_rate;
  for (int64_t i = 0; i < beam; i++) {
    int64_t n = topk_rows(&g->rowp[i], &g->rowadd[i], 1, V, NULL, 0, k, g->top_val, g->top_idx);
    for (int64_t j = 0; j < n; j++) {
      g->sib_val[i * k + j] = g->top_val[j] - (float)(j + 1) * rate;
      g->sib_tok[i * k + j] = g->top_idx[j] % V;
    }
  }
  /* topk over the beam * k sibling scores */
  const float *flat = g->sib_val;
  int64_t n = topk_rows(&flat, NULL, 1, beam * k, NULL, 0, k, g->top_val, g->top_idx);
  for (int64_t j = 0; j < n; j++) {
    cs[j] = g->top_val[j];
    cb[j] = g->top_idx[j] / k;
    ci[j] = g->sib_tok[g->top_idx[j]];
  }
  return n;
}

/* ---- the per-step masks ------------------------------------------------------------- */

/* NGramRepeatBlock: bans tokens that would repeat an n-gram of the row
 * (tokens[0..step], </s> first). */
static void block_ngrams(fsq_generator *g, int64_t n_rows, int64_t step, int64_t cols) {
  int64_t n = g->opt.no_repeat_ngram_size;
  if (step + 2 - n < 0) return;
  for (int64_t r = 0; r < n_rows; r++) {
    const int64_t *t = g->tokens + r * cols;
    const int64_t *key = t + step + 2 - n; /* the last n - 1 tokens */
    float *lp = g->lprobs + r * g->V;
    for (int64_t i = 0; i + n - 1 <= step; i++) {
      if (memcmp(t + i, key, (size_t)(n - 1) * sizeof(int64_t)) == 0) {
        int64_t ban = t[i + n - 1];
        if (ban >= 0 && ban < g->V) lp[ban] = -INFINITY;
      }
    }
  }
}

/* _prefix_tokens: rows of sentences with a prefix token at step keep only it. */
static void apply_prefix(fsq_generator *g, int64_t bsz, int64_t step, int64_t cols) {
  int64_t beam = g->beam, V = g->V;
  for (int64_t b = 0; b < bsz; b++) {
    int64_t p = g->prefix[b * g->prefix_len + step];
    if (p == g->pad || p < 0 || p >= V) continue;
    for (int64_t i = 0; i < beam; i++) {
      float *lp = g->lprobs + (b * beam + i) * V;
      float keep = lp[p];
      for (int64_t v = 0; v < V; v++) lp[v] = -INFINITY;
      lp[p] = keep;
    }
    if (p == g->eos) { /* every beam copies the first */
      for (int64_t i = 1; i < beam; i++) {
        int64_t r0 = b * beam, r = r0 + i;
        memcpy(g->tokens + r * cols, g->tokens + r0 * cols, (size_t)cols * sizeof(int64_t));
        memcpy(g->scores + r * cols, g->scores + r0 * cols, (size_t)cols * sizeof(float));
        memcpy(g->lprobs + r * V, g->lprobs + r0 * V, (size_t)V * sizeof(float));
      }
    }
  }
}

/* ---- finalize_hypos --------------------------------------------------------------- */

static void finalize(fsq_generator *g, int64_t step, int64_t bsz, int64_t cols, int64_t max_len,
                     int64_t *n_new) {
  int64_t beam = g->beam, cs = g->cand_size;
  float norm = (float)pow((double)(step + 1), g->opt.lenpen);
  *n_new = 0;
  for (int64_t b = 0; b < bsz; b++) {
    int64_t sent = g->sent_of[b];
    int any = 0;
    for (int64_t j = 0; j < beam; j++) {
      if (!g->eos_mask[b * cs + j]) continue;
      any = 1;
      if (g->hyp_count[sent] >= beam) continue;
      int64_t bbsz = g->cand_beams[b * cs + j] + b * beam;
      float eos_score = g->cand_scores[b * cs + j];
      int64_t h = sent * beam + g->hyp_count[sent]++;
      int64_t *ht = g->hyp_tokens + h * g->cap_cols;
      float *hp = g->hyp_pos + h * g->cap_cols;
      const int64_t *t = g->tokens + bbsz * cols;
      const float *s = g->scores + bbsz * cols;
      for (int64_t k = 0; k < step; k++) ht[k] = t[k + 1];
      ht[step] = g->eos;
      for (int64_t k = 0; k < step; k++) hp[k] = s[k];
      hp[step] = eos_score;
      for (int64_t k = step; k >= 1; k--) hp[k] = hp[k] - hp[k - 1];
      float score = eos_score;
      if (g->opt.normalize_scores) score = score / norm;
      if (g->search == SEARCH_LENGTH_CONSTRAINED && step > g->src_lengths[b]) score = -INFINITY;
      g->hypos[h] = (fsq_hypo){ht, hp, step + 1, score};
    }
    /* is_finished, for the sentences this step touched (in sentence order) */
    if (any && !g->finished[sent] && (g->hyp_count[sent] == beam || step == max_len)) {
      g->finished[sent] = 1;
      g->new_fin[(*n_new)++] = b;
    }
  }
}

/* Removes the finished sentences from the batch (rows b of new_fin). */
static int64_t prune(fsq_generator *g, int64_t bsz, int64_t cols, const int64_t *fin, int64_t nfin) {
  int64_t beam = g->beam, cs = g->cand_size, nb = 0, f = 0;
  for (int64_t b = 0; b < bsz; b++) {
    if (f < nfin && fin[f] == b) {
      f++;
      continue;
    }
    g->batch_idxs[nb] = b;
    if (nb != b) {
      memcpy(g->eos_mask + nb * cs, g->eos_mask + b * cs, (size_t)cs);
      memcpy(g->cand_beams + nb * cs, g->cand_beams + b * cs, (size_t)cs * sizeof(int64_t));
      memcpy(g->cand_scores + nb * cs, g->cand_scores + b * cs, (size_t)cs * sizeof(float));
      memcpy(g->cand_indices + nb * cs, g->cand_indices + b * cs, (size_t)cs * sizeof(int64_t));
      if (g->prefix_len > 0)
        memcpy(g->prefix + nb * g->prefix_len, g->prefix + b * g->prefix_len,
               (size_t)g->prefix_len * sizeof(int64_t));
      g->src_lengths[nb] = g->src_lengths[b];
      g->sent_of[nb] = g->sent_of[b];
      memcpy(g->ignore + nb * beam, g->ignore + b * beam, (size_t)beam);
      memmove(g->scores + nb * beam * cols, g->scores + b * beam * cols,
              (size_t)(beam * cols) * sizeof(float));
      memmove(g->tokens + nb * beam * cols, g->tokens + b * beam * cols,
              (size_t)(beam * cols) * sizeof(int64_t));
    }
    nb++;
  }
  return nb;
}

static int cmp_hypo_desc(const void *a, const void *b) {
  const fsq_hypo *x = a, *y = b;
  if (x->score > y->score) return -1;
  if (x->score < y->score) return 1;
  return 0;
}

/* Stable sort of each sentence's hypotheses by score, best first. */
static void sort_hypos(fsq_generator *g, int64_t bsz) {
  for (int64_t s = 0; s < bsz; s++) {
    fsq_hypo *h = g->hypos + s * g->beam;
    int64_t n = g->hyp_count[s];
    for (int64_t i = 1; i < n; i++) { /* insertion sort: stable, n <= beam */
      fsq_hypo x = h[i];
      int64_t j = i;
      while (j > 0 && cmp_hypo_desc(&x, &h[j - 1]) < 0) {
        h[j] = h[j - 1];
        j--;
      }
      h[j] = x;
    }
  }
}

/* ---- _generate ------------------------------------------------------------------- */

/* Sentence b's unused candidate slots (never chosen) and its eos mask. */
static void finish_candidates(fsq_generator *g, int64_t b, int64_t ncand) {
  int64_t cs = g->cand_size, beam = g->beam;
  float *bcs = g->cand_scores + b * cs;
  int64_t *bci = g->cand_indices + b * cs, *bcb = g->cand_beams + b * cs;
  for (int64_t j = ncand; j < cs; j++) {
    bcs[j] = -INFINITY;
    bci[j] = g->pad;
    bcb[j] = 0;
  }
  uint8_t *em = g->eos_mask + b * cs;
  for (int64_t j = 0; j < cs; j++) em[j] = j < ncand && bci[j] == g->eos && bcs[j] != -INFINITY;
  for (int64_t j = 0; j < beam && j < cs; j++)
    if (g->ignore[b * beam + j]) em[j] = 0;
}

/* The calling thread's scratch slice: 0 outside a parallel region. */
static int thread_slot(const fsq_generator *g) {
#ifdef _OPENMP
  int t = omp_get_thread_num();
  return t < g->n_threads ? t : 0;
#else
  (void)g;
  return 0;
#endif
}

/* BeamSearch (or LengthConstrainedBeamSearch) for sentence b with the
 * scratch slice t; returns its number of candidates. */
static int64_t beam_candidates(fsq_generator *g, int64_t step, int64_t b, int64_t cols, int t) {
  int64_t beam = g->beam, V = g->V, cs = g->cand_size;
  if (g->search == SEARCH_LENGTH_CONSTRAINED) {
    int64_t sl = g->src_lengths[b];
    for (int64_t i = 0; i < beam; i++) {
      float *lp = g->lprobs + (b * beam + i) * V;
      if (step < sl) lp[g->eos] = -INFINITY;
      if (step >= sl) lp[g->eos] = 0;
    }
  }
  const float **rowp = g->rowp + (size_t)t * (size_t)beam;
  float *rowadd = g->rowadd + (size_t)t * (size_t)beam;
  for (int64_t i = 0; i < beam; i++) {
    int64_t r = b * beam + i;
    rowp[i] = g->lprobs + r * V;
    rowadd[i] = step > 0 ? g->scores[r * cols + step - 1] : 0;
  }
  int64_t n = beam_step_into(g, step, rowp, rowadd, beam, NULL, 0, g->cand_scores + b * cs,
                             g->cand_indices + b * cs, g->cand_beams + b * cs,
                             g->top_val + (size_t)t * (size_t)cs, g->top_idx + (size_t)t * (size_t)cs);
  finish_candidates(g, b, n);
  return n;
}


fsq_status fsq_generator_generate(fsq_generator *g, const int64_t *src_tokens, int64_t bsz,
                                  int64_t src_len, const int64_t *ids,
                                  const int64_t *prefix_tokens, int64_t prefix_len) {
  if (bsz < 1 || src_len < 1 || src_tokens == NULL)
    return fsq_error(FSQ_ERR_INVALID, "generator: empty batch");
  if (prefix_tokens == NULL) prefix_len = 0;
  const fsq_gen_options *o = &g->opt;
  int64_t beam = g->beam, V = g->V, cs = g->cand_size;
  /* src_lengths: non-pad, non-eos tokens */
  int64_t max_src = 0;
  int64_t max_len;
  fsq_status st = FSQ_OK;
  if (o->match_source_len) {
    for (int64_t b = 0; b < bsz; b++) {
      int64_t n = 0;
      for (int64_t k = 0; k < src_len; k++) {
        int64_t x = src_tokens[b * src_len + k];
        n += x != g->eos && x != g->pad;
      }
      if (n > max_src) max_src = n;
    }
    max_len = max_src;
  } else {
    max_len = (int64_t)(o->max_len_a * (double)src_len + (double)o->max_len_b);
    if (g->max_pos - 1 < max_len) max_len = g->max_pos - 1;
  }
  if (o->min_len > max_len)
    return fsq_error(FSQ_ERR_INVALID, "generator: --min-len %lld is greater than max_len %lld",
                     (long long)o->min_len, (long long)max_len);
  if (max_len < 0) return fsq_error(FSQ_ERR_INVALID, "generator: max_len %lld", (long long)max_len);
  int64_t cols = max_len + 2;
  if ((st = reserve(g, bsz, cols, src_len, prefix_len)) != FSQ_OK) return st;
  g->prefix_len = prefix_len;
  for (int64_t b = 0; b < bsz; b++) {
    int64_t n = 0;
    for (int64_t k = 0; k < src_len; k++) {
      int64_t x = src_tokens[b * src_len + k];
      n += x != g->eos && x != g->pad;
    }
    g->src_lengths[b] = n;
    g->sent_of[b] = b;
    g->ids[b] = ids != NULL ? ids[b] : b;
    g->finished[b] = 0;
    g->hyp_count[b] = 0;
  }
  if (prefix_len > 0) memcpy(g->prefix, prefix_tokens, (size_t)(bsz * prefix_len) * sizeof(int64_t));
  memcpy(g->src, src_tokens, (size_t)(bsz * src_len) * sizeof(int64_t));
  int64_t rows = bsz * beam;
  if ((st = reserve_states(g, rows, src_len, max_len + 1)) != FSQ_OK) return st;

  /* encoder, then expand each sentence to beam rows */
  fsq_ctx_reset(g->ctx);
  fsq_tensor *src = tokens_tensor(g, g->src, bsz, src_len);
  if (src == NULL) return fsq_error_code();
  for (int64_t r = 0; r < rows; r++) g->reorder[r] = r / beam;
  for (int i = 0; i < g->n_models; i++) {
    st = g->models[i].ops->encode(g->models[i].model, g->ctx, g->states[i], src);
    if (st == FSQ_OK) st = g->models[i].ops->reorder(g->states[i], g->reorder, rows);
    if (st != FSQ_OK) {
      fsq_ctx_reset(g->ctx);
      return fsq_error_wrap(st, "generator: model %d", i + 1);
    }
  }
  fsq_ctx_reset(g->ctx);

  for (int64_t r = 0; r < rows; r++) {
    int64_t *t = g->tokens + r * cols;
    for (int64_t k = 0; k < cols; k++) t[k] = g->pad;
    t[0] = g->eos;
    memset(g->scores + r * cols, 0, (size_t)cols * sizeof(float));
    g->ignore[r] = 0;
  }
  int64_t cur = bsz, remaining = bsz;
  int have_reorder = 0, pruned = 0;
  for (int64_t step = 0; step <= max_len; step++) {
    int64_t n = cur * beam;
    if (have_reorder) {
      if (pruned)
        for (int64_t b = 0; b < cur; b++)
          for (int64_t i = 0; i < beam; i++)
            g->reorder[b * beam + i] += (g->batch_idxs[b] - b) * beam;
      for (int i = 0; i < g->n_models; i++)
        if ((st = g->models[i].ops->reorder(g->states[i], g->reorder, n)) != FSQ_OK)
          return fsq_error_wrap(st, "generator: model %d reorder", i + 1);
    }
    for (int64_t r = 0; r < n; r++)
      memcpy(g->prev + r * (step + 1), g->tokens + r * cols, (size_t)(step + 1) * sizeof(int64_t));
    if ((st = ensemble_step(g, n, step + 1)) != FSQ_OK) {
      fsq_ctx_reset(g->ctx);
      return st;
    }
    nan_to_neg_inf(g->lprobs, n * V);
    for (int64_t r = 0; r < n; r++) {
      float *lp = g->lprobs + r * V;
      lp[g->pad] = -INFINITY;
      lp[g->unk] -= (float)o->unkpen;
      if (step >= max_len)
        for (int64_t v = 0; v < V; v++)
          if (v != g->eos) lp[v] = -INFINITY;
    }
    if (prefix_len > 0 && step < prefix_len && step < max_len) {
      apply_prefix(g, cur, step, cols);
    } else if (step < o->min_len) {
      for (int64_t r = 0; r < n; r++) g->lprobs[r * V + g->eos] = -INFINITY;
    }
    if (o->no_repeat_ngram_size > 0) block_ngrams(g, n, step, cols);

    /* the search's candidates: beam search sentence by sentence in parallel
     * (each thread its scratch slice), the other searches in order */
    int64_t ncand = cs;
    if (g->search == SEARCH_BEAM || g->search == SEARCH_LENGTH_CONSTRAINED) {
#pragma omp parallel for schedule(dynamic, 8) num_threads(g->n_threads) reduction(min : ncand) \
    if (cur * beam * V >= (1 << 18))
      for (int64_t b = 0; b < cur; b++) {
        int64_t nb = beam_candidates(g, step, b, cols, thread_slot(g));
        if (nb < ncand) ncand = nb;
      }
    } else {
      for (int64_t b = 0; b < cur; b++) {
        float *bcs = g->cand_scores + b * cs;
        int64_t *bci = g->cand_indices + b * cs, *bcb = g->cand_beams + b * cs;
        int64_t nb = g->search == SEARCH_SAMPLING      ? sampling_step(g, step, b, cols, bcs, bci, bcb)
                     : g->search == SEARCH_DIVERSE_BEAM ? diverse_beam_step(g, step, b, cols, bcs, bci, bcb)
                                                        : siblings_step(g, step, b, cols, bcs, bci, bcb);
        finish_candidates(g, b, nb);
        if (nb < ncand) ncand = nb;
      }
    }
    if (ncand < beam)
      return fsq_error(FSQ_ERR_INTERNAL, "generator: %lld candidates for beam %lld",
                       (long long)ncand, (long long)beam);
    int64_t n_new = 0;
    finalize(g, step, cur, cols, max_len, &n_new);
    remaining -= n_new;
    if (remaining == 0 || step >= max_len) break;
    pruned = 0;
    if (n_new > 0) {
      cur = prune(g, cur, cols, g->new_fin, n_new);
      pruned = 1;
    }
    n = cur * beam;
    /* the first beam active (non-</s>, not ignored) candidates */
    for (int64_t b = 0; b < cur; b++) {
      uint8_t *em = g->eos_mask + b * cs;
      for (int64_t j = 0; j < beam; j++) em[j] = g->ignore[b * beam + j] || em[j];
      int64_t got = 0;
      for (int pass = 0; pass < 2 && got < beam; pass++)
        for (int64_t j = 0; j < ncand && got < beam; j++)
          if ((em[j] != 0) == (pass == 1)) {
            g->active_hypos[b * beam + got] = j;
            g->ignore[b * beam + got] = (uint8_t)pass;
            got++;
          }
      for (int64_t i = 0; i < beam; i++) {
        int64_t j = g->active_hypos[b * beam + i];
        g->reorder[b * beam + i] = g->cand_beams[b * cs + j] + b * beam;
      }
    }
    /* copy tokens and scores of the active hypotheses */
    for (int64_t r = 0; r < n; r++) {
      int64_t src_row = g->reorder[r], b = r / beam, j = g->active_hypos[r];
      int64_t *t2 = g->tokens2 + r * cols;
      float *s2 = g->scores2 + r * cols;
      memcpy(t2, g->tokens + src_row * cols, (size_t)cols * sizeof(int64_t));
      memcpy(s2, g->scores + src_row * cols, (size_t)cols * sizeof(float));
      t2[step + 1] = g->cand_indices[b * cs + j];
      s2[step] = g->cand_scores[b * cs + j];
    }
    int64_t *tt = g->tokens;
    g->tokens = g->tokens2;
    g->tokens2 = tt;
    float *ts = g->scores;
    g->scores = g->scores2;
    g->scores2 = ts;
    have_reorder = 1;
  }
  g->n_out = bsz;
  sort_hypos(g, bsz);
  return FSQ_OK;
}

int64_t fsq_generator_hypo_count(const fsq_generator *g, int64_t i) {
  return i >= 0 && i < g->n_out ? g->hyp_count[i] : 0;
}

const fsq_hypo *fsq_generator_hypo(const fsq_generator *g, int64_t i, int64_t j) {
  if (i < 0 || i >= g->n_out || j < 0 || j >= g->hyp_count[i]) return NULL;
  return &g->hypos[i * g->beam + j];
}

/* ---- SequenceScorer ----------------------------------------------------------------- */

/* t where the models compute: t itself when it is there already (or both
 * are host memory), else a copy uploaded into the generator's ctx (a batch
 * collated on the host for models on a device). NULL (fsq_error set) for
 * another device's tensor. */
static fsq_tensor *in_ctx(fsq_generator *g, fsq_tensor *t) {
  if (t == NULL) return NULL;
  const fsq_kernels *k = fsq_ctx_kernels(g->ctx);
  int on_host = t->backend == NULL || t->backend->host;
  if (t->backend == k || (on_host && k->host)) return t;
  if (!on_host || !fsq_is_contiguous(t)) {
    fsq_error(FSQ_ERR_INVALID, "generator: a sample tensor on %s, the models on %s",
              on_host ? "the host (not contiguous)" : t->backend->name, k->name);
    return NULL;
  }
  return fsq_from_data(g->ctx, t->dtype, t->ndim, t->shape, t->data);
}

/* The sample's tensors in the generator's ctx; FSQ_OK or the failure. */
static fsq_status sample_in_ctx(fsq_generator *g, const fsq_sample *in, fsq_sample *out) {
  *out = *in;
  fsq_tensor **ts[] = {&out->id, &out->src_tokens, &out->src_lengths, &out->prev_output_tokens,
                       &out->target};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
    if (*ts[i] == NULL) continue;
    *ts[i] = in_ctx(g, *ts[i]);
    if (*ts[i] == NULL) return fsq_error_code() ? fsq_error_code() : FSQ_ERR_NOMEM;
  }
  return FSQ_OK;
}

/* Model i's logits: [B, T, V] f32 (checked) where the host reads them:
 * the arena tensor on the host, one download into ref_logits on a device.
 * A 16-bit model's logits are widened first, where they are (fairseq's
 * log_softmax(logits.float())). */
static const float *logits_on_host(fsq_generator *g, int i, fsq_tensor *logits, int64_t B,
                                   int64_t T, fsq_status *st) {
  if (logits != NULL && (logits->dtype == FSQ_F16 || logits->dtype == FSQ_BF16))
    logits = fsq_cast(g->ctx, logits, FSQ_F32);
  if (logits != NULL) logits = fsq_contiguous(g->ctx, logits);
  if (logits == NULL) {
    *st = fsq_ctx_status(g->ctx) != FSQ_OK ? fsq_ctx_status(g->ctx) : fsq_error_code();
    *st = fsq_error_wrap(*st ? *st : FSQ_ERR_INTERNAL, "generator: model %d forward", i + 1);
    return NULL;
  }
  if (logits->dtype != FSQ_F32 || logits->ndim != 3 || logits->shape[0] != B ||
      logits->shape[1] != T || logits->shape[2] != g->V) {
    *st = fsq_error(FSQ_ERR_INTERNAL,
                    "generator: model %d forward: expected f32 [%lld, %lld, %lld]", i + 1,
                    (long long)B, (long long)T, (long long)g->V);
    return NULL;
  }
  if (!g->device) return logits->data;
  size_t n = (size_t)fsq_numel(logits);
  if (n > g->cap_ref) {
    *st = FSQ_OK;
    g->ref_logits = xrealloc(g->ref_logits, n, sizeof(float), st);
    if (*st != FSQ_OK) return NULL;
    g->cap_ref = n;
  }
  *st = fsq_download(g->ctx, logits, g->ref_logits);
  if (*st == FSQ_OK) *st = fsq_ctx_kernels(g->ctx)->status();
  if (*st != FSQ_OK) {
    fsq_error_wrap(*st, "generator: model %d forward", i + 1);
    return NULL;
  }
  return g->ref_logits;
}

fsq_status fsq_generator_score(fsq_generator *g, const fsq_sample *sample) {
  if (sample == NULL || sample->target == NULL || sample->prev_output_tokens == NULL)
    return fsq_error(FSQ_ERR_INVALID, "generator: --score-reference needs targets");
  fsq_ctx_reset(g->ctx);
  fsq_sample smp;
  fsq_status st = sample_in_ctx(g, sample, &smp);
  if (st != FSQ_OK) {
    fsq_ctx_reset(g->ctx);
    return st;
  }
  fsq_tensor *target = smp.target;
  if (target->ndim != 2 || target->dtype != FSQ_I64) {
    fsq_ctx_reset(g->ctx);
    return fsq_error(FSQ_ERR_INVALID, "generator: target must be i64 [B, T]");
  }
  int64_t B = target->shape[0], T = target->shape[1], V = g->V, M = g->n_models;
  st = reserve(g, B, T + 2, 1, 0);
  /* the targets on the host, valid until the reset at the end */
  const int64_t *tgt = st == FSQ_OK ? fsq_host_data(g->ctx, target) : NULL;
  if (tgt == NULL) {
    if (st == FSQ_OK)
      st = fsq_ctx_status(g->ctx) != FSQ_OK ? fsq_ctx_status(g->ctx) : FSQ_ERR_NOMEM;
    fsq_ctx_reset(g->ctx);
    return st;
  }
  float *probs = g->scores; /* [B, cap_cols]: the targets' (log-)probabilities */
  for (int i = 0; i < M; i++) {
    fsq_tensor *logits = g->models[i].ops->forward(g->models[i].model, g->ctx, &smp);
    const float *lg = logits_on_host(g, i, logits, B, T, &st);
    if (lg == NULL) {
      fsq_ctx_reset(g->ctx);
      return st;
    }
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++) {
        const float *x = lg + (b * T + t) * V;
        float mx = -INFINITY;
        for (int64_t v = 0; v < V; v++)
          if (x[v] > mx) mx = x[v];
        double sum = 0;
        for (int64_t v = 0; v < V; v++) sum += exp((double)(x[v] - mx));
        int64_t y = tgt[b * T + t];
        float lp = (y >= 0 && y < V) ? x[y] - mx - (float)log(sum) : -INFINITY;
        float *p = probs + b * g->cap_cols + t;
        if (M == 1) *p = lp;
        else if (i == 0) *p = expf(lp);
        else *p += expf(lp);
      }
  }
  for (int64_t b = 0; b < B; b++) {
    int64_t len = 0, h = b * g->beam;
    int64_t *ht = g->hyp_tokens + h * g->cap_cols;
    float *hp = g->hyp_pos + h * g->cap_cols;
    const float *p = probs + b * g->cap_cols;
    for (int64_t t = 0; t < T; t++)
      if (tgt[b * T + t] != g->pad) ht[len++] = tgt[b * T + t];
    float sum = 0; /* the first len positions (targets are right-padded) */
    for (int64_t t = 0; t < len; t++) {
      hp[t] = M > 1 ? logf(p[t] / (float)M) : p[t];
      sum += hp[t];
    }
    g->hyp_count[b] = 1;
    g->hypos[h] = (fsq_hypo){ht, hp, len, len > 0 ? sum / (float)len : 0};
  }
  fsq_ctx_reset(g->ctx);
  g->n_out = B;
  return FSQ_OK;
}
