/* fsq_model.h: the ops tables of the training kinds: model, criterion and
 * task, and the sample they pass around (fairseq's sample dict). Model code
 * builds on framework/tensor and framework/nn; tasks on framework/data. */
#ifndef FSQ_MODEL_H
#define FSQ_MODEL_H

#include <stdint.h>

#include "core/fsq_core.h"
#include "data/fsq_data.h"
#include "tensor/fsq_tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
struct fsq_meters;

/* One batch as fairseq's collater gives it; tensors are i64 in the step
 * context (valid until fsq_ctx_reset). */
typedef struct fsq_sample {
  int64_t bsz;        /* sentences (nsentences) */
  int64_t ntokens;    /* non-pad target tokens */
  fsq_tensor *id;                 /* [B] dataset indices */
  fsq_tensor *src_tokens;         /* [B, S], left-padded by default */
  fsq_tensor *src_lengths;        /* [B] */
  fsq_tensor *prev_output_tokens; /* [B, T] (NULL without target) */
  fsq_tensor *target;             /* [B, T] (NULL without target) */
} fsq_sample;

/* What a model and a criterion learn of the task when they are built. */
typedef struct fsq_task_env {
  const fsq_dictionary *src_dict; /* NULL for language models */
  const fsq_dictionary *tgt_dict;
  uint64_t seed;                  /* --seed: parameter initialization */
} fsq_task_env;

/* ---- model ------------------------------------------------------------------ */
#define FSQ_MODEL_OPS_VERSION 1
typedef struct fsq_model fsq_model;
typedef struct fsq_model_decoder_state fsq_model_decoder_state;

typedef struct fsq_model_ops {
  /* Registers every parameter in params under fairseq's state-dict names and
   * initializes it from env->seed. */
  fsq_status (*build)(struct json_object *cfg, const fsq_task_env *env, fsq_params *params,
                      fsq_model **out);
  void (*destroy)(fsq_model *m);
  /* Teacher-forced forward: logits [B, T, V] of the decoder for
   * sample->prev_output_tokens. NULL on failure (the context's status). */
  fsq_tensor *(*forward)(fsq_model *m, fsq_ctx *ctx, const fsq_sample *sample);
  /* Longest source and target the model accepts (positions). */
  void (*max_positions)(const fsq_model *m, int64_t *max_source, int64_t *max_target);

  /* ---- inference (fairseq's forward_encoder / forward_decoder with an
   * incremental_state / reorder_incremental_state); grad mode off. ---- */
  /* A decoding state for up to max_batch rows (sentences x beam), sources of
   * up to max_src_len and targets of up to max_tgt_len tokens: it holds its
   * own copy of the encoder output and the key/value caches, allocated here
   * once (no allocation per step). */
  fsq_status (*decoder_state_create)(const fsq_model *m, int64_t max_batch, int64_t max_src_len,
                                     int64_t max_tgt_len, fsq_model_decoder_state **out);
  void (*decoder_state_destroy)(fsq_model_decoder_state *st);
  /* Runs the encoder on src_tokens (i64 [B, S], padded as the task pads) and
   * keeps its output in st (rows 0..B-1), forgetting any cached steps. ctx
   * holds the temporaries only; it may be reset afterwards. */
  fsq_status (*encode)(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                       const fsq_tensor *src_tokens);
  /* Row b of the state (encoder output and caches) becomes old row index[b]
   * for b < n: beam expansion (index 0,0,..,1,1,..) and beam reordering. */
  fsq_status (*reorder)(fsq_model_decoder_state *st, const int64_t *index, int64_t n);
  /* prev_tokens: i64 [n, t], row b continuing state row b, t >= 1 (the first
   * column is </s>). Returns the log-probabilities of the next token, f32
   * [n, V] in ctx, not shared with anything else (the caller edits them in
   * place). incremental != 0: only the last column is new and is
   * appended to the caches (each call adds exactly one step); 0: the whole
   * prefix is recomputed from the kept encoder output and the caches are
   * left alone (the reference that incremental decoding must equal). */
  fsq_tensor *(*decode_step)(fsq_model *m, fsq_ctx *ctx, fsq_model_decoder_state *st,
                             const fsq_tensor *prev_tokens, int incremental);
} fsq_model_ops;

/* ---- criterion ---------------------------------------------------------------- */
#define FSQ_CRITERION_OPS_VERSION 1
typedef struct fsq_criterion fsq_criterion;

/* fairseq's logging_output, summed over sub-batches and ranks as doubles. */
typedef struct fsq_criterion_log {
  double loss;        /* summed, natural log */
  double nll_loss;    /* summed, natural log */
  double ntokens;
  double nsentences;
  double sample_size; /* the loss's denominator: ntokens, or sentences with --sentence-avg */
  double n_correct;   /* --report-accuracy */
  double total;
} fsq_criterion_log;

typedef struct fsq_criterion_ops {
  fsq_status (*create)(struct json_object *cfg, const fsq_task_env *env, fsq_criterion **out);
  void (*destroy)(fsq_criterion *c);
  /* Runs the model on sample and returns the summed loss (shape []), which
   * backward differentiates; fills log. NULL on failure. */
  fsq_tensor *(*forward)(fsq_criterion *c, fsq_ctx *ctx, const fsq_model_ops *model_ops,
                         fsq_model *model, const fsq_sample *sample, fsq_criterion_log *log);
  /* fairseq's reduce_metrics: logs loss, nll_loss (base 2), ppl ... into
   * meters from a summed log. */
  fsq_status (*reduce_metrics)(const fsq_criterion *c, const fsq_criterion_log *log,
                               struct fsq_meters *meters);
} fsq_criterion_ops;

/* ---- task ----------------------------------------------------------------------- */
#define FSQ_TASK_OPS_VERSION 1
typedef struct fsq_task fsq_task;

/* How to batch a split (fairseq's get_batch_iterator arguments). */
typedef struct fsq_batch_spec {
  int64_t max_tokens;    /* <= 0: none */
  int64_t max_sentences; /* --batch-size, <= 0: none */
  int64_t required_batch_size_multiple;
  int64_t max_source_positions, max_target_positions;
  int ignore_invalid_inputs; /* --skip-invalid-size-inputs-valid-test */
  uint64_t seed;
  int shuffle;
  int num_shards, shard_id;
} fsq_batch_spec;

typedef struct fsq_task_ops {
  /* Loads the dictionaries from the data directory (cfg "data"). */
  fsq_status (*create)(struct json_object *cfg, fsq_task **out);
  void (*destroy)(fsq_task *t);
  const fsq_dictionary *(*source_dictionary)(const fsq_task *t);
  const fsq_dictionary *(*target_dictionary)(const fsq_task *t);
  /* Opens split ("train", "valid", "test", "valid1" ...) and fixes its batches;
   * the iterator stays owned by the task. */
  fsq_status (*get_batch_iterator)(fsq_task *t, const char *split, const fsq_batch_spec *spec,
                                   fsq_epoch_iter **out);
  /* Number of examples in a loaded split. */
  size_t (*dataset_size)(const fsq_task *t, const char *split);
  /* Collates the examples at indices[0..count) of a loaded split into
   * tensors of ctx. */
  fsq_status (*collate)(fsq_task *t, const char *split, const uint32_t *indices, size_t count,
                        fsq_ctx *ctx, fsq_sample *out);
} fsq_task_ops;

#ifdef __cplusplus
}
#endif
#endif /* FSQ_MODEL_H */
