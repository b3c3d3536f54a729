/* fsq_generate.h: fairseq's SequenceGenerator (fairseq/sequence_generator.py)
 * and SequenceScorer over fsq_model_ops, and loading checkpoints for
 * inference (checkpoint_utils.load_model_ensemble).
 *
 * An ensemble is an array of (ops, model) pairs; its next-token
 * log-probabilities are fairseq's EnsembleModel average: logsumexp over the
 * models minus log(n) (one model: its own log-probabilities). The searches
 * are fairseq/search.py's: BeamSearch, Sampling (top-k, top-p),
 * DiverseBeamSearch (--diverse-beam-groups), DiverseSiblingsSearch
 * (--diversity-rate) and LengthConstrainedBeamSearch (--match-source-len),
 * chosen as fairseq's FairseqTask.build_generator chooses them.
 *
 * Arithmetic is in f32 as fairseq's tensors are; ties in top-k are broken by
 * the lower index. Sampling draws from Philox streams keyed by (seed,
 * sentence id), so a sentence's samples do not depend on its batch.
 *
 * Buffers are allocated when the generator is created and grown only when a
 * batch needs more (no allocation per step); the models' decoder states are
 * kept between batches the same way.
 *
 * The models compute on one backend, the CPU's or a device's (their
 * parameters live there, fsq_params_create_on); the search itself runs on
 * the host, reading each step's log-probabilities from one download. */
#ifndef FSQ_GENERATE_H
#define FSQ_GENERATE_H

#include <stdint.h>

#include "core/fsq_core.h"
#include "train/fsq_model.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;
struct fsq_registry;

/* ---- options (fairseq's GenerationConfig) ----------------------------------- */
typedef struct fsq_gen_options {
  int64_t beam;                 /* --beam 5 (clamped to vocab - 1, as fairseq) */
  int64_t nbest;                /* --nbest 1: how many the programs print */
  double max_len_a;             /* --max-len-a 0 */
  int64_t max_len_b;            /* --max-len-b 200 */
  int64_t min_len;              /* --min-len 1 */
  int normalize_scores;         /* !--unnormalized */
  double lenpen;                /* --lenpen 1 */
  double unkpen;                /* --unkpen 0 */
  double temperature;           /* --temperature 1 */
  int match_source_len;         /* --match-source-len */
  int64_t no_repeat_ngram_size; /* --no-repeat-ngram-size 0 */
  int sampling;                 /* --sampling */
  int64_t sampling_topk;        /* --sampling-topk -1 */
  double sampling_topp;         /* --sampling-topp -1 */
  int64_t diverse_beam_groups;  /* --diverse-beam-groups -1 */
  double diverse_beam_strength; /* --diverse-beam-strength 0.5 */
  double diversity_rate;        /* --diversity-rate -1 */
  int score_reference;          /* --score-reference: score the targets instead */
  uint64_t seed;                /* --seed 1: the sampling streams */
} fsq_gen_options;

/* fairseq's defaults (above). */
void fsq_gen_options_default(fsq_gen_options *opt);
/* Reads the keys fairseq's args use ("beam", "max_len_a", "unnormalized",
 * ...) from cfg where present (null keeps the default) and checks them as
 * build_generator does (mutually exclusive searches, --sampling-topk
 * without --sampling, ...). */
fsq_status fsq_gen_options_from_cfg(struct json_object *cfg, fsq_gen_options *opt);

/* ---- the generator ---------------------------------------------------------- */
typedef struct fsq_gen_model {
  const fsq_model_ops *ops;
  fsq_model *model;
} fsq_gen_model;

/* One finished hypothesis. tokens and positional_scores (natural log, one
 * per token) end with </s>; valid until the next generate/score call. */
typedef struct fsq_hypo {
  const int64_t *tokens;           /* [len] */
  const float *positional_scores;  /* [len] */
  int64_t len;
  float score;                     /* natural log; length-normalized unless --unnormalized */
} fsq_hypo;

typedef struct fsq_generator fsq_generator;

/* models[0..n_models) stay owned by the caller and must outlive g.
 * vocab_size: the target dictionary's size (the width of decode_step's
 * output); pad, eos, unk are fsq_data's FSQ_DICT_* indices. The models'
 * maximum target positions bound max_len (the smallest over the ensemble). */
fsq_status fsq_generator_create(const fsq_gen_model *models, int n_models, int64_t vocab_size,
                                const fsq_gen_options *opt, fsq_generator **out);
/* The same for models whose parameters live in backend k's memory (the
 * steps run on a context of k): fsq_generator_create is this with
 * fsq_kernels_cpu(). Inputs (tokens, samples) stay host memory. */
fsq_status fsq_generator_create_on(const fsq_kernels *k, const fsq_gen_model *models,
                                   int n_models, int64_t vocab_size, const fsq_gen_options *opt,
                                   fsq_generator **out);
void fsq_generator_destroy(fsq_generator *g);
/* The beam actually used (fairseq: min(beam, vocab - 1)). */
int64_t fsq_generator_beam(const fsq_generator *g);

/* Generates for a batch. src_tokens: [bsz, src_len] padded with pad (left or
 * right, as the task collates); ids: [bsz] sentence ids keying the sampling
 * streams (NULL: 0..bsz-1); prefix_tokens: [bsz, prefix_len] forced first
 * target tokens (pad: free), or NULL (fairseq's --prefix-size passes
 * target[:, :prefix_size]). Each sentence gets up to beam hypotheses, best
 * first. */
fsq_status fsq_generator_generate(fsq_generator *g, const int64_t *src_tokens, int64_t bsz,
                                  int64_t src_len, const int64_t *ids,
                                  const int64_t *prefix_tokens, int64_t prefix_len);
/* fairseq's SequenceScorer (--score-reference): one hypothesis per sentence,
 * the target itself, scored by teacher forcing (an ensemble averages
 * probabilities, not log-probabilities, as fairseq does); score is the mean
 * log-probability. sample needs target and prev_output_tokens; its tensors
 * may be host memory (collated on the CPU), uploaded for a device's models. */
fsq_status fsq_generator_score(fsq_generator *g, const fsq_sample *sample);

/* The results of the last call: sentence i (batch order) has count
 * hypotheses, best first. */
int64_t fsq_generator_hypo_count(const fsq_generator *g, int64_t i);
const fsq_hypo *fsq_generator_hypo(const fsq_generator *g, int64_t i, int64_t j);

/* ---- loading models for inference ------------------------------------------- */
/* A task and the models of an ensemble, loaded from checkpoints. */
typedef struct fsq_loaded_models {
  const fsq_task_ops *task_ops;
  fsq_task *task;
  int n;                       /* models */
  fsq_gen_model *models;       /* [n] */
  fsq_params **params;         /* [n] */
  struct json_object *cfg;     /* the first checkpoint's configuration (owned) */
  const fsq_kernels *backend;  /* whose memory holds the parameters */
  fsq_dtype dtype;             /* theirs: f32, or f16/bf16 (--fp16/--bf16) */
} fsq_loaded_models;

/* paths: "a.fsq" or "a.fsq:b.fsq" (fairseq's --path). Each checkpoint is read
 * through fsq_checkpoint_load_upgraded; the task and model components its
 * configuration names are found in reg; the task is created from the first
 * checkpoint's configuration with cfg "data" = data_dir and the keys of
 * overrides (may be NULL) replacing the saved ones, and every model is built
 * against it and given its parameters. On failure the message names the
 * checkpoint. */
fsq_status fsq_generate_load_models(const char *paths, const char *data_dir,
                                    struct json_object *overrides,
                                    const struct fsq_registry *reg, fsq_loaded_models *out);
/* The same with every model's parameters in backend k's memory (uploaded
 * from the checkpoint) and of dtype: FSQ_F32 as checkpoints hold them, or
 * FSQ_F16 / FSQ_BF16, converted after loading (fairseq-generate --fp16 /
 * --bf16: model.half() / model.bfloat16() on each model of the ensemble),
 * so the models compute in 16 bits. fsq_generate_load_models is this on
 * the CPU in f32. */
fsq_status fsq_generate_load_models_on(const fsq_kernels *k, fsq_dtype dtype, const char *paths,
                                       const char *data_dir, struct json_object *overrides,
                                       const struct fsq_registry *reg, fsq_loaded_models *out);
void fsq_loaded_models_free(fsq_loaded_models *lm);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_GENERATE_H */
