/* distributed.c: fsq_dist's public face: joining and leaving the job, the
 * blocking collectives (posted to the helper thread and waited for with a
 * deadline), and the world of size 1 where every collective is the identity. */
#define _GNU_SOURCE
#include "train/distributed_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fsq_dist_options_default(fsq_dist_options *opts) {
  opts->heartbeat_timeout = -1.0;
  opts->poll_us = 50;
}

fsq_status fsq_dist_init(const fsq_dist_options *opts, fsq_dist **out) {
  *out = NULL;
  fsq_dist_options o;
  fsq_dist_options_default(&o);
  if (opts != NULL) o = *opts;
  fsq_dist *d = calloc(1, sizeof *d);
  if (d == NULL) return fsq_error(FSQ_ERR_NOMEM, "distributed: out of memory");
  d->size = d->local_size = 1;
  d->thread_level = -1;
  d->liveness_timeout = o.heartbeat_timeout > 0 ? o.heartbeat_timeout : FSQ_DIST_LIVENESS_DEFAULT;
  d->collective_timeout = o.heartbeat_timeout > 0 ? o.heartbeat_timeout : 0.0;
  d->poll_us = o.poll_us > 0 ? o.poll_us : 50;
  pthread_mutex_init(&d->lock, NULL);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&d->work_cv, &attr);
  pthread_cond_init(&d->done_cv, &attr);
  pthread_condattr_destroy(&attr);
#ifdef FSQ_HAVE_MPI
  if (dist_launched_by_mpirun()) {
    fsq_status st = dist_mpi_start(d);
    if (st != FSQ_OK) {
      pthread_cond_destroy(&d->work_cv);
      pthread_cond_destroy(&d->done_cv);
      pthread_mutex_destroy(&d->lock);
      free(d);
      return st;
    }
  }
#endif
  *out = d;
  return FSQ_OK;
}

fsq_status fsq_dist_finalize(fsq_dist *d) {
  if (d == NULL) return FSQ_OK;
  fsq_status st = FSQ_OK;
  dist_nccl_destroy(d);
#ifdef FSQ_HAVE_MPI
  if (d->mpi != NULL) {
    if (!atomic_load(&d->failed)) st = fsq_dist_barrier(d);
    fsq_status st2 = dist_mpi_stop(d);
    if (st == FSQ_OK) st = st2;
  }
#endif
  pthread_cond_destroy(&d->work_cv);
  pthread_cond_destroy(&d->done_cv);
  pthread_mutex_destroy(&d->lock);
  free(d);
  return st;
}

void fsq_dist_abort(fsq_dist *d, int code) {
#ifdef FSQ_HAVE_MPI
  if (d != NULL && d->mpi != NULL) dist_mpi_abort(d, code);
#endif
  (void)d;
  (void)code;
}

int fsq_dist_rank(const fsq_dist *d) { return d->rank; }
int fsq_dist_size(const fsq_dist *d) { return d->size; }
int fsq_dist_local_rank(const fsq_dist *d) { return d->local_rank; }
int fsq_dist_local_size(const fsq_dist *d) { return d->local_size; }
int fsq_dist_uses_mpi(const fsq_dist *d) { return d->mpi != NULL; }
int fsq_dist_thread_level(const fsq_dist *d) { return d->thread_level; }

void fsq_dist_set_failure_handler(fsq_dist *d, void (*handler)(const char *, void *), void *ctx) {
  pthread_mutex_lock(&d->lock);
  d->failure_handler = handler;
  d->failure_ctx = ctx;
  pthread_mutex_unlock(&d->lock);
}

fsq_status dist_failure_error(fsq_dist *d) {
  return fsq_error(FSQ_ERR_IO, "distributed: rank %d: %s", d->rank, d->failure);
}

fsq_status fsq_dist_check(fsq_dist *d) {
  return atomic_load(&d->failed) ? dist_failure_error(d) : FSQ_OK;
}

void dist_set_failed(fsq_dist *d, const char *message) {
  void (*handler)(const char *, void *) = NULL;
  void *ctx = NULL;
  pthread_mutex_lock(&d->lock);
  int first = !atomic_load(&d->failed);
  if (first) {
    snprintf(d->failure, sizeof d->failure, "%s", message);
    atomic_store(&d->failed, 1);
    handler = d->failure_handler;
    ctx = d->failure_ctx;
  }
  pthread_cond_broadcast(&d->done_cv);
  pthread_mutex_unlock(&d->lock);
  if (first && handler != NULL) handler(d->failure, ctx);
}

fsq_status dist_post(fsq_dist *d, fsq_dist_op *op) {
  if (atomic_load(&d->failed)) return dist_failure_error(d);
  if (op->count > INT_MAX)
    return fsq_error(FSQ_ERR_UNSUPPORTED, "distributed: %s of %zu elements exceeds MPI's int count",
                     op->what, op->count);
  op->next = NULL;
  op->seq = atomic_fetch_add(&d->posted_seq, 1) + 1;
  if (d->mpi == NULL) { /* size 1: the sum over one rank is the buffer itself */
    atomic_store(&op->state, DIST_OP_STARTED);
    if (op->on_done != NULL) op->on_done(op);
    atomic_store(&op->state, DIST_OP_DONE);
    return FSQ_OK;
  }
  atomic_store(&op->state, DIST_OP_QUEUED);
  pthread_mutex_lock(&d->lock);
  if (d->pending_tail != NULL)
    d->pending_tail->next = op;
  else
    d->pending_head = op;
  d->pending_tail = op;
  pthread_cond_signal(&d->work_cv);
  pthread_mutex_unlock(&d->lock);
  return FSQ_OK;
}

static struct timespec deadline_ts(double seconds_from_now) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  double whole = floor(seconds_from_now);
  ts.tv_sec += (time_t)whole;
  ts.tv_nsec += (long)((seconds_from_now - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

fsq_status dist_wait_op(fsq_dist *d, fsq_dist_op *op, double since, double timeout_s) {
  if (atomic_load(&op->state) == DIST_OP_DONE) return FSQ_OK;
  pthread_mutex_lock(&d->lock);
  while (atomic_load(&op->state) != DIST_OP_DONE && !atomic_load(&d->failed)) {
    if (timeout_s <= 0) {
      pthread_cond_wait(&d->done_cv, &d->lock);
      continue;
    }
    double left = since + timeout_s - fsq_time_now();
    if (left <= 0) break;
    struct timespec ts = deadline_ts(left < 1.0 ? left : 1.0);
    pthread_cond_timedwait(&d->done_cv, &d->lock, &ts);
  }
  pthread_mutex_unlock(&d->lock);
  if (atomic_load(&op->state) == DIST_OP_DONE) return FSQ_OK;
  if (!atomic_load(&d->failed)) {
    char late[256] = "";
    char msg[512];
#ifdef FSQ_HAVE_MPI
    dist_mpi_late_ranks(d, op->seq, late, sizeof late);
#endif
    if (late[0] != '\0')
      snprintf(msg, sizeof msg, "%s #%llu not joined within %.1f s by rank(s) %s (hung or stuck)",
               op->what, (unsigned long long)op->seq, timeout_s, late);
    else
      snprintf(msg, sizeof msg, "%s #%llu not finished within %.1f s (every rank joined it)",
               op->what, (unsigned long long)op->seq, timeout_s);
    dist_set_failed(d, msg);
  }
  return dist_failure_error(d);
}

static fsq_status run_op(fsq_dist *d, fsq_dist_op *op) {
  double since = fsq_time_now();
  fsq_status st = dist_post(d, op);
  if (st != FSQ_OK) return st;
  return dist_wait_op(d, op, since, d->collective_timeout);
}

static fsq_status allreduce(fsq_dist *d, void *x, size_t n, dist_dtype dtype) {
  fsq_dist_op op = {.kind = DIST_OP_ALLREDUCE, .dtype = dtype, .buf = x, .count = n,
                    .what = "all-reduce"};
  return run_op(d, &op);
}

fsq_status fsq_dist_allreduce_f32(fsq_dist *d, float *x, size_t n) {
  return allreduce(d, x, n, DIST_F32);
}

fsq_status fsq_dist_allreduce_f64(fsq_dist *d, double *x, size_t n) {
  return allreduce(d, x, n, DIST_F64);
}

fsq_status fsq_dist_barrier(fsq_dist *d) {
  fsq_dist_op op = {.kind = DIST_OP_BARRIER, .what = "barrier"};
  return run_op(d, &op);
}

fsq_status fsq_dist_broadcast(fsq_dist *d, void *buf, size_t bytes, int root) {
  if (root < 0 || root >= d->size)
    return fsq_error(FSQ_ERR_INVALID, "distributed: broadcast root %d outside [0, %d)", root,
                     d->size);
  fsq_dist_op op = {.kind = DIST_OP_BCAST, .dtype = DIST_BYTE, .buf = buf, .count = bytes,
                    .root = root, .what = "broadcast"};
  return run_op(d, &op);
}

/* FNV-1a: equal bytes give equal hashes; a difference is caught with
 * probability 1 - 2^-64, enough to tell a user their flags differ. */
static uint64_t fnv1a(const void *buf, size_t bytes) {
  const unsigned char *p = buf;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

fsq_status fsq_dist_check_same(fsq_dist *d, const void *buf, size_t bytes, const char *what) {
  uint64_t mine[2] = {fnv1a(buf, bytes), bytes};
  uint64_t root[2] = {mine[0], mine[1]};
  fsq_status st = fsq_dist_broadcast(d, root, sizeof root, 0);
  if (st != FSQ_OK) return st;
  double differ[2] = {memcmp(mine, root, sizeof mine) != 0, 1.0};
  st = fsq_dist_allreduce_f64(d, differ, 2);
  if (st != FSQ_OK) return st;
  if (differ[0] > 0)
    return fsq_error(FSQ_ERR_INVALID,
                     "distributed: %s differs from rank 0's on %.0f of %.0f ranks (rank %d: %s)",
                     what, differ[0], differ[1], d->rank,
                     memcmp(mine, root, sizeof mine) != 0 ? "differs" : "same");
  return FSQ_OK;
}

fsq_status fsq_dist_sum_finite(fsq_dist *d, double value, double *sum, int *all_finite) {
  double x = value;
  fsq_status st = fsq_dist_allreduce_f64(d, &x, 1);
  if (st != FSQ_OK) return st;
  *sum = x;
  *all_finite = isfinite(x) != 0;
  return FSQ_OK;
}
