/* fairseq-generate: translates a binarized split with a trained model or
 * ensemble (fairseq_cli/generate.py): S-/T-/H-/D-/P- lines per sentence in
 * batch order, the speed line and the BLEU line. Scores are printed in base
 * 2, as fairseq prints them. */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli/cli_text.h"
#include "generate/fsq_generate.h"
#include "generate/fsq_scoring.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "registry/fsq_registry.h"

#define LOGGER "fairseq_cli.generate"

static const char *const scorings[] = {"bleu", "sacrebleu", NULL};

static const fsq_option generate_options[] = {
    /* common */
    {"user-dir", FSQ_OPT_STRING, NULL, "path to a python module containing custom extensions (a component directory)", NULL, NULL},
    {"seed", FSQ_OPT_INT, "1", "pseudo random number generator seed", NULL, NULL},
    {"cpu", FSQ_OPT_BOOL, NULL, "use CPU instead of CUDA", NULL, NULL},
    {"device", FSQ_OPT_CHOICE, NULL, "where to decode: cpu, or cuda (the first GPU); default: cuda when a GPU is present, as fairseq does, unless --cpu", fsq_cli_device_choices, NULL},
    FSQ_CLI_PRECISION_OPTIONS,
    {"task", FSQ_OPT_STRING, "translation", "task (its options may override the checkpoint's)", NULL, NULL},
    /* dataset */
    {"max-tokens", FSQ_OPT_INT, NULL, "maximum number of tokens in a batch", NULL, NULL},
    {"batch-size", FSQ_OPT_INT, NULL, "number of examples in a batch", NULL, NULL},
    {"required-batch-size-multiple", FSQ_OPT_INT, "8", "batch size will be a multiplier of this value", NULL, NULL},
    {"skip-invalid-size-inputs-valid-test", FSQ_OPT_BOOL, NULL, "ignore too long or too short lines in valid and test set", NULL, NULL},
    {"gen-subset", FSQ_OPT_STRING, "test", "data subset to generate (train, valid, test)", NULL, NULL},
    /* common_eval */
    {"path", FSQ_OPT_STRING, NULL, "path(s) to model file(s), colon separated", NULL, NULL},
    {"post-process", FSQ_OPT_STRING, NULL, "post-process text by removing BPE, letter segmentation, etc. (subword_nmt, sentencepiece, ...)", NULL, NULL},
    {"remove-bpe", FSQ_OPT_BOOL, NULL, "the same as --post-process \"@@ \"", NULL, NULL},
    {"quiet", FSQ_OPT_BOOL, NULL, "only print final scores", NULL, NULL},
    {"results-path", FSQ_OPT_STRING, NULL, "path to save eval results (generate-SUBSET.txt)", NULL, NULL},
    FSQ_CLI_GENERATION_OPTIONS,
    /* scoring */
    {"scoring", FSQ_OPT_CHOICE, "bleu", "scoring to use", scorings, NULL},
    FSQ_OPTION_END};

static const fsq_config_selector selectors[] = {{"task", FSQ_KIND_TASK}, FSQ_SELECTOR_END};

/* One decoding worker: a generator of its own (decoder states, search
 * buffers), a step arena for the batch it collates, and its prefix
 * buffer. */
typedef struct gen_worker {
  fsq_generator *gen;
  fsq_ctx *ctx;
  int64_t *prefix;
  size_t cap_prefix;
} gen_worker;

typedef struct gen_run {
  fsq_config *c;
  fsq_loaded_models lm;
  fsq_gen_options opt;
  const fsq_dictionary *src_dict, *tgt_dict;
  const char *post_process; /* NULL: none */
  int quiet;
  int64_t prefix_size;
  FILE *out;
  /* scoring */
  int sacrebleu;
  fsq_bleu *bleu;
  fsq_sacrebleu *sb;
  fsq_word_ids *words;
  int has_target;
  /* text buffers */
  fsq_cli_buf src_str, tgt_str, hypo_str, tmp;
  fsq_text tok_ref, tok_hyp;
  int32_t *ids32, *ref32;
  size_t cap32, capref;
  int64_t *refbuf;
  size_t refcap;
  /* decoding workers: one from setup, one per thread with batches side by side */
  gen_worker *workers;
  int n_workers;
  /* counters */
  int64_t num_sentences, gen_tokens;
  double gen_time;
} gen_run;

static fsq_status open_output(gen_run *r) {
  const char *dir = NULL, *subset = "test";
  fsq_json_get_string(r->c->cfg, "results_path", &dir);
  fsq_json_get_string(r->c->cfg, "gen_subset", &subset);
  r->out = stdout;
  if (dir == NULL) return FSQ_OK;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return fsq_error(FSQ_ERR_IO, "--results-path %s: %s", dir, strerror(errno));
  char path[4096];
  snprintf(path, sizeof path, "%s/generate-%s.txt", dir, subset);
  r->out = fopen(path, "w");
  if (r->out == NULL) {
    r->out = stdout;
    return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  }
  setvbuf(r->out, NULL, _IOLBF, 0); /* fairseq opens it with buffering=1 */
  fsq_log_set_stream(r->out);       /* _main's logging.basicConfig(stream=output_file) */
  return FSQ_OK;
}

static int32_t *ensure32(int32_t **p, size_t *cap, size_t n) {
  if (n > *cap) {
    int32_t *q = realloc(*p, n * sizeof *q);
    if (q == NULL) return NULL;
    *p = q;
    *cap = n;
  }
  return *p;
}

/* Scorer.add / add_string for the top hypothesis. */
static fsq_status score_one(gen_run *r, const int64_t *ref, int64_t nref, const fsq_hypo *h,
                            const char *hypo_str) {
  if (r->sacrebleu) {
    fsq_status s = fsq_tokenize_13a(r->tgt_str.data, r->tgt_str.len, &r->tok_ref);
    if (s == FSQ_OK) s = fsq_tokenize_13a(hypo_str, strlen(hypo_str), &r->tok_hyp);
    const char *refs[1] = {r->tok_ref.data};
    size_t lens[1] = {r->tok_ref.len};
    if (s == FSQ_OK) s = fsq_sacrebleu_add(r->sb, r->tok_hyp.data, r->tok_hyp.len, refs, lens, 1);
    return s;
  }
  if (r->post_process != NULL) { /* back to tokens through a growing dictionary */
    const int32_t *ids;
    size_t n, m;
    fsq_status s = fsq_word_ids_encode(r->words, r->tgt_str.data, r->tgt_str.len, &ids, &n);
    if (s != FSQ_OK) return s;
    if (ensure32(&r->ref32, &r->capref, n) == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
    memcpy(r->ref32, ids, n * sizeof *ids);
    if ((s = fsq_word_ids_encode(r->words, hypo_str, strlen(hypo_str), &ids, &m)) != FSQ_OK) return s;
    return fsq_bleu_add(r->bleu, r->ref32, n, ids, m);
  }
  if (ensure32(&r->ref32, &r->capref, (size_t)nref + 1) == NULL ||
      ensure32(&r->ids32, &r->cap32, (size_t)h->len + 1) == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "out of memory");
  for (int64_t i = 0; i < nref; i++) r->ref32[i] = (int32_t)ref[i];
  for (int64_t i = 0; i < h->len; i++) r->ids32[i] = (int32_t)h->tokens[i];
  return fsq_bleu_add(r->bleu, r->ref32, (size_t)nref, r->ids32, (size_t)h->len);
}

/* The collated batch's tensors as host arrays (the task collates
 * contiguous tensors: no copy). */
typedef struct batch_view {
  int64_t B, S, T;
  const int64_t *src, *ids, *tgt;
} batch_view;

static fsq_status view_batch(fsq_ctx *ctx, fsq_sample *smp, batch_view *v) {
  fsq_tensor *src = fsq_contiguous(ctx, smp->src_tokens);
  fsq_tensor *ids = fsq_contiguous(ctx, smp->id);
  fsq_tensor *tgt = smp->target ? fsq_contiguous(ctx, smp->target) : NULL;
  if (src == NULL || ids == NULL || (smp->target != NULL && tgt == NULL)) return fsq_error_code();
  v->B = src->shape[0];
  v->S = src->shape[1];
  v->T = tgt ? tgt->shape[1] : 0;
  v->src = src->data;
  v->ids = ids->data;
  v->tgt = tgt ? tgt->data : NULL;
  return FSQ_OK;
}

/* fairseq's inference_step for one batch, on worker w's generator. */
static fsq_status decode_batch(gen_run *r, gen_worker *w, fsq_sample *smp, const batch_view *v) {
  int64_t plen = 0;
  if (r->prefix_size > 0 && v->tgt != NULL) {
    plen = r->prefix_size < v->T ? r->prefix_size : v->T;
    if ((size_t)(v->B * plen) > w->cap_prefix) {
      int64_t *q = realloc(w->prefix, (size_t)(v->B * plen) * sizeof *q);
      if (q == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
      w->prefix = q;
      w->cap_prefix = (size_t)(v->B * plen);
    }
    for (int64_t b = 0; b < v->B; b++)
      memcpy(w->prefix + b * plen, v->tgt + b * v->T, (size_t)plen * sizeof(int64_t));
  }
  return r->opt.score_reference
             ? fsq_generator_score(w->gen, smp)
             : fsq_generator_generate(w->gen, v->src, v->B, v->S, v->ids,
                                      plen ? w->prefix : NULL, plen);
}

/* The batch's S-/T-/H-/D-/P- lines and its sentences' scores, from the
 * generator that decoded it: batches are emitted one at a time, in order. */
static fsq_status emit_batch(gen_run *r, fsq_generator *gen, const batch_view *v) {
  int64_t B = v->B, S = v->S, T = v->T;
  const int64_t *sd = v->src, *idd = v->ids, *td = v->tgt;
  fsq_status s = FSQ_OK;
  for (int64_t b = 0; b < B; b++)
    if (fsq_generator_hypo_count(gen, b) > 0) r->gen_tokens += fsq_generator_hypo(gen, b, 0)->len;
  const double ln2 = log(2.0);
  for (int64_t b = 0; b < B; b++) {
    int64_t sid = idd[b];
    /* strip_pad of the source and the target */
    const int64_t *srow = sd + b * S, *trow = td ? td + b * T : NULL;
    s = fsq_cli_dict_string(r->src_dict, srow, S, 0, r->post_process, &r->src_str, &r->tmp);
    if (s == FSQ_OK && trow != NULL) {
      s = fsq_cli_dict_string(r->tgt_dict, trow, T, 1, r->post_process, &r->tgt_str, &r->tmp);
    }
    if (s != FSQ_OK) return s;
    if (!r->quiet) {
      fprintf(r->out, "S-%lld\t%s\n", (long long)sid, r->src_str.data);
      if (trow != NULL) fprintf(r->out, "T-%lld\t%s\n", (long long)sid, r->tgt_str.data);
    }
    int64_t nh = fsq_generator_hypo_count(gen, b);
    if (nh > r->opt.nbest) nh = r->opt.nbest;
    for (int64_t j = 0; j < nh; j++) {
      const fsq_hypo *h = fsq_generator_hypo(gen, b, j);
      s = fsq_cli_dict_string(r->tgt_dict, h->tokens, h->len, 0, r->post_process, &r->hypo_str,
                              &r->tmp);
      if (s != FSQ_OK) return s;
      if (!r->quiet) {
        char score[64];
        float sc = h->score / (float)ln2; /* f32 tensor / python float */
        fsq_cli_py_float_repr((double)sc, score, sizeof score);
        fprintf(r->out, "H-%lld\t%s\t%s\n", (long long)sid, score, r->hypo_str.data);
        fprintf(r->out, "D-%lld\t%s\t%s\n", (long long)sid, score, r->hypo_str.data);
        fprintf(r->out, "P-%lld\t", (long long)sid);
        for (int64_t i = 0; i < h->len; i++)
          fprintf(r->out, "%s%.4f", i ? " " : "", (double)(h->positional_scores[i] / (float)ln2));
        fputc('\n', r->out);
      }
      if (trow != NULL && j == 0) {
        /* strip_pad(target): the non-pad tokens in order */
        if ((size_t)T > r->refcap) {
          int64_t *q = realloc(r->refbuf, (size_t)T * sizeof *q);
          if (q == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
          r->refbuf = q;
          r->refcap = (size_t)T;
        }
        int64_t k = 0;
        for (int64_t t = 0; t < T; t++)
          if (trow[t] != FSQ_DICT_PAD) r->refbuf[k++] = trow[t];
        if ((s = score_one(r, r->refbuf, k, h, r->hypo_str.data)) != FSQ_OK) return s;
      }
    }
  }
  r->num_sentences += B;
  return FSQ_OK;
}

/* resolve_max_positions: the smallest of the task's and the models'. */
static void max_positions(gen_run *r, int64_t *ms, int64_t *mt) {
  *ms = INT64_MAX;
  *mt = INT64_MAX;
  int64_t v;
  if (fsq_json_get_int64(r->lm.cfg, "max_source_positions", &v) == FSQ_OK && v > 0) *ms = v;
  if (fsq_json_get_int64(r->lm.cfg, "max_target_positions", &v) == FSQ_OK && v > 0) *mt = v;
  for (int i = 0; i < r->lm.n; i++) {
    int64_t s = 0, t = 0;
    if (r->lm.models[i].ops->max_positions == NULL) continue;
    r->lm.models[i].ops->max_positions(r->lm.models[i].model, &s, &t);
    if (s > 0 && s < *ms) *ms = s;
    if (t > 0 && t < *mt) *mt = t;
  }
}

/* Workers up to n, each with a generator on the models' backend and a
 * host ctx for its batches (the generator uploads what its models need). */
static fsq_status add_workers(gen_run *r, int n) {
  gen_worker *q = realloc(r->workers, (size_t)n * sizeof *q);
  if (q == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
  r->workers = q;
  for (; r->n_workers < n; r->n_workers++) {
    gen_worker *w = &r->workers[r->n_workers];
    memset(w, 0, sizeof *w);
    w->ctx = fsq_ctx_create(0);
    if (w->ctx == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
    fsq_ctx_set_grad(w->ctx, 0);
    fsq_status s = fsq_generator_create_on(r->lm.backend, r->lm.models, r->lm.n,
                                           (int64_t)fsq_dictionary_size(r->tgt_dict), &r->opt,
                                           &w->gen);
    if (s != FSQ_OK) {
      r->n_workers++; /* run_free frees what it has */
      return s;
    }
  }
  return FSQ_OK;
}

static fsq_status setup(gen_run *r, int argc, char **argv) {
  json_object *cfg = r->c->cfg;
  const char *path = NULL, *data = json_object_get_string(json_object_array_get_idx(r->c->positionals, 0));
  if (fsq_json_get_string(cfg, "path", &path) != FSQ_OK || path == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--path is required");
  fsq_dtype dtype = FSQ_F32; /* refused before --results-path is made */
  fsq_status s = fsq_cli_precision(cfg, &dtype);
  if (s != FSQ_OK) return s;
  fsq_gen_options_default(&r->opt);
  if ((s = fsq_gen_options_from_cfg(cfg, &r->opt)) != FSQ_OK) return s;
  json_object *v;
  if (json_object_object_get_ex(cfg, "post_process", &v) && v != NULL)
    r->post_process = json_object_get_string(v);
  if (json_object_object_get_ex(cfg, "remove_bpe", &v) && v != NULL && json_object_get_boolean(v))
    r->post_process = "@@ ";
  if (r->post_process != NULL && strcmp(r->post_process, "none") == 0) r->post_process = NULL;
  r->quiet = json_object_object_get_ex(cfg, "quiet", &v) && v != NULL && json_object_get_boolean(v);
  fsq_json_get_int64(cfg, "prefix_size", &r->prefix_size);
  const char *scoring = "bleu";
  fsq_json_get_string(cfg, "scoring", &scoring);
  r->sacrebleu = strcmp(scoring, "sacrebleu") == 0;
  if ((s = open_output(r)) != FSQ_OK) return s;
  fsq_log_info(LOGGER, "%s", json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
  fsq_log_info(LOGGER, "loading model(s) from %s", path);
  const fsq_kernels *k = NULL;
  if ((s = fsq_cli_device(cfg, &k)) != FSQ_OK) return s;
  json_object *over = fsq_cli_task_overrides(r->c, argc, argv);
  s = fsq_generate_load_models_on(k, dtype, path, data, over, r->c->registry, &r->lm);
  json_object_put(over);
  if (s != FSQ_OK) return s;
  r->src_dict = r->lm.task_ops->source_dictionary(r->lm.task);
  r->tgt_dict = r->lm.task_ops->target_dictionary(r->lm.task);
  if (r->tgt_dict == NULL) return fsq_error(FSQ_ERR_INVALID, "the task has no target dictionary");
  if ((s = add_workers(r, 1)) != FSQ_OK) return s;
  if (r->sacrebleu) r->sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_NONE, 0);
  else r->bleu = fsq_bleu_new(FSQ_DICT_PAD, FSQ_DICT_EOS, FSQ_DICT_UNK);
  r->words = fsq_word_ids_new();
  if ((r->sacrebleu ? (void *)r->sb : (void *)r->bleu) == NULL || r->words == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "out of memory");
  return FSQ_OK;
}

static fsq_status finish(gen_run *r) {
  double t = r->gen_time;
  fsq_log_info(LOGGER, "NOTE: hypothesis and token scores are output in base 2");
  fsq_log_info(LOGGER, "Translated %lld sentences (%lld tokens) in %.1fs (%.2f sentences/s, %.2f tokens/s)",
               (long long)r->num_sentences, (long long)r->gen_tokens, t, t > 0 ? (double)r->num_sentences / t : 0.0,
               t > 0 ? (double)r->gen_tokens / t : 0.0);
  if (!r->has_target) return FSQ_OK;
  char result[512];
  fsq_status s;
  if (r->sacrebleu) {
    fsq_sacrebleu_score sc;
    fsq_sacrebleu_compute(fsq_sacrebleu_get_stats(r->sb), FSQ_SMOOTH_EXP, -1, 0, &sc);
    s = fsq_sacrebleu_format(&sc, result, sizeof result);
  } else {
    s = fsq_bleu_result_string(fsq_bleu_get_stat(r->bleu), 4, result, sizeof result);
  }
  if (s != FSQ_OK) return s;
  const char *subset = "test";
  fsq_json_get_string(r->c->cfg, "gen_subset", &subset);
  int64_t beam = 5;
  fsq_json_get_int64(r->c->cfg, "beam", &beam);
  fprintf(r->out, "Generate %s with beam=%lld: %s\n", subset, (long long)beam, result);
  return FSQ_OK;
}

/* A batch of the split: sentence indices into it. */
typedef struct gen_batch {
  const uint32_t *indices;
  size_t count;
} gen_batch;

/* Collates batch b into worker w's ctx. The task collates into its own
 * scratch, one batch at a time; the worker's ctx keeps the copy. */
static fsq_status collate_batch(gen_run *r, gen_worker *w, const char *subset,
                                const gen_batch *b, fsq_sample *smp, batch_view *v) {
  fsq_status s;
#pragma omp critical(fsq_generate_collate)
  s = r->lm.task_ops->collate(r->lm.task, subset, b->indices, b->count, w->ctx, smp);
  if (s == FSQ_OK) s = view_batch(w->ctx, smp, v);
  return s;
}

/* Collates, decodes and emits the batches in order. With several workers
 * they decode batches side by side, each on one core (its ops
 * single-threaded inside the team), and emit them in batch order: on a
 * CPU, whole batches in parallel waste less than splitting every small op
 * of one batch between the cores. Every batch's result is the same as one
 * worker's: the search and its sampling streams depend on the batch's
 * sentences alone. Generation time: fairseq's gen_timer sums the batches'
 * decoding; side by side they overlap, so it is the wall time of the
 * whole. */
static fsq_status decode_batches(gen_run *r, const char *subset, const gen_batch *batches,
                                 size_t nb) {
  fsq_status first = FSQ_OK;
  char message[1024];
  message[0] = 0;
  int side_by_side = r->n_workers > 1;
  double t0 = fsq_time_now(), decoding = 0;
#ifdef _OPENMP
  if (side_by_side) omp_set_max_active_levels(1); /* a worker's ops stay on its thread */
#endif
  /* one worker: no team here, so its ops use every thread */
#pragma omp parallel num_threads(r->n_workers) if (side_by_side)
  {
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    gen_worker *w = &r->workers[tid];
#pragma omp for ordered schedule(static, 1)
    for (size_t i = 0; i < nb; i++) {
      fsq_sample smp = {0}; /* read only after a collation that set it */
      batch_view v = {0};
      fsq_status seen;
#pragma omp atomic read
      seen = first;
      /* after a failure the remaining batches are passed over */
      fsq_status s = seen != FSQ_OK ? seen : collate_batch(r, w, subset, &batches[i], &smp, &v);
      double t1 = fsq_time_now();
      if (s == FSQ_OK) s = decode_batch(r, w, &smp, &v);
      double took = fsq_time_now() - t1;
#pragma omp ordered
      {
        if (first == FSQ_OK && s == FSQ_OK) {
          decoding += took;
          r->has_target |= smp.target != NULL;
          s = emit_batch(r, w->gen, &v);
        }
        if (first == FSQ_OK && s != FSQ_OK) { /* the error text is this thread's */
          snprintf(message, sizeof message, "%s", fsq_error_message());
#pragma omp atomic write
          first = s;
        }
      }
      fsq_ctx_reset(w->ctx);
    }
  }
  r->gen_time = side_by_side ? fsq_time_now() - t0 : decoding;
  return first == FSQ_OK ? FSQ_OK : fsq_error(first, "%s", message);
}

/* On the host, with more than one OpenMP thread and more than one batch,
 * a worker per thread (at most one per batch); else setup's one. */
static fsq_status make_workers(gen_run *r, size_t nb) {
  int n = 1;
#ifdef _OPENMP
  if (r->lm.backend->host && nb > 1) n = omp_get_max_threads();
#endif
  if ((size_t)n > nb && nb > 0) n = (int)nb;
  return n > r->n_workers ? add_workers(r, n) : FSQ_OK;
}

static fsq_status generate_all(gen_run *r) {
  json_object *cfg = r->c->cfg;
  const char *subset = "test";
  fsq_json_get_string(cfg, "gen_subset", &subset);
  fsq_batch_spec spec = {0};
  spec.max_tokens = -1;
  spec.max_sentences = -1;
  json_object *v;
  if (json_object_object_get_ex(cfg, "max_tokens", &v) && v != NULL) spec.max_tokens = json_object_get_int64(v);
  if (json_object_object_get_ex(cfg, "batch_size", &v) && v != NULL) spec.max_sentences = json_object_get_int64(v);
  if (spec.max_tokens <= 0 && spec.max_sentences <= 0) spec.max_tokens = 12000;
  spec.required_batch_size_multiple = 8;
  fsq_json_get_int64(cfg, "required_batch_size_multiple", &spec.required_batch_size_multiple);
  max_positions(r, &spec.max_source_positions, &spec.max_target_positions);
  spec.ignore_invalid_inputs = json_object_object_get_ex(cfg, "skip_invalid_size_inputs_valid_test", &v) &&
                               v != NULL && json_object_get_boolean(v);
  int64_t seed = 1;
  fsq_json_get_int64(cfg, "seed", &seed);
  spec.seed = (uint64_t)seed;
  spec.shuffle = 0;
  spec.num_shards = 1;
  spec.shard_id = 0;
  fsq_epoch_iter *it = NULL;
  fsq_status s = r->lm.task_ops->get_batch_iterator(r->lm.task, subset, &spec, &it);
  if (s == FSQ_OK) s = fsq_epoch_iter_begin(it, 1);
  if (s != FSQ_OK) return s;
  /* The batches are fixed for the run: their index lists stay valid. */
  size_t nb = 0, cap = 0;
  gen_batch *batches = NULL;
  const uint32_t *idx;
  size_t count;
  while (fsq_epoch_iter_next(it, &idx, &count)) {
    if (count == 0) continue;
    if (nb == cap) {
      cap = cap ? 2 * cap : 64;
      gen_batch *q = realloc(batches, cap * sizeof *q);
      if (q == NULL) {
        free(batches);
        return fsq_error(FSQ_ERR_NOMEM, "out of memory");
      }
      batches = q;
    }
    batches[nb].indices = idx;
    batches[nb++].count = count;
  }
  s = make_workers(r, nb);
  if (s == FSQ_OK) s = decode_batches(r, subset, batches, nb);
  free(batches);
  if (s == FSQ_OK) s = finish(r);
  return s;
}

static void run_free(gen_run *r) {
  if (r->out != NULL && r->out != stdout) {
    fsq_log_set_stream(NULL);
    fclose(r->out);
  }
  for (int i = 0; i < r->n_workers; i++) {
    fsq_generator_destroy(r->workers[i].gen);
    fsq_ctx_destroy(r->workers[i].ctx);
    free(r->workers[i].prefix);
  }
  free(r->workers);
  fsq_loaded_models_free(&r->lm);
  fsq_bleu_free(r->bleu);
  fsq_sacrebleu_free(r->sb);
  fsq_word_ids_free(r->words);
  fsq_cli_buf_free(&r->src_str);
  fsq_cli_buf_free(&r->tgt_str);
  fsq_cli_buf_free(&r->hypo_str);
  fsq_cli_buf_free(&r->tmp);
  fsq_text_free(&r->tok_ref);
  fsq_text_free(&r->tok_hyp);
  free(r->ids32);
  free(r->ref32);
  free(r->refbuf);
}

int main(int argc, char **argv) {
  fsq_config c;
  int rc = fsq_cli_parse_data_args("fairseq-generate", "DATA --path PATH [options]",
                                   generate_options, selectors, argc, argv, &c);
  if (rc >= 0) return rc;
  gen_run r;
  memset(&r, 0, sizeof r);
  r.c = &c;
  fsq_status s = setup(&r, argc, argv);
  if (s == FSQ_OK) s = generate_all(&r);
  rc = 0;
  if (s != FSQ_OK) {
    fflush(stdout);
    fprintf(stderr, "fairseq-generate: error: %s\n", fsq_error_message());
    rc = 1;
  }
  run_free(&r);
  fsq_config_free(&c);
  return rc;
}
