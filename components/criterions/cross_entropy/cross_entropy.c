/* cross_entropy: fairseq's CrossEntropyCriterion
 * (fairseq/criterions/cross_entropy.py): the negative log-likelihood of the
 * targets, summed over non-pad positions, and its reduce_metrics (base-2
 * loss, nll_loss over tokens when the loss is averaged over sentences, ppl). */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>

#include "registry/fsq_component.h"
#include "train/fsq_meters.h"
#include "train/fsq_model.h"

/* fairseq's metrics.log_scalar / log_derived default priorities */
#define PRIORITY_SCALAR 10
#define PRIORITY_DERIVED 20

struct fsq_criterion {
  int sentence_avg;
  int64_t padding_idx;
};

static fsq_status create(json_object *cfg, const fsq_task_env *env, fsq_criterion **out) {
  *out = NULL;
  fsq_criterion *c = calloc(1, sizeof *c);
  if (c == NULL) return fsq_error(FSQ_ERR_NOMEM, "cross_entropy: out of memory");
  fsq_status st = fsq_json_get_bool(cfg, "sentence_avg", &c->sentence_avg);
  if (st != FSQ_OK) {
    free(c);
    return fsq_error_wrap(st, "cross_entropy");
  }
  c->padding_idx = FSQ_DICT_PAD; /* task.target_dictionary.pad(): fixed in fsq_dictionary */
  *out = c;
  return FSQ_OK;
}

static void destroy(fsq_criterion *c) { free(c); }

static fsq_tensor *forward(fsq_criterion *c, fsq_ctx *ctx, const fsq_model_ops *model_ops,
                           fsq_model *model, const fsq_sample *sample, fsq_criterion_log *log) {
  if (sample->target == NULL) {
    fsq_error(FSQ_ERR_INVALID, "cross_entropy: the sample has no target");
    return NULL;
  }
  /* logits: [B, T, V] -> lprobs [B*T, V] against target [B*T] */
  fsq_tensor *logits = model_ops->forward(model, ctx, sample);
  if (logits == NULL) return NULL;
  int64_t v = logits->shape[logits->ndim - 1], rows[2] = {-1, v}, flat[1] = {-1};
  fsq_tensor *lp = fsq_reshape(ctx, logits, 2, rows);
  fsq_tensor *target = fsq_reshape(ctx, sample->target, 1, flat);
  /* F.nll_loss(reduction="sum", ignore_index=pad) of log_softmax */
  fsq_tensor *loss = fsq_cross_entropy(ctx, lp, target, 0.0, c->padding_idx, NULL);
  if (loss == NULL) return NULL;
  double sample_size = c->sentence_avg ? (double)sample->bsz : (double)sample->ntokens;
  *log = (fsq_criterion_log){0};
  log->loss = fsq_get(loss, 0);
  log->nll_loss = log->loss;
  log->ntokens = (double)sample->ntokens;
  log->nsentences = (double)sample->bsz;
  log->sample_size = sample_size;
  return loss;
}

static double ppl_of_nll_loss(const fsq_meters *m) {
  return fsq_perplexity(fsq_meters_avg(m, "nll_loss"));
}

static double ppl_of_loss(const fsq_meters *m) { return fsq_perplexity(fsq_meters_avg(m, "loss")); }

static fsq_status reduce_metrics(const fsq_criterion *c, const fsq_criterion_log *log,
                                 fsq_meters *meters) {
  (void)c;
  /* divided by ln 2: from base e to base 2 */
  fsq_status st = fsq_meters_log_scalar(meters, "loss", log->loss / log->sample_size / M_LN2,
                                        log->sample_size, PRIORITY_SCALAR, 3);
  if (st != FSQ_OK) return st;
  if (log->sample_size != log->ntokens) {
    st = fsq_meters_log_scalar(meters, "nll_loss", log->loss / log->ntokens / M_LN2,
                               log->ntokens, PRIORITY_SCALAR, 3);
    if (st == FSQ_OK) st = fsq_meters_log_derived(meters, "ppl", PRIORITY_DERIVED, ppl_of_nll_loss);
    return st;
  }
  return fsq_meters_log_derived(meters, "ppl", PRIORITY_DERIVED, ppl_of_loss);
}

static const fsq_criterion_ops ops = {create, destroy, forward, reduce_metrics};

static const fsq_option options[] = {
    {"sentence-avg", FSQ_OPT_BOOL, NULL,
     "normalize gradients by the number of sentences in a batch (default is to normalize by "
     "number of tokens)", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_component descriptor = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_CRITERION,
    .name = "cross_entropy",
    .version = FSQ_COMPONENT_VERSION,
    .description = "negative log-likelihood of the targets, summed over non-pad tokens",
    .options = options,
    .ops_version = FSQ_CRITERION_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &descriptor; }
