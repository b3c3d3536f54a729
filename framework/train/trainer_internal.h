/* trainer_internal.h: the trainer's state, shared by its files. */
#ifndef FSQ_TRAINER_INTERNAL_H
#define FSQ_TRAINER_INTERNAL_H

#include "train/fsq_distributed.h"
#include "train/fsq_grads.h"
#include "train/fsq_loss_scaler.h"
#include "train/fsq_meters.h"
#include "train/fsq_trainer.h"

struct fsq_trainer {
  struct json_object *cfg; /* the caller's */
  fsq_trainer_parts parts;
  fsq_task *task;
  fsq_model *model;
  fsq_criterion *criterion;
  fsq_optimizer *optimizer;
  fsq_lr_scheduler *lr_scheduler;
  fsq_params *params;
  fsq_ctx *ctx;
  const fsq_kernels *k; /* the backend of params and ctx (parts.backend) */
  double *norm_sum;     /* a device's: one double the gradient norm adds into */
  fsq_opt_param *oparams; /* [n_params] */
  /* --fp16 / --bf16 (trainer_mixed.c): the model's dtype, FSQ_F32 without;
   * the f32 master values and gradients the optimizer sees, flat in k's
   * memory (NULL in f32); the loss scaler of --fp16 */
  fsq_dtype precision;
  float *master, *master_grad;
  size_t master_numel; /* of each flat buffer, the slices' padding included */
  int has_scaler;
  fsq_loss_scaler scaler;
  fsq_grad_buffer *grads; /* [n_params] */
  size_t n_params;
  int64_t num_params;
  fsq_epoch_iter *train_iter; /* owned by the task */
  fsq_meters *inner, *epoch_meters;
  /* data parallel (fsq_trainer_set_dist): a world of 1 without it */
  fsq_dist *dist;        /* borrowed; NULL: one process */
  fsq_reducer *reducer;  /* over the gradients, last parameter first */
  struct fsq_grad_slot *grad_slots; /* [n_params] by tensor address: the hook's map */
  double update_s, comm_wait_s;     /* fsq_trainer_get_comm_stats */
  uint64_t posted_in_backward;
  uint64_t flat_syncs; /* a 16-bit model's all-reduces of its master gradients */
  int rank, world;
  /* options */
  int64_t max_tokens, batch_size, update_freq, max_epoch, max_update, log_interval;
  int64_t validate_interval, patience, bsz_mult;
  uint64_t seed;
  double clip_norm, stop_time_hours;
  fsq_log_format log_format;
  /* progress */
  int64_t epoch, num_updates;
  size_t resume_index; /* batches of epoch already taken (restored), of this rank's shard */
  double lr;
  int has_best;
  double best;
  int64_t bad_validations; /* --patience */
  int meters_restored;      /* train/train_inner aggregates came from a checkpoint */
  double start_time;
};

fsq_status fsq_cfg_int(struct json_object *cfg, const char *key, int64_t *out);
double fsq_cfg_double(struct json_object *cfg, const char *key, double fallback);
int fsq_cfg_bool(struct json_object *cfg, const char *key);
const char *fsq_cfg_string(struct json_object *cfg, const char *key, const char *fallback);

fsq_status fsq_trainer_forward(fsq_trainer *t, const char *split, const uint32_t *indices,
                               size_t count, int backward, fsq_criterion_log *log);
/* The error of an update whose (summed) gradient norm is inf or nan. */
fsq_status fsq_trainer_gnorm_finite(const fsq_trainer *t, double gnorm);
/* One update over update_freq batches of it; *updated = 0 when the epoch
 * had no batch left, *end_of_epoch = 1 once it ran out. */
fsq_status fsq_trainer_update(fsq_trainer *t, fsq_epoch_iter *it, fsq_criterion_log *log,
                              double *gnorm, int *updated, int *end_of_epoch);
fsq_status fsq_trainer_save(fsq_trainer *t, int end_of_epoch, int has_val, double val);
/* Sums a criterion log over the ranks (f64); the identity in a world of 1. */
fsq_status fsq_trainer_sum_log(fsq_trainer *t, fsq_criterion_log *log);

/* fsq_trainer_update's *updated: no batch was left, the update was
 * applied, or its batches were taken but the step skipped (an --fp16
 * gradient overflow: fairseq counts no update and logs nothing). */
enum { FSQ_UPDATE_NONE = 0, FSQ_UPDATE_APPLIED = 1, FSQ_UPDATE_SKIPPED = 2 };

/* trainer_mixed.c. options: --fp16/--bf16 and the scaler's flags;
 * setup (after the model is built, in f32): the master copies, then the
 * model converted; slices: the next parameter's master value and gradient
 * (offset advances over the flat buffers); scale_loss: the loss backward starts
 * from; step: the update after the gradients are summed (*applied 0: an
 * overflow skipped it); to_model: the masters rounded into the model;
 * log: the meters' loss_scale. */
fsq_status fsq_trainer_mixed_options(fsq_trainer *t);
fsq_status fsq_trainer_mixed_setup(fsq_trainer *t);
/* After fsq_trainer_set_dist made a world of several ranks. */
fsq_status fsq_trainer_mixed_set_world(fsq_trainer *t);
void fsq_trainer_mixed_slices(fsq_trainer *t, size_t numel, size_t *offset, float **value,
                              float **grad);
void fsq_trainer_mixed_free(fsq_trainer *t);
fsq_tensor *fsq_trainer_mixed_scale_loss(fsq_trainer *t, fsq_tensor *loss);
fsq_status fsq_trainer_mixed_step(fsq_trainer *t, const fsq_criterion_log *log, double *gnorm,
                                  int *applied);
void fsq_trainer_mixed_to_model(fsq_trainer *t);
fsq_status fsq_trainer_mixed_log(fsq_trainer *t, fsq_meters *m);

/* trainer_dist.c (all no-ops in a world of 1). Before each sub-batch's
 * forward: last says whether its backward synchronizes the gradients. */
void fsq_trainer_dist_sub_batch(fsq_trainer *t, int last);
/* After the update's last sub-batch: every gradient and the log summed. */
fsq_status fsq_trainer_dist_sync(fsq_trainer *t, fsq_criterion_log *log);
/* The summed gradients' norm is the same on every rank; non-finite on all
 * when on any. */
fsq_status fsq_trainer_dist_check_gnorm(fsq_trainer *t, double *gnorm);

#endif
