/* trainer_checkpoint.c: what the trainer writes into a checkpoint and reads
 * back (fairseq's checkpoint_utils.save_checkpoint / Trainer.load_checkpoint):
 * parameters and optimizer buffers borrowed without a copy, and in meta.json
 * the configuration, progress, scheduler and optimizer scalars and the best
 * validation loss. */
#include "train/trainer_internal.h"

#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint/fsq_checkpoint.h"

#define LOGGER "fairseq.checkpoint_utils"

/* An f32 buffer of the trainer's backend into the state: borrowed when it
 * is host memory (saving streams from it), else a host copy the state owns. */
static fsq_status add_buffer(fsq_trainer *t, fsq_state *st, fsq_ckpt_group group,
                             const char *name, int ndim, const int64_t *shape, void *data,
                             size_t nbytes) {
  if (t->k->host)
    return fsq_state_add(st, group, name, FSQ_CKPT_F32, ndim, shape, data, nbytes,
                         FSQ_CKPT_BORROW);
  void *copy = malloc(nbytes ? nbytes : 1);
  if (copy == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "checkpoint: no host memory for a copy of '%s'", name);
  t->k->mem_download(copy, data, nbytes);
  fsq_status s =
      fsq_state_add(st, group, name, FSQ_CKPT_F32, ndim, shape, copy, nbytes, FSQ_CKPT_TAKE);
  if (s != FSQ_OK) free(copy);
  return s;
}

static fsq_status add_tensors(fsq_trainer *t, fsq_state *st, int with_optimizer) {
  /* the optimizer's f32 values: a 16-bit model's master copies, which a
   * resumed run continues from exactly and an f32 run or fairseq-generate
   * reads as any checkpoint (fairseq saves the rounded 16-bit values) */
  for (size_t i = 0; i < t->n_params; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    fsq_status s = add_buffer(t, st, FSQ_CKPT_MODEL, p->name, p->ndim, p->shape,
                              t->oparams[i].value, (size_t)fsq_numel(p) * sizeof(float));
    if (s != FSQ_OK) return s;
  }
  size_t nb = with_optimizer ? t->parts.optimizer->buffer_count(t->optimizer) : 0;
  for (size_t i = 0; i < nb; i++) {
    fsq_opt_buffer b = t->parts.optimizer->buffer_at(t->optimizer, i);
    int64_t shape[1] = {(int64_t)b.numel};
    fsq_status s = add_buffer(t, st, FSQ_CKPT_OPTIMIZER, b.name, 1, shape, b.data,
                              b.numel * sizeof(float));
    if (s != FSQ_OK) return s;
  }
  return FSQ_OK;
}

/* extra_state["metrics"]: the running train and train_inner aggregates, so
 * that a run resumed in the middle of an epoch prints the same epoch line
 * (fairseq saves metrics.state_dict() there). */
static fsq_status add_metrics(fsq_trainer *t, json_object *extra) {
  json_object *metrics = json_object_new_object(), *epoch = NULL, *inner = NULL;
  if (metrics == NULL) return fsq_error(FSQ_ERR_NOMEM, "checkpoint metrics: out of memory");
  json_object_object_add(extra, "metrics", metrics);
  fsq_status s = fsq_meters_state_save(t->epoch_meters, &epoch);
  if (s == FSQ_OK) json_object_object_add(metrics, "train", epoch);
  if (s == FSQ_OK) s = fsq_meters_state_save(t->inner, &inner);
  if (s == FSQ_OK) json_object_object_add(metrics, "train_inner", inner);
  return s;
}

static fsq_status restore_metrics(fsq_trainer *t, json_object *extra) {
  json_object *metrics, *epoch, *inner;
  if (!json_object_object_get_ex(extra, "metrics", &metrics)) return FSQ_OK; /* older files */
  if (!json_object_object_get_ex(metrics, "train", &epoch) ||
      !json_object_object_get_ex(metrics, "train_inner", &inner))
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint extra_state.metrics lacks train or train_inner");
  fsq_status s = fsq_meters_state_load(t->epoch_meters, epoch);
  if (s == FSQ_OK) s = fsq_meters_state_load(t->inner, inner);
  if (s == FSQ_OK) t->meters_restored = 1;
  return s;
}

/* optimizer_history[-1] and extra_state, as fairseq names them. */
static fsq_status add_meta(fsq_trainer *t, fsq_state *st, int end_of_epoch, int has_val,
                           double val) {
  int64_t epoch_pos;
  size_t index;
  fsq_epoch_iter_position(t->train_iter, &epoch_pos, &index);
  fsq_status s = fsq_state_set_config(st, t->cfg);
  if (s == FSQ_OK) s = fsq_state_set_progress(st, t->epoch, end_of_epoch ? -1 : (int64_t)index,
                                              t->num_updates);
  if (s != FSQ_OK) return s;
  json_object *meta = fsq_state_meta(st), *history, *extra, *sched = NULL, *opt = NULL;
  json_object_object_get_ex(meta, "optimizer_history", &history);
  json_object *last = json_object_array_get_idx(history, json_object_array_length(history) - 1);
  if ((s = t->parts.lr_scheduler->state_save(t->lr_scheduler, &sched)) != FSQ_OK) return s;
  json_object_object_add(last, "lr_scheduler_state", sched);
  if ((s = t->parts.optimizer->state_save(t->optimizer, &opt)) != FSQ_OK) return s;
  json_object_object_add(meta, "last_optimizer_state", opt);
  /* fairseq's FP16Optimizer adds its scale to the optimizer's state */
  if (t->has_scaler && (s = fsq_loss_scaler_state_save(&t->scaler, opt)) != FSQ_OK) return s;
  json_object_object_get_ex(meta, "extra_state", &extra);
  json_object_object_add(extra, "val_loss", has_val ? json_object_new_double(val) : NULL);
  json_object_object_add(extra, "lr", json_object_new_double(t->lr));
  int better = has_val && (!t->has_best || val < t->best);
  double best = better ? val : t->best;
  json_object_object_add(extra, "best", t->has_best || better ? json_object_new_double(best) : NULL);
  json_object_object_add(extra, "bad_validations", json_object_new_int64(t->bad_validations));
  /* the iterator position counts batches of one rank's shard */
  json_object_object_add(extra, "distributed_world_size", json_object_new_int64(t->world));
  return add_metrics(t, extra);
}

static void policy_from_cfg(fsq_trainer *t, fsq_ckpt_policy *p) {
  memset(p, 0, sizeof *p);
  p->suffix = fsq_cfg_string(t->cfg, "checkpoint_suffix", "");
  fsq_cfg_int(t->cfg, "save_interval", &p->save_interval);
  fsq_cfg_int(t->cfg, "save_interval_updates", &p->save_interval_updates);
  fsq_cfg_int(t->cfg, "keep_interval_updates", &p->keep_interval_updates);
  fsq_cfg_int(t->cfg, "keep_last_epochs", &p->keep_last_epochs);
  fsq_cfg_int(t->cfg, "keep_best_checkpoints", &p->keep_best_checkpoints);
  p->no_epoch_checkpoints = fsq_cfg_bool(t->cfg, "no_epoch_checkpoints");
  p->no_last_checkpoints = fsq_cfg_bool(t->cfg, "no_last_checkpoints");
  p->best_checkpoint_metric = fsq_cfg_string(t->cfg, "best_checkpoint_metric", "loss");
  if (p->save_interval < 1) p->save_interval = 1;
}

/* Removes what --keep-* says is old, among the files of dir. */
static void remove_old(const char *dir, const fsq_ckpt_policy *p, const fsq_ckpt_moment *m) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  char *names[4096];
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 4096)
    if (strncmp(e->d_name, "checkpoint", 10) == 0) names[n++] = strdup(e->d_name);
  closedir(d);
  int remove_flags[4096] = {0};
  fsq_checkpoint_old_files(p, m, (const char *const *)names, n, remove_flags);
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    if (remove_flags[i] && snprintf(path, sizeof path, "%s/%s", dir, names[i]) < (int)sizeof path)
      remove(path);
    free(names[i]);
  }
}

static fsq_status write_files(fsq_trainer *t, fsq_state *st, char **names, size_t n,
                              const char *dir) {
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    fsq_status s = fsq_checkpoint_save(st, path);
    if (s != FSQ_OK) return s;
  }
  return FSQ_OK;
}

fsq_status fsq_trainer_save(fsq_trainer *t, int end_of_epoch, int has_val, double val) {
  /* only the master writes: every rank holds the same parameters */
  if (fsq_cfg_bool(t->cfg, "no_save") || t->rank != 0) return FSQ_OK;
  const char *dir = fsq_cfg_string(t->cfg, "save_dir", "checkpoints");
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return fsq_error(FSQ_ERR_IO, "--save-dir %s: %s", dir, strerror(errno));
  fsq_ckpt_policy policy;
  policy_from_cfg(t, &policy);
  fsq_ckpt_moment m = {t->epoch, t->num_updates, end_of_epoch, has_val, val, t->has_best, t->best};
  char *names[FSQ_CKPT_MAX_NAMES];
  size_t n = 0;
  fsq_status s = fsq_checkpoint_names(&policy, &m, names, &n);
  if (s != FSQ_OK || n == 0) return s;
  double start = fsq_time_now();
  fsq_state *st = fsq_state_new();
  if (st == NULL) s = fsq_error(FSQ_ERR_NOMEM, "checkpoint: out of memory");
  if (s == FSQ_OK) s = add_tensors(t, st, !fsq_cfg_bool(t->cfg, "no_save_optimizer_state"));
  if (s == FSQ_OK) s = add_meta(t, st, end_of_epoch, has_val, val);
  if (s == FSQ_OK) s = write_files(t, st, names, n, dir);
  if (s == FSQ_OK) {
    char score[64] = "None";
    if (has_val) fsq_format_repr(val, score, sizeof score);
    fsq_log_info(LOGGER,
                 "Saved checkpoint %s/%s (epoch %lld @ %lld updates, score %s) (writing took %f seconds)",
                 dir, names[0], (long long)t->epoch, (long long)t->num_updates, score,
                 fsq_time_now() - start);
    remove_old(dir, &policy, &m);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  fsq_state_free(st);
  return s;
}

/* Copies a record into the buffer of the same name (in k's memory),
 * checking its size. */
static fsq_status copy_record(const fsq_kernels *k, fsq_state *st, fsq_ckpt_group group,
                              const char *name, void *dst, size_t nbytes) {
  fsq_ckpt_tensor *r = fsq_state_find(st, group, name);
  if (r == NULL)
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint has no %s tensor '%s' (another architecture?)",
                     fsq_ckpt_group_name(group), name);
  if (r->dtype != FSQ_CKPT_F32 || r->nbytes != nbytes)
    return fsq_error(FSQ_ERR_FORMAT,
                     "checkpoint tensor '%s' is %s of %zu bytes, the model needs f32 of %zu",
                     name, fsq_ckpt_dtype_name(r->dtype), r->nbytes, nbytes);
  k->mem_upload(dst, r->data, nbytes);
  return FSQ_OK;
}

static void format_shape(int ndim, const int64_t *shape, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < ndim && used < size; d++)
    used += (size_t)snprintf(buf + used, size - used, d ? ", %lld" : "%lld", (long long)shape[d]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* A parameter whose shape differs means the checkpoint is of another
 * architecture: name the first such tensor with both shapes. */
static fsq_status check_shape(const fsq_state *st, const fsq_tensor *p) {
  fsq_ckpt_tensor *r = fsq_state_find((fsq_state *)st, FSQ_CKPT_MODEL, p->name);
  if (r == NULL || r->ndim != p->ndim ||
      memcmp(r->shape, p->shape, (size_t)p->ndim * sizeof *p->shape) != 0) {
    char have[128] = "absent", want[128];
    if (r != NULL) format_shape(r->ndim, r->shape, have, sizeof have);
    format_shape(p->ndim, p->shape, want, sizeof want);
    return fsq_error(FSQ_ERR_FORMAT,
                     "checkpoint of another architecture: parameter '%s' is %s, the model "
                     "needs %s", p->name, have, want);
  }
  return FSQ_OK;
}

static fsq_status restore_params(fsq_trainer *t, fsq_state *st) {
  for (size_t i = 0; i < t->n_params; i++) {
    fsq_status s = check_shape(st, fsq_params_at(t->params, i));
    if (s != FSQ_OK) return s;
  }
  if (fsq_state_count(st, FSQ_CKPT_MODEL) != t->n_params)
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint has %zu model tensors, the model has %zu "
                                     "(another architecture?)",
                     fsq_state_count(st, FSQ_CKPT_MODEL), t->n_params);
  for (size_t i = 0; i < t->n_params; i++) {
    fsq_tensor *p = fsq_params_at(t->params, i);
    fsq_status s = copy_record(t->k, st, FSQ_CKPT_MODEL, p->name, t->oparams[i].value,
                               (size_t)fsq_numel(p) * sizeof(float));
    if (s != FSQ_OK) return s;
  }
  fsq_trainer_mixed_to_model(t); /* a 16-bit model: from the restored masters */
  return FSQ_OK;
}

static fsq_status restore_optimizer(fsq_trainer *t, fsq_state *st) {
  json_object *meta = fsq_state_meta(st), *opt;
  size_t nb = t->parts.optimizer->buffer_count(t->optimizer);
  for (size_t i = 0; i < nb; i++) {
    fsq_opt_buffer b = t->parts.optimizer->buffer_at(t->optimizer, i);
    fsq_status s =
        copy_record(t->k, st, FSQ_CKPT_OPTIMIZER, b.name, b.data, b.numel * sizeof(float));
    if (s != FSQ_OK) return s;
  }
  if (!json_object_object_get_ex(meta, "last_optimizer_state", &opt))
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint has no last_optimizer_state");
  fsq_status s = t->has_scaler ? fsq_loss_scaler_state_load(&t->scaler, opt) : FSQ_OK;
  return s == FSQ_OK ? t->parts.optimizer->state_load(t->optimizer, opt) : s;
}

/* The saved position counts batches of the saving rank's shard: with N
 * ranks, index batches of every shard are the first index * N batches of the
 * epoch's list. Resumed by M ranks, each shard continues at index * N / M,
 * which exists when M divides index * N. (fairseq itself would skip index
 * batches of the new shard, silently seeing other batches.) */
static fsq_status shard_position(fsq_trainer *t, json_object *meta, int64_t epoch,
                                 int64_t *index) {
  json_object *extra;
  int64_t saved = 1; /* files without the key were written by one process */
  if (json_object_object_get_ex(meta, "extra_state", &extra) &&
      fsq_json_get_int64(extra, "distributed_world_size", &saved) != FSQ_OK)
    saved = 1;
  if (saved < 1) return fsq_error(FSQ_ERR_FORMAT, "checkpoint distributed_world_size %lld < 1",
                                  (long long)saved);
  if (saved == t->world) return FSQ_OK;
  int64_t global = *index * saved;
  if (global % t->world != 0)
    return fsq_error(FSQ_ERR_INVALID,
                     "checkpoint saved by %lld rank(s) in the middle of epoch %lld, after %lld "
                     "batches of its list: %d ranks cannot continue there (%d does not divide "
                     "%lld); resume with %lld rank(s), a number of ranks dividing %lld, or "
                     "--reset-dataloader (restarts the epoch)",
                     (long long)saved, (long long)epoch, (long long)global, t->world, t->world,
                     (long long)global, (long long)saved, (long long)global);
  if (t->rank == 0)
    fsq_log_info(LOGGER, "checkpoint saved by %lld rank(s) after %lld batches of epoch %lld: "
                 "each of %d ranks continues at batch %lld of its shard", (long long)saved,
                 (long long)global, (long long)epoch, t->world, (long long)(global / t->world));
  *index = global / t->world;
  return FSQ_OK;
}

/* fairseq's load_checkpoint: num_updates goes with the optimizer
 * (--reset-optimizer), the iterator position with --reset-dataloader, the
 * best score and patience with --reset-meters. */
static fsq_status restore_progress(fsq_trainer *t, fsq_state *st) {
  int64_t epoch, index, updates;
  fsq_status s = fsq_state_get_progress(st, &epoch, &index, &updates);
  if (s != FSQ_OK) return s;
  if (!fsq_cfg_bool(t->cfg, "reset_optimizer")) t->num_updates = updates;
  json_object *meta = fsq_state_meta(st), *extra, *v;
  if (!fsq_cfg_bool(t->cfg, "reset_meters") &&
      json_object_object_get_ex(meta, "extra_state", &extra)) {
    if (json_object_object_get_ex(extra, "best", &v) && v != NULL) {
      t->has_best = 1;
      t->best = json_object_get_double(v);
    }
    int64_t bad = 0;
    if (fsq_json_get_int64(extra, "bad_validations", &bad) == FSQ_OK) t->bad_validations = bad;
    if ((s = restore_metrics(t, extra)) != FSQ_OK) return s;
  }
  if (fsq_cfg_bool(t->cfg, "reset_dataloader")) return FSQ_OK;
  if (index > 0 && (s = shard_position(t, meta, epoch, &index)) != FSQ_OK) return s;
  /* an end-of-epoch save (index -1) continues with the next epoch */
  t->epoch = index < 0 ? epoch + 1 : epoch;
  t->resume_index = index < 0 ? 0 : (size_t)index;
  return FSQ_OK;
}

static fsq_status restore_scheduler(fsq_trainer *t, fsq_state *st) {
  json_object *meta = fsq_state_meta(st), *history, *sched;
  json_object_object_get_ex(meta, "optimizer_history", &history);
  size_t n = history ? json_object_array_length(history) : 0;
  json_object *last = n ? json_object_array_get_idx(history, n - 1) : NULL;
  if (last == NULL || !json_object_object_get_ex(last, "lr_scheduler_state", &sched))
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint has no lr_scheduler_state");
  fsq_status s = t->parts.lr_scheduler->state_load(t->lr_scheduler, sched);
  if (s == FSQ_OK) t->lr = t->parts.lr_scheduler->step_update(t->lr_scheduler, t->num_updates);
  return s;
}

fsq_status fsq_trainer_restore_params(fsq_trainer *t, fsq_state *st) {
  return restore_params(t, st);
}

fsq_status fsq_trainer_restore(fsq_trainer *t, fsq_state *st) {
  fsq_status s = restore_params(t, st);
  if (s == FSQ_OK && !fsq_cfg_bool(t->cfg, "reset_optimizer")) s = restore_optimizer(t, st);
  if (s == FSQ_OK) s = restore_progress(t, st);
  if (s == FSQ_OK && !fsq_cfg_bool(t->cfg, "reset_lr_scheduler") &&
      !fsq_cfg_bool(t->cfg, "reset_optimizer"))
    s = restore_scheduler(t, st);
  return s;
}
