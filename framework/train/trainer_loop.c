/* trainer_loop.c: the epoch loop of fairseq_cli/train.py: train, log
 * train_inner / train lines, validate, save, stop. */
#include "train/trainer_internal.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_STATS 32

/* fairseq's task.reduce_metrics (wpb, wps, bsz) and the criterion's. */
static fsq_status log_batch_metrics(fsq_trainer *t, fsq_meters *m, const fsq_criterion_log *log) {
  fsq_meters_log_speed(m, "wps", log->ntokens, 90, 1);
  fsq_meters_log_scalar(m, "wpb", log->ntokens, 1, 180, 1);
  fsq_meters_log_scalar(m, "bsz", log->nsentences, 1, 190, 1);
  return t->parts.criterion->reduce_metrics(t->criterion, log, m);
}

static fsq_status log_update(fsq_trainer *t, fsq_meters *m, const fsq_criterion_log *log,
                             double gnorm, double wall) {
  fsq_status st = log_batch_metrics(t, m, log);
  if (st != FSQ_OK) return st;
  fsq_meters_log_speed(m, "ups", 1.0, 100, 2);
  fsq_meters_log_scalar(m, "num_updates", (double)t->num_updates, 0, 200, FSQ_ROUND_NONE);
  fsq_meters_log_scalar(m, "lr", t->lr, 0, 300, FSQ_ROUND_NONE);
  fsq_meters_log_scalar(m, "gnorm", gnorm, 1, 400, 3);
  if (t->clip_norm > 0)
    fsq_meters_log_scalar(m, "clip", gnorm > t->clip_norm ? 100.0 : 0.0, 1, 500, 1);
  if ((st = fsq_trainer_mixed_log(t, m)) != FSQ_OK) return st;
  /* train_wall: a stopwatch summing the time spent in updates */
  return fsq_meters_add_time(m, "train_wall", wall, 800, 0);
}

/* An update an --fp16 overflow skipped: fairseq's train_step logs no
 * statistics for it, but still the (lowered) loss scale and its time. */
static fsq_status log_skipped(fsq_trainer *t, fsq_meters *m, double wall) {
  fsq_status st = fsq_trainer_mixed_log(t, m);
  return st == FSQ_OK ? fsq_meters_add_time(m, "train_wall", wall, 800, 0) : st;
}

/* Smoothed stats plus fairseq's "wall" (seconds since start, rounded). */
static size_t training_stats(const fsq_trainer *t, const fsq_meters *m, fsq_stat *stats) {
  size_t n = fsq_meters_smoothed(m, stats, MAX_STATS - 1);
  stats[n].key = "wall";
  stats[n].value = fsq_round_digits(fsq_time_now() - t->start_time, 0);
  return n + 1;
}

static fsq_status should_stop_early(fsq_trainer *t, int *stop) {
  *stop = 0;
  if (t->max_update > 0 && t->num_updates >= t->max_update) {
    *stop = 1;
    return FSQ_OK;
  }
  if (t->stop_time_hours <= 0) return FSQ_OK;
  /* clocks differ between ranks: rank 0's decides for all */
  int32_t late = fsq_time_now() - t->start_time > t->stop_time_hours * 3600.0;
  if (t->world > 1) {
    fsq_status st = fsq_dist_broadcast(t->dist, &late, sizeof late, 0);
    if (st != FSQ_OK) return st;
  }
  if (late)
    fsq_log_info("fairseq_cli.train", "stopping training because --stop-time-hours=%g was reached",
                 t->stop_time_hours);
  *stop = late != 0;
  return FSQ_OK;
}

static fsq_status open_train_iterator(fsq_trainer *t) {
  int64_t max_src = 0, max_tgt = 0;
  t->parts.model->max_positions(t->model, &max_src, &max_tgt);
  fsq_batch_spec spec = {t->max_tokens, t->batch_size, t->bsz_mult > 0 ? t->bsz_mult : 1,
                         max_src, max_tgt, 0, t->seed, 1, t->world, t->rank};
  /* fairseq's ShardedIterator: rank r takes batches r, r + N, ... of the
   * epoch's shuffled list */
  return t->parts.task->get_batch_iterator(t->task, fsq_cfg_string(t->cfg, "train_subset", "train"),
                                           &spec, &t->train_iter);
}

/* Validation on every --valid-subset: the loss (base 2) of the first. */
static fsq_status validate(fsq_trainer *t, double *valid_loss) {
  const char *subsets = fsq_cfg_string(t->cfg, "valid_subset", "valid");
  char list[256];
  snprintf(list, sizeof list, "%s", subsets);
  int first = 1;
  char *save = NULL;
  for (char *split = strtok_r(list, ",", &save); split; split = strtok_r(NULL, ",", &save)) {
    fsq_log_info("fairseq_cli.train", "begin validation on \"%s\" subset", split);
    int64_t max_src = 0, max_tgt = 0;
    t->parts.model->max_positions(t->model, &max_src, &max_tgt);
    fsq_batch_spec spec = {t->max_tokens, t->batch_size, t->bsz_mult > 0 ? t->bsz_mult : 1,
                           max_src, max_tgt,
                           fsq_cfg_bool(t->cfg, "skip_invalid_size_inputs_valid_test"),
                           t->seed, 0, t->world, t->rank};
    fsq_epoch_iter *it = NULL;
    fsq_status st = t->parts.task->get_batch_iterator(t->task, split, &spec, &it);
    if (st == FSQ_OK) st = fsq_epoch_iter_begin(it, 1);
    fsq_meters *m = fsq_meters_new();
    if (m == NULL && st == FSQ_OK) st = fsq_error_code();
    const uint32_t *indices;
    size_t count;
    /* each rank validates its shard; every step's logs are summed across
     * ranks (a filler batch adds zeros), as fairseq gathers them */
    while (st == FSQ_OK && fsq_epoch_iter_next(it, &indices, &count)) {
      if (count == 0 && t->world == 1) continue;
      fsq_criterion_log log;
      memset(&log, 0, sizeof log);
      fsq_ctx_reset(t->ctx);
      fsq_ctx_set_training(t->ctx, 0);
      fsq_ctx_set_grad(t->ctx, 0);
      if (count > 0) st = fsq_trainer_forward(t, split, indices, count, 0, &log);
      if (st == FSQ_OK) st = t->k->status(); /* a device's failed kernels */
      if (st == FSQ_OK) st = fsq_trainer_sum_log(t, &log);
      if (st == FSQ_OK) st = log_batch_metrics(t, m, &log);
    }
    fsq_ctx_reset(t->ctx);
    fsq_ctx_set_training(t->ctx, 1);
    fsq_ctx_set_grad(t->ctx, 1);
    if (st != FSQ_OK) {
      fsq_meters_free(m);
      return st;
    }
    fsq_stat stats[MAX_STATS];
    size_t n = fsq_meters_smoothed(m, stats, MAX_STATS - 2);
    double loss = fsq_meters_avg(m, "loss");
    stats[n].key = "num_updates";
    stats[n++].value = (double)t->num_updates;
    if (first) {
      double best = t->has_best ? fmin(t->best, fsq_round_digits(loss, 3)) : fsq_round_digits(loss, 3);
      stats[n].key = "best_loss";
      stats[n++].value = best;
      *valid_loss = loss;
    }
    char prefix[160];
    snprintf(prefix, sizeof prefix, "valid on '%s' subset", split);
    fsq_progress p;
    fsq_progress_init(&p, t->log_format == FSQ_LOG_FORMAT_TQDM ? FSQ_LOG_FORMAT_SIMPLE : t->log_format,
                      t->log_interval, t->epoch, prefix, 0);
    fsq_progress_print(&p, stats, n, "valid");
    fsq_meters_free(m);
    first = 0;
  }
  return FSQ_OK;
}

/* fairseq_cli.train.validate_and_save, after every update: validate and save
 * at the end of an epoch (--validate-interval, --save-interval), every
 * --validate-interval-updates / --save-interval-updates, and when stopping;
 * *stop also turns on when --patience runs out. */
static fsq_status validate_and_save(fsq_trainer *t, int end_of_epoch, int stopping, int *stop,
                                    int *validated, double *loss) {
  int64_t n = t->num_updates, save_interval = 1, save_updates = 0, valid_updates = 0;
  fsq_cfg_int(t->cfg, "save_interval", &save_interval);
  fsq_cfg_int(t->cfg, "save_interval_updates", &save_updates);
  fsq_cfg_int(t->cfg, "validate_interval_updates", &valid_updates);
  int do_save = (end_of_epoch && t->epoch % (save_interval > 0 ? save_interval : 1) == 0) ||
                stopping || (save_updates > 0 && n > 0 && n % save_updates == 0);
  int do_validate = !fsq_cfg_bool(t->cfg, "disable_validation") &&
                    ((!end_of_epoch && do_save) ||
                     (end_of_epoch && t->epoch % t->validate_interval == 0) || stopping ||
                     (valid_updates > 0 && n > 0 && n % valid_updates == 0));
  *validated = do_validate;
  fsq_status st = do_validate ? validate(t, loss) : FSQ_OK;
  if (st != FSQ_OK) return st;
  if (do_validate) {
    int better = !t->has_best || *loss < t->best;
    t->bad_validations = better ? 0 : t->bad_validations + 1;
    if (t->patience > 0 && t->bad_validations >= t->patience) {
      fsq_log_info("fairseq_cli.train",
                   "early stop since valid performance hasn't improved for last %lld runs",
                   (long long)t->patience);
      *stop = 1;
    }
  }
  if (do_save) st = fsq_trainer_save(t, end_of_epoch, do_validate, *loss);
  if (do_validate && (!t->has_best || *loss < t->best)) {
    t->best = *loss;
    t->has_best = 1;
  }
  return st;
}

static fsq_status train_epoch(fsq_trainer *t, int *stop) {
  int resumed = t->resume_index > 0;
  fsq_status st = resumed ? fsq_epoch_iter_restore(t->train_iter, t->epoch, t->resume_index)
                          : fsq_epoch_iter_begin(t->train_iter, t->epoch);
  t->resume_index = 0;
  if (st != FSQ_OK) return st;
  fsq_log_info("fairseq.trainer", "begin training epoch %lld", (long long)t->epoch);
  t->lr = t->parts.lr_scheduler->step_begin_epoch(t->lr_scheduler, t->epoch);
  /* mid-epoch, the epoch's aggregates came back from the checkpoint */
  if (!resumed || !t->meters_restored) fsq_meters_reset(t->epoch_meters);
  t->meters_restored = 0;
  fsq_progress p;
  fsq_progress_init(&p, t->log_format, t->log_interval, t->epoch, NULL,
                    (int64_t)fsq_epoch_iter_len(t->train_iter));
  int end_of_epoch = 0, validated = 0;
  double valid_loss = 0;
  size_t batches = fsq_epoch_iter_len(t->train_iter);
  while (!end_of_epoch) {
    fsq_criterion_log log;
    double gnorm = 0, start = fsq_time_now();
    int updated = 0;
    st = fsq_trainer_update(t, t->train_iter, &log, &gnorm, &updated, &end_of_epoch);
    if (st != FSQ_OK) return st;
    if (updated == FSQ_UPDATE_NONE) break;
    double secs = fsq_time_now() - start;
    t->update_s += secs;
    int applied = updated == FSQ_UPDATE_APPLIED;
    fsq_meters *meters[2] = {t->inner, t->epoch_meters};
    for (int k = 0; k < 2; k++) {
      st = applied ? log_update(t, meters[k], &log, gnorm, secs) : log_skipped(t, meters[k], secs);
      if (st != FSQ_OK) return st;
    }
    int64_t epoch_pos;
    size_t index;
    fsq_epoch_iter_position(t->train_iter, &epoch_pos, &index);
    p.i = (int64_t)index - 1;
    if (applied && t->log_interval > 0 && t->num_updates % t->log_interval == 0) {
      fsq_stat stats[MAX_STATS];
      size_t n = training_stats(t, t->inner, stats);
      fsq_progress_log(&p, stats, n, "train_inner", t->num_updates);
      fsq_meters_reset(t->inner);
    }
    end_of_epoch = index >= batches;
    int stopping = 0;
    if ((st = should_stop_early(t, &stopping)) != FSQ_OK) return st;
    st = validate_and_save(t, end_of_epoch, stopping, stop, &validated, &valid_loss);
    if (st != FSQ_OK) return st;
    if (stopping) *stop = 1;
    if (*stop) break;
  }
  fsq_log_info("fairseq_cli.train", "end of epoch %lld (average epoch stats below)",
               (long long)t->epoch);
  fsq_stat stats[MAX_STATS];
  size_t n = training_stats(t, t->epoch_meters, stats);
  fsq_progress_print(&p, stats, n, "train");
  /* fairseq's trainer.lr_step(epoch, valid_losses[0]) between epochs */
  if (!*stop) {
    t->parts.lr_scheduler->step(t->lr_scheduler, t->epoch, validated, valid_loss);
    t->lr = t->parts.lr_scheduler->step_update(t->lr_scheduler, t->num_updates);
  }
  return FSQ_OK;
}

/* DistributedDataParallel starts every rank from rank 0's parameters: they
 * are initialized with the same seed everywhere (or restored from the same
 * checkpoint), and this makes sure. */
static fsq_status broadcast_params(fsq_trainer *t) {
  if (t->world == 1) return FSQ_OK;
  /* the f32 values: a 16-bit model's masters, rounded into it after */
  for (size_t i = 0; i < t->n_params; i++) {
    fsq_status st = fsq_dist_broadcast(t->dist, t->oparams[i].value,
                                       t->oparams[i].numel * sizeof(float), 0);
    if (st != FSQ_OK) return st;
  }
  fsq_trainer_mixed_to_model(t);
  return FSQ_OK;
}

fsq_status fsq_trainer_run(fsq_trainer *t) {
  fsq_status st = broadcast_params(t);
  if (st == FSQ_OK) st = open_train_iterator(t);
  if (st != FSQ_OK) return st;
  int stop = 0;
  while (!stop && (t->max_epoch <= 0 || t->epoch <= t->max_epoch)) {
    if (t->max_update > 0 && t->num_updates >= t->max_update) break;
    st = train_epoch(t, &stop);
    if (st != FSQ_OK) return st;
    if (!stop) t->epoch++;
  }
  fsq_log_info("fairseq_cli.train", "done training in %.1f seconds", fsq_time_now() - t->start_time);
  return FSQ_OK;
}
