/* fsq_distributed.h: data-parallel communication. fsq_dist is the process's
 * place in the job (rank, world size, local rank) and its collectives;
 * fsq_reducer sums gradient buffers across ranks in buckets while backward
 * is still running.
 *
 * The API exists in every build. Built without MPI, or started without
 * mpirun, a program is a world of size 1 where every collective is the
 * identity and nothing touches MPI. Built with MPI and started by mpirun,
 * one helper thread owned by fsq_dist makes every MPI call (it initializes
 * MPI, starts and progresses requests, exchanges heartbeats), so the library
 * works with any thread level MPI provides from MPI_THREAD_FUNNELED up.
 *
 * Failures: a peer silent for longer than the heartbeat timeout (it died,
 * was stopped, or its node is gone), or a collective not joined by some rank
 * within the collective timeout, puts fsq_dist in a failed state: every call
 * then returns FSQ_ERR_IO with a message naming the rank(s). The library
 * never exits; the program decides (fsq_dist_abort ends the whole job). */
#ifndef FSQ_DISTRIBUTED_H
#define FSQ_DISTRIBUTED_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"
#include "train/fsq_grads.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fsq_dist fsq_dist;

typedef struct fsq_dist_options {
  /* fairseq's --heartbeat-timeout, in seconds. > 0: a peer silent that long
   * is declared lost, and a collective that some rank has not joined after
   * that long fails naming it. <= 0 (fairseq's default -1): collectives wait
   * as long as it takes (a rank may legitimately be busy, e.g. validating),
   * but a peer whose process is silent for FSQ_DIST_LIVENESS_DEFAULT seconds
   * is still declared lost, since a live process always sends heartbeats. */
  double heartbeat_timeout;
  /* Microseconds the helper thread sleeps between polls while requests are
   * outstanding (0: the default, 50). */
  int poll_us;
} fsq_dist_options;

#define FSQ_DIST_LIVENESS_DEFAULT 300.0

void fsq_dist_options_default(fsq_dist_options *opts);

/* Joins the job. Only one fsq_dist may exist in a process (MPI can be
 * initialized once). *out is owned by the caller: fsq_dist_finalize. */
fsq_status fsq_dist_init(const fsq_dist_options *opts, fsq_dist **out);
/* Leaves the job: a barrier, a last heartbeat to every peer, MPI_Finalize.
 * Frees dist. After a failure it neither waits nor calls MPI_Finalize (a
 * lost peer would never answer) and returns the failure: the program should
 * then fsq_dist_abort. */
fsq_status fsq_dist_finalize(fsq_dist *dist);
/* For programs only, after the library returned an error: ends every rank
 * of the job at once (MPI_Abort with code). Returns only when MPI is not in
 * use; the program then exits itself. The library never calls it. */
void fsq_dist_abort(fsq_dist *dist, int code);

int fsq_dist_rank(const fsq_dist *dist);
int fsq_dist_size(const fsq_dist *dist);
int fsq_dist_local_rank(const fsq_dist *dist); /* rank among this node's ranks: picks the GPU */
int fsq_dist_local_size(const fsq_dist *dist);
/* 1 when MPI is in use (size > 1 or started by mpirun). */
int fsq_dist_uses_mpi(const fsq_dist *dist);
/* The thread level MPI provided (MPI_THREAD_* value), -1 without MPI. */
int fsq_dist_thread_level(const fsq_dist *dist);

/* FSQ_OK while every peer is alive; else the failure (message names ranks). */
fsq_status fsq_dist_check(fsq_dist *dist);
/* Called once when a failure is detected, by the thread that detects it:
 * the helper thread for a lost peer (so a program can act even while its
 * main thread computes, e.g. print the message and fsq_dist_abort), the
 * waiting thread for a collective deadline. message is valid during the
 * call only. */
void fsq_dist_set_failure_handler(fsq_dist *dist, void (*handler)(const char *message, void *ctx),
                                  void *ctx);

/* Collectives: every rank calls them in the same order. */
fsq_status fsq_dist_barrier(fsq_dist *dist);
/* In-place sums across ranks. x: [n] */
fsq_status fsq_dist_allreduce_f32(fsq_dist *dist, float *x, size_t n);
fsq_status fsq_dist_allreduce_f64(fsq_dist *dist, double *x, size_t n);
/* buf: [bytes], root's copy lands on every rank. */
fsq_status fsq_dist_broadcast(fsq_dist *dist, void *buf, size_t bytes, int root);
/* Fails on every rank when buf: [bytes] is not the same on all ranks (e.g.
 * the resolved configuration); what names it in the message. */
fsq_status fsq_dist_check_same(fsq_dist *dist, const void *buf, size_t bytes, const char *what);
/* Sums value over ranks into *sum: a NaN or inf on any rank makes *sum
 * non-finite on every rank, so all ranks skip (or stop) together. */
fsq_status fsq_dist_sum_finite(fsq_dist *dist, double value, double *sum, int *all_finite);

/* ---- NCCL (GPU builds; minimal, untested across ranks) -------------------
 * Rank 0 makes NCCL's unique id, fsq_dist_broadcast hands it to every rank,
 * each rank selects `device` (< 0: its local rank) and joins the NCCL
 * communicator. Without CUDA: available() is 0, the rest FSQ_ERR_UNSUPPORTED
 * (synchronize is a no-op). Destroyed by fsq_dist_finalize. */
int fsq_dist_nccl_available(void);
fsq_status fsq_dist_nccl_init(fsq_dist *dist, int device);
/* In-place sum of x: [count] f32 on the device, enqueued on stream (a
 * cudaStream_t; NULL: the communicator's own non-blocking side stream). */
fsq_status fsq_dist_nccl_allreduce_f32(fsq_dist *dist, float *x, size_t count, void *stream);
/* Waits for the side stream. */
fsq_status fsq_dist_nccl_synchronize(fsq_dist *dist);

/* ---- gradient buckets ----------------------------------------------------
 * Created over the gradient buffers in the order backward makes them final.
 * Consecutive buffers fill a bucket up to bucket_cap bytes (fairseq's
 * --bucket-cap-mb, default 25 MB); a buffer larger than the cap is a bucket
 * of its own. A bucket whose buffers are contiguous in memory is
 * reduced in place; otherwise it is packed into a buffer allocated here.
 * Buckets start in index order on every rank (MPI requires collectives in
 * the same order): bucket k starts as soon as it and all before it are
 * ready. Nothing is allocated after create. */
typedef struct fsq_reducer fsq_reducer;

typedef struct fsq_reducer_stats {
  size_t buckets;
  size_t started_before_wait;   /* buckets already in flight when wait() began */
  size_t completed_before_wait; /* buckets already summed when wait() began */
  uint64_t steps;               /* completed wait() calls that synchronized */
} fsq_reducer_stats;

/* grads: [n] buffers, borrowed (they must outlive the reducer). */
fsq_status fsq_reducer_create(fsq_dist *dist, const fsq_grad_buffer *grads, size_t n,
                              size_t bucket_cap_bytes, fsq_reducer **out);
void fsq_reducer_destroy(fsq_reducer *r);

size_t fsq_reducer_num_buckets(const fsq_reducer *r);
size_t fsq_reducer_bucket_of(const fsq_reducer *r, size_t grad); /* bucket index */
int fsq_reducer_bucket_in_place(const fsq_reducer *r, size_t bucket);

/* --update-freq: with sync off (the sub-batches before the last one),
 * mark_ready does nothing and wait returns at once, so gradients only
 * accumulate locally. On by default. */
void fsq_reducer_set_sync(fsq_reducer *r, int sync);
/* Gradient i is final for this step: it must not change until wait().
 * mark_ready and wait are called from one thread (the trainer's). */
fsq_status fsq_reducer_mark_ready(fsq_reducer *r, size_t i);
/* Marks every gradient not yet marked this step (parameters backward never
 * reached, or a step whose gradients were final before any hook ran). */
fsq_status fsq_reducer_mark_rest(fsq_reducer *r);
/* Returns when every bucket is summed (and unpacked) on this rank; fails
 * when a buffer was never marked, a peer is lost, or after timeout_s
 * seconds (<= 0: the fsq_dist collective timeout) naming the late ranks.
 * Resets the reducer for the next step. */
fsq_status fsq_reducer_wait(fsq_reducer *r, double timeout_s);
/* Counters for tests and benchmarks: buckets started / completed since the
 * last wait (read without waiting). */
size_t fsq_reducer_buckets_posted(const fsq_reducer *r); /* handed to the helper thread */
size_t fsq_reducer_buckets_started(const fsq_reducer *r);
size_t fsq_reducer_buckets_completed(const fsq_reducer *r);
fsq_reducer_stats fsq_reducer_get_stats(const fsq_reducer *r);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_DISTRIBUTED_H */
