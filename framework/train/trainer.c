/* trainer.c: building the parts, and the update step of fairseq's Trainer
 * (train_step): sub-batches accumulate gradients, the sum is normalized by
 * the sample size, clipped and applied. */
#include "train/trainer_internal.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOGGER "fairseq.trainer"

fsq_status fsq_cfg_int(json_object *cfg, const char *key, int64_t *out) {
  json_object *v;
  if (!json_object_object_get_ex(cfg, key, &v) || v == NULL) {
    *out = 0;
    return FSQ_OK;
  }
  if (!json_object_is_type(v, json_type_int))
    return fsq_error(FSQ_ERR_INVALID, "--%s: expected an integer", key);
  *out = json_object_get_int64(v);
  return FSQ_OK;
}

double fsq_cfg_double(json_object *cfg, const char *key, double fallback) {
  json_object *v;
  if (!json_object_object_get_ex(cfg, key, &v) || v == NULL) return fallback;
  return json_object_get_double(v);
}

int fsq_cfg_bool(json_object *cfg, const char *key) {
  json_object *v;
  return json_object_object_get_ex(cfg, key, &v) && v != NULL && json_object_get_boolean(v);
}

const char *fsq_cfg_string(json_object *cfg, const char *key, const char *fallback) {
  json_object *v;
  if (!json_object_object_get_ex(cfg, key, &v) || v == NULL) return fallback;
  return json_object_get_string(v);
}

static fsq_status read_options(fsq_trainer *t) {
  json_object *cfg = t->cfg;
  fsq_status st = FSQ_OK;
  int64_t seed = 1;
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "max_tokens", &t->max_tokens);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "batch_size", &t->batch_size);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "update_freq", &t->update_freq);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "max_epoch", &t->max_epoch);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "max_update", &t->max_update);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "log_interval", &t->log_interval);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "seed", &seed);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "validate_interval", &t->validate_interval);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "patience", &t->patience);
  if (st == FSQ_OK) st = fsq_cfg_int(cfg, "required_batch_size_multiple", &t->bsz_mult);
  if (st != FSQ_OK) return st;
  t->seed = (uint64_t)seed;
  t->clip_norm = fsq_cfg_double(cfg, "clip_norm", 0.0);
  t->stop_time_hours = fsq_cfg_double(cfg, "stop_time_hours", 0.0);
  if (t->update_freq < 1) t->update_freq = 1;
  if (t->validate_interval < 1) t->validate_interval = 1;
  if (t->max_tokens <= 0 && t->batch_size <= 0)
    return fsq_error(FSQ_ERR_INVALID, "Must specify batch size either with --max-tokens or --batch-size");
  int fmt = fsq_log_format_parse(fsq_cfg_string(cfg, "log_format", NULL), 0);
  if (fmt < 0) return fsq_error(FSQ_ERR_INVALID, "--log-format: unknown format");
  t->log_format = (fsq_log_format)fmt;
  return fsq_trainer_mixed_options(t);
}

/* The optimizer's view of the parameters: f32 values and gradients (the
 * model's own, or the master copies of a 16-bit model). */
static fsq_status collect_params(fsq_trainer *t) {
  size_t n = fsq_params_count(t->params);
  t->oparams = calloc(n ? n : 1, sizeof *t->oparams);
  t->grads = calloc(n ? n : 1, sizeof *t->grads);
  if (t->oparams == NULL || t->grads == NULL) return fsq_error(FSQ_ERR_NOMEM, "trainer: out of memory");
  size_t offset = 0;
  for (size_t i = 0; i < n; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    if (p->dtype != t->precision || p->grad == NULL)
      return fsq_error(FSQ_ERR_UNSUPPORTED, "parameter %s: training needs %s with a gradient",
                       p->name, fsq_dtype_name(t->precision));
    size_t numel = (size_t)fsq_numel(p);
    float *value = p->data, *grad = p->grad->data;
    if (t->master) fsq_trainer_mixed_slices(t, numel, &offset, &value, &grad);
    t->oparams[i] = (fsq_opt_param){p->name, value, grad, numel, t->k};
    t->grads[i] = (fsq_grad_buffer){grad, numel};
    t->num_params += fsq_numel(p);
  }
  t->n_params = n;
  return FSQ_OK;
}

static fsq_status build_parts(fsq_trainer *t) {
  const fsq_trainer_parts *p = &t->parts;
  fsq_status st = p->task->create(t->cfg, &t->task);
  if (st != FSQ_OK) return st;
  fsq_task_env env = {p->task->source_dictionary(t->task), p->task->target_dictionary(t->task),
                      t->seed};
  t->params = fsq_params_create_on(t->k);
  t->ctx = fsq_ctx_create_on(t->k, 0);
  if (t->params == NULL || t->ctx == NULL) return fsq_error(FSQ_ERR_NOMEM, "trainer: out of memory");
  if (!t->k->host && (t->norm_sum = t->k->mem_alloc(sizeof *t->norm_sum)) == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "trainer: out of %s memory", t->k->name);
  if ((st = p->model->build(t->cfg, &env, t->params, &t->model)) != FSQ_OK) return st;
  if ((st = fsq_trainer_mixed_setup(t)) != FSQ_OK) return st;
  if ((st = p->criterion->create(t->cfg, &env, &t->criterion)) != FSQ_OK) return st;
  if ((st = collect_params(t)) != FSQ_OK) return st;
  if ((st = p->optimizer->create(t->cfg, t->oparams, t->n_params, &t->optimizer)) != FSQ_OK) return st;
  if ((st = p->lr_scheduler->create(t->cfg, &t->lr_scheduler)) != FSQ_OK) return st;
  t->lr = p->lr_scheduler->step_update(t->lr_scheduler, 0);
  return FSQ_OK;
}

fsq_status fsq_trainer_create(json_object *cfg, const fsq_trainer_parts *parts, fsq_trainer **out) {
  fsq_trainer *t = calloc(1, sizeof *t);
  if (t == NULL) return fsq_error(FSQ_ERR_NOMEM, "trainer: out of memory");
  t->cfg = cfg;
  t->parts = *parts;
  t->k = parts->backend ? parts->backend : fsq_kernels_cpu();
  t->epoch = 1;
  t->world = 1;
  t->start_time = fsq_time_now();
  fsq_status st = read_options(t);
  if (st == FSQ_OK) st = build_parts(t);
  if (st == FSQ_OK && ((t->inner = fsq_meters_new()) == NULL ||
                       (t->epoch_meters = fsq_meters_new()) == NULL))
    st = fsq_error(FSQ_ERR_NOMEM, "trainer: out of memory");
  if (st != FSQ_OK) {
    fsq_trainer_destroy(t);
    return st;
  }
  fsq_log_info(LOGGER, "num. model params: %lld (num. trained: %lld)", (long long)t->num_params,
               (long long)t->num_params);
  *out = t;
  return FSQ_OK;
}

void fsq_trainer_destroy(fsq_trainer *t) {
  if (t == NULL) return;
  const fsq_trainer_parts *p = &t->parts;
  fsq_reducer_destroy(t->reducer);
  if (t->lr_scheduler) p->lr_scheduler->destroy(t->lr_scheduler);
  if (t->optimizer) p->optimizer->destroy(t->optimizer);
  if (t->criterion) p->criterion->destroy(t->criterion);
  if (t->model) p->model->destroy(t->model);
  if (t->task) p->task->destroy(t->task);
  fsq_meters_free(t->inner);
  fsq_meters_free(t->epoch_meters);
  fsq_ctx_destroy(t->ctx);
  if (t->norm_sum) t->k->mem_free(t->norm_sum);
  fsq_trainer_mixed_free(t);
  fsq_params_destroy(t->params);
  free(t->oparams);
  free(t->grads);
  free(t->grad_slots);
  free(t);
}

static void add_log(fsq_criterion_log *sum, const fsq_criterion_log *x) {
  sum->loss += x->loss;
  sum->nll_loss += x->nll_loss;
  sum->ntokens += x->ntokens;
  sum->nsentences += x->nsentences;
  sum->sample_size += x->sample_size;
  sum->n_correct += x->n_correct;
  sum->total += x->total;
}

/* Forward and backward of one sub-batch; gradients add up in the params. */
fsq_status fsq_trainer_forward(fsq_trainer *t, const char *split, const uint32_t *indices,
                               size_t count, int backward, fsq_criterion_log *log) {
  fsq_sample sample;
  fsq_criterion_log one;
  memset(&one, 0, sizeof one);
  fsq_status st = t->parts.task->collate(t->task, split, indices, count, t->ctx, &sample);
  if (st != FSQ_OK) return st;
  fsq_tensor *loss = t->parts.criterion->forward(t->criterion, t->ctx, t->parts.model, t->model,
                                                 &sample, &one);
  if (loss == NULL) return fsq_ctx_status(t->ctx) != FSQ_OK ? fsq_ctx_status(t->ctx) : fsq_error_code();
  if (backward && (st = fsq_backward(t->ctx, fsq_trainer_mixed_scale_loss(t, loss))) != FSQ_OK)
    return st;
  add_log(log, &one);
  return FSQ_OK;
}

fsq_status fsq_trainer_gnorm_finite(const fsq_trainer *t, double gnorm) {
  if (isfinite(gnorm)) return FSQ_OK;
  return fsq_error(FSQ_ERR_INVALID,
                   "gradient norm is %f at update %lld: the loss is diverging; try a lower --lr "
                   "or --clip-norm", gnorm, (long long)t->num_updates + 1);
}

fsq_status fsq_trainer_update(fsq_trainer *t, fsq_epoch_iter *it, fsq_criterion_log *log,
                              double *gnorm, int *updated, int *end_of_epoch) {
  memset(log, 0, sizeof *log);
  *end_of_epoch = 0;
  *updated = 0;
  int taken = 0;
  /* the batches are of --train-subset (open_train_iterator) */
  const char *split = fsq_cfg_string(t->cfg, "train_subset", "train");
  for (int64_t i = 0; i < t->update_freq; i++) {
    const uint32_t *indices;
    size_t count;
    if (!fsq_epoch_iter_next(it, &indices, &count)) {
      *end_of_epoch = 1;
      break;
    }
    taken++;
    if (count == 0) continue; /* a filler batch of a short shard */
    fsq_ctx_reset(t->ctx);
    fsq_ctx_set_training(t->ctx, 1);
    fsq_ctx_set_grad(t->ctx, 1);
    /* dropout masks depend on (seed, update, sub-batch, rank) only: exact
     * resume, and N ranks draw the masks of one rank with N x --update-freq */
    fsq_ctx_set_seed(t->ctx, t->seed,
                     (uint64_t)((t->num_updates * t->update_freq + i) * t->world + t->rank));
    /* the last sub-batch of the update reduces its gradients as backward
     * finishes them; the ones before only accumulate */
    int64_t epoch;
    size_t taken_in_epoch;
    fsq_epoch_iter_position(it, &epoch, &taken_in_epoch);
    fsq_trainer_dist_sub_batch(t, i == t->update_freq - 1 ||
                                      taken_in_epoch >= fsq_epoch_iter_len(it));
    fsq_status st = fsq_trainer_forward(t, split, indices, count, 1, log);
    if (st != FSQ_OK) return st;
  }
  fsq_ctx_reset(t->ctx);
  /* every shard of an epoch has the same number of batches (filler batches
   * pad the short ones), so all ranks run out together */
  if (taken == 0) return FSQ_OK;
  if (t->world > 1) {
    fsq_status st = fsq_trainer_dist_sync(t, log);
    if (st != FSQ_OK) return st;
  }
  if (t->master) {
    int applied = 0;
    fsq_status st = fsq_trainer_mixed_step(t, log, gnorm, &applied);
    if (st == FSQ_OK) st = t->k->status();
    if (st != FSQ_OK) return st;
    *updated = applied ? FSQ_UPDATE_APPLIED : FSQ_UPDATE_SKIPPED;
    if (applied) t->lr = t->parts.lr_scheduler->step_update(t->lr_scheduler, ++t->num_updates);
    return FSQ_OK;
  }
  /* normalized by the global sample size, as fairseq does */
  if (log->sample_size > 0)
    fsq_grads_scale(t->k, t->grads, t->n_params, (float)(1.0 / log->sample_size));
  *gnorm = fsq_grads_clip(t->k, t->norm_sum, t->grads, t->n_params, t->clip_norm);
  fsq_status cst = fsq_trainer_dist_check_gnorm(t, gnorm);
  if (cst != FSQ_OK) return cst;
  if ((cst = fsq_trainer_gnorm_finite(t, *gnorm)) != FSQ_OK) return cst;
  fsq_status st = t->parts.optimizer->step(t->optimizer, t->oparams, t->n_params, t->lr);
  fsq_params_zero_grad(t->params);
  /* a device's kernels report failures here, once per update */
  if (st == FSQ_OK) st = t->k->status();
  if (st != FSQ_OK) return st;
  t->num_updates++;
  t->lr = t->parts.lr_scheduler->step_update(t->lr_scheduler, t->num_updates);
  *updated = FSQ_UPDATE_APPLIED;
  return FSQ_OK;
}
