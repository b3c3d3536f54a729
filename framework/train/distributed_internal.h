/* distributed_internal.h: what distributed.c, distributed_mpi.c and
 * reducer.c share. An operation (fsq_dist_op) is posted by the caller's
 * thread and started, progressed and completed by the helper thread, which
 * alone calls MPI. */
#ifndef FSQ_DISTRIBUTED_INTERNAL_H
#define FSQ_DISTRIBUTED_INTERNAL_H

#include "config.h"

#include <pthread.h>
#include <stdatomic.h>

#include "train/fsq_distributed.h"

#ifdef FSQ_HAVE_MPI
#include <mpi.h>
#endif

typedef enum dist_op_kind { DIST_OP_ALLREDUCE, DIST_OP_BCAST, DIST_OP_BARRIER } dist_op_kind;
typedef enum dist_dtype { DIST_F32, DIST_F64, DIST_BYTE } dist_dtype;
enum { DIST_OP_IDLE = 0, DIST_OP_QUEUED, DIST_OP_STARTED, DIST_OP_DONE };

typedef struct fsq_dist_op {
  dist_op_kind kind;
  dist_dtype dtype;
  void *buf; /* [count] of dtype; in place */
  size_t count;
  int root;
  const char *what; /* "all-reduce", "broadcast", "barrier", "gradient bucket" */
  /* Runs on the helper thread once the sum has arrived (unpacking). */
  void (*on_done)(struct fsq_dist_op *op);
  void *ctx;
  uint64_t seq;      /* this rank's count of posted operations, 1-based */
  _Atomic int state; /* DIST_OP_* */
  struct fsq_dist_op *next;
#ifdef FSQ_HAVE_MPI
  MPI_Request req;
#endif
} fsq_dist_op;

typedef struct dist_mpi dist_mpi; /* distributed_mpi.c */

struct fsq_dist {
  int rank, size, local_rank, local_size;
  int thread_level;
  double liveness_timeout;   /* seconds of heartbeat silence that mean a peer is lost */
  double collective_timeout; /* <= 0: wait forever */
  int poll_us;
  dist_mpi *mpi; /* NULL for a world of size 1 without MPI */
  void *nccl;    /* distributed_nccl.c, after fsq_dist_nccl_init */

  pthread_mutex_t lock;
  pthread_cond_t work_cv; /* helper: new work or stop */
  pthread_cond_t done_cv; /* callers: an operation finished or a failure */
  fsq_dist_op *pending_head, *pending_tail; /* posted, not yet started */
  _Atomic uint64_t posted_seq;
  _Atomic int failed;
  char failure[512]; /* written once by the helper before failed is set */
  void (*failure_handler)(const char *message, void *ctx);
  void *failure_ctx;
};

/* Queues op (caller's thread). With size 1 it completes at once. */
fsq_status dist_post(fsq_dist *d, fsq_dist_op *op);
/* Waits for op to be done, at most timeout_s (<= 0: forever) from `since`;
 * on expiry names the ranks that have not posted operation op->seq. */
fsq_status dist_wait_op(fsq_dist *d, fsq_dist_op *op, double since, double timeout_s);
/* The failure as an fsq_error (FSQ_ERR_IO). */
fsq_status dist_failure_error(fsq_dist *d);
/* Records the failure (first one wins), wakes waiters, calls the handler. */
void dist_set_failed(fsq_dist *d, const char *message);

/* distributed_nccl.c: destroys the NCCL communicator, if any. */
void dist_nccl_destroy(fsq_dist *d);

/* distributed_mpi.c: helper thread lifecycle (only with FSQ_HAVE_MPI). */
fsq_status dist_mpi_start(fsq_dist *d);
fsq_status dist_mpi_stop(fsq_dist *d);
void dist_mpi_abort(fsq_dist *d, int code);
/* "1, 3" into buf: the peers whose last reported posted count is below seq. */
void dist_mpi_late_ranks(fsq_dist *d, uint64_t seq, char *buf, size_t size);
int dist_launched_by_mpirun(void);

#endif /* FSQ_DISTRIBUTED_INTERNAL_H */
