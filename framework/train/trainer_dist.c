/* trainer_dist.c: the trainer's data-parallel side. Gradients are summed
 * across ranks in buckets while backward still runs: autograd's grad-ready
 * hook marks each parameter's gradient in the reducer as soon as it is
 * final, and a full bucket starts its all-reduce at once. (A 16-bit model's
 * f32 gradients are summed after backward instead: trainer_mixed.c.) */
#include "train/trainer_internal.h"

#include <math.h>
#include <stdlib.h>

/* A parameter tensor and its gradient's index in the reducer. */
struct fsq_grad_slot {
  const fsq_tensor *param;
  size_t index;
};

static int slot_cmp(const void *a, const void *b) {
  const struct fsq_grad_slot *x = a, *y = b;
  return (x->param > y->param) - (x->param < y->param);
}

/* fsq_backward's hook: the gradient of leaf is final for this backward. */
static fsq_status on_grad_ready(fsq_tensor *leaf, void *user) {
  fsq_trainer *t = user;
  struct fsq_grad_slot key = {leaf, 0};
  const struct fsq_grad_slot *s = bsearch(&key, t->grad_slots, t->n_params, sizeof key, slot_cmp);
  if (s == NULL) return FSQ_OK; /* not a trained parameter */
  return fsq_reducer_mark_ready(t->reducer, s->index);
}

fsq_status fsq_trainer_set_dist(fsq_trainer *t, fsq_dist *dist, size_t bucket_cap_bytes) {
  if (t->dist != NULL) return fsq_error(FSQ_ERR_INVALID, "trainer: distributed set twice");
  t->dist = dist;
  t->rank = fsq_dist_rank(dist);
  t->world = fsq_dist_size(dist);
  if (t->rank != 0) t->log_format = FSQ_LOG_FORMAT_NONE; /* only the master logs */
  if (t->world == 1) return FSQ_OK;
  if (!t->k->host)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "distributed training on %s: gradients are all-reduced over MPI from host "
                     "memory, and the NCCL path for device memory is not built yet; train on "
                     "one GPU, or on the CPU with --cpu", t->k->name);
  /* A 16-bit model's gradients reach f32 only after backward: its masters
   * are summed then, in one all-reduce (trainer_mixed.c), not in buckets. */
  if (t->master) return fsq_trainer_mixed_set_world(t);
  /* Buckets in the order backward finishes gradients: roughly the reverse
   * of the parameters' creation order (the output layers first). */
  size_t n = t->n_params;
  fsq_grad_buffer *rev = malloc((n ? n : 1) * sizeof *rev);
  t->grad_slots = malloc((n ? n : 1) * sizeof *t->grad_slots);
  if (rev == NULL || t->grad_slots == NULL) {
    free(rev);
    return fsq_error(FSQ_ERR_NOMEM, "trainer: out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    rev[i] = t->grads[n - 1 - i];
    t->grad_slots[i] = (struct fsq_grad_slot){fsq_params_at(t->params, n - 1 - i), i};
  }
  qsort(t->grad_slots, n, sizeof *t->grad_slots, slot_cmp);
  fsq_status st = fsq_reducer_create(dist, rev, n, bucket_cap_bytes, &t->reducer);
  free(rev);
  if (st != FSQ_OK) return st;
  fsq_ctx_set_grad_ready_hook(t->ctx, on_grad_ready, t);
  return FSQ_OK;
}

void fsq_trainer_dist_sub_batch(fsq_trainer *t, int last) {
  if (t->reducer != NULL) fsq_reducer_set_sync(t->reducer, last);
}

fsq_status fsq_trainer_sum_log(fsq_trainer *t, fsq_criterion_log *log) {
  if (t->world == 1) return FSQ_OK;
  double v[7] = {log->loss, log->nll_loss, log->ntokens, log->nsentences,
                 log->sample_size, log->n_correct, log->total};
  fsq_status st = fsq_dist_allreduce_f64(t->dist, v, 7);
  if (st != FSQ_OK) return st;
  *log = (fsq_criterion_log){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
  return FSQ_OK;
}

/* After the last sub-batch: the hook has posted the buckets backward
 * finished; what it never reached (a filler batch, a parameter off the
 * loss path) is marked now, then every bucket is waited for. */
fsq_status fsq_trainer_dist_sync(fsq_trainer *t, fsq_criterion_log *log) {
  double since = fsq_time_now();
  fsq_status st = FSQ_OK;
  if (t->reducer != NULL) { /* else a 16-bit model: its step sums the masters */
    fsq_reducer_set_sync(t->reducer, 1);
    t->posted_in_backward += fsq_reducer_buckets_posted(t->reducer);
    st = fsq_reducer_mark_rest(t->reducer);
    if (st == FSQ_OK) st = fsq_reducer_wait(t->reducer, 0);
  }
  if (st == FSQ_OK) st = fsq_trainer_sum_log(t, log);
  t->comm_wait_s += fsq_time_now() - since;
  return st;
}

/* fairseq's _check_grad_norms: the norm of the summed gradients must be the
 * same on every rank; a NaN or inf on any rank is seen by all, so every
 * rank stops together. */
fsq_status fsq_trainer_dist_check_gnorm(fsq_trainer *t, double *gnorm) {
  if (t->world == 1) return FSQ_OK;
  double since = fsq_time_now(), sum = 0;
  int finite = 0;
  fsq_status st = fsq_dist_sum_finite(t->dist, *gnorm, &sum, &finite);
  t->comm_wait_s += fsq_time_now() - since;
  if (st != FSQ_OK) return st;
  if (!finite) {
    if (isfinite(*gnorm)) *gnorm = sum;
    return FSQ_OK;
  }
  double mean = sum / t->world;
  if (fabs(*gnorm - mean) / (mean + 1e-6) > 1e-6)
    return fsq_error(FSQ_ERR_INTERNAL,
                     "Fatal error: gradients are inconsistent between workers (rank %d: gradient "
                     "norm %.9g, mean over %d ranks %.9g) at update %lld",
                     t->rank, *gnorm, t->world, mean, (long long)t->num_updates + 1);
  return FSQ_OK;
}

fsq_trainer_comm_stats fsq_trainer_get_comm_stats(const fsq_trainer *t) {
  fsq_trainer_comm_stats s = {.world = t->world, .update_s = t->update_s,
                              .comm_wait_s = t->comm_wait_s};
  if (t->reducer != NULL) {
    fsq_reducer_stats r = fsq_reducer_get_stats(t->reducer);
    s.buckets = r.buckets;
    s.synced_updates = r.steps;
    s.posted_during_backward = t->posted_in_backward;
  } else if (t->world > 1) { /* a 16-bit model: one flat sum after backward */
    s.buckets = 1;
    s.synced_updates = t->flat_syncs;
  }
  return s;
}
