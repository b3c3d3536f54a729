/* distributed_mpi.c: the helper thread that alone calls MPI. It initializes
 * MPI (so even MPI_THREAD_FUNNELED suffices: it is the funnel), starts the
 * operations callers post, progresses them with MPI_Test so reductions run
 * while the caller computes, and exchanges heartbeats with every peer on a
 * communicator of their own, keeping a deadline per peer so that a lost
 * rank is named. */
#define _GNU_SOURCE
#include "train/distributed_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dist_launched_by_mpirun(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL ||
         getenv("PMI_RANK") != NULL || getenv("PMI_SIZE") != NULL;
}

#ifdef FSQ_HAVE_MPI

enum { HB_TAG = 7, HB_SEQ = 0, HB_BYE = 1 };

struct dist_mpi {
  pthread_t thread;
  int init_done; /* under d->lock */
  fsq_status init_status;
  char init_msg[400];
  int stop; /* under d->lock */
  MPI_Comm data, hb;
  double interval, next_send;
  int64_t (*sbuf)[2], (*rbuf)[2]; /* [size][2]: {posted seq, bye} */
  MPI_Request *sreq, *rreq;       /* [size] */
  double *last_heard;             /* [size] */
  _Atomic uint64_t *peer_seq;     /* [size]: peers' posted counts, read by callers */
  int *peer_bye;                  /* [size] */
  fsq_dist_op *active_head, *active_tail;
};

static void mpi_message(int code, char *buf, size_t size) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
  snprintf(buf, size, "%s", text);
}

static void fail_mpi(fsq_dist *d, const char *what, int code) {
  char text[MPI_MAX_ERROR_STRING], msg[512];
  mpi_message(code, text, sizeof text);
  snprintf(msg, sizeof msg, "MPI error in %s: %s", what, text);
  dist_set_failed(d, msg);
}

static int post_heartbeat_recv(dist_mpi *m, int p) {
  return MPI_Irecv(m->rbuf[p], 2, MPI_INT64_T, p, HB_TAG, m->hb, &m->rreq[p]);
}

/* Runs on the helper thread: MPI_Init_thread and the communicators. */
static fsq_status helper_init(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  int flag = 0, rc;
  MPI_Finalized(&flag);
  if (flag)
    return fsq_error(FSQ_ERR_INVALID, "distributed: MPI was finalized: a process joins the job once");
  MPI_Initialized(&flag);
  if (flag)
    return fsq_error(FSQ_ERR_INVALID, "distributed: MPI is already initialized in this process");
  rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &d->thread_level);
  if (rc != MPI_SUCCESS) return fsq_error(FSQ_ERR_IO, "distributed: MPI_Init_thread failed (%d)", rc);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  MPI_Comm local;
  if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local) !=
          MPI_SUCCESS ||
      MPI_Comm_dup(MPI_COMM_WORLD, &m->data) != MPI_SUCCESS ||
      MPI_Comm_dup(MPI_COMM_WORLD, &m->hb) != MPI_SUCCESS)
    return fsq_error(FSQ_ERR_IO, "distributed: rank %d: cannot create communicators", d->rank);
  MPI_Comm_rank(local, &d->local_rank);
  MPI_Comm_size(local, &d->local_size);
  MPI_Comm_free(&local);
  MPI_Comm_set_errhandler(m->data, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(m->hb, MPI_ERRORS_RETURN);
  size_t n = (size_t)d->size;
  m->sbuf = calloc(n, sizeof *m->sbuf);
  m->rbuf = calloc(n, sizeof *m->rbuf);
  m->sreq = malloc(n * sizeof *m->sreq);
  m->rreq = malloc(n * sizeof *m->rreq);
  m->last_heard = malloc(n * sizeof *m->last_heard);
  m->peer_seq = calloc(n, sizeof *m->peer_seq);
  m->peer_bye = calloc(n, sizeof *m->peer_bye);
  if (!m->sbuf || !m->rbuf || !m->sreq || !m->rreq || !m->last_heard || !m->peer_seq || !m->peer_bye)
    return fsq_error(FSQ_ERR_NOMEM, "distributed: out of memory for %d heartbeat slots", d->size);
  /* A heartbeat several times per timeout, at most one per second. */
  m->interval = d->liveness_timeout / 5.0;
  if (m->interval > 1.0) m->interval = 1.0;
  if (m->interval < 0.01) m->interval = 0.01;
  double now = fsq_time_now();
  m->next_send = now;
  for (int p = 0; p < d->size; p++) {
    m->sreq[p] = m->rreq[p] = MPI_REQUEST_NULL;
    m->last_heard[p] = now;
    if (p != d->rank && post_heartbeat_recv(m, p) != MPI_SUCCESS)
      return fsq_error(FSQ_ERR_IO, "distributed: rank %d: cannot post heartbeat receives", d->rank);
  }
  return FSQ_OK;
}

static MPI_Datatype mpi_type(dist_dtype t) {
  return t == DIST_F32 ? MPI_FLOAT : t == DIST_F64 ? MPI_DOUBLE : MPI_BYTE;
}

static void start_op(fsq_dist *d, fsq_dist_op *op) {
  dist_mpi *m = d->mpi;
  int rc;
  if (op->kind == DIST_OP_ALLREDUCE)
    rc = MPI_Iallreduce(MPI_IN_PLACE, op->buf, (int)op->count, mpi_type(op->dtype), MPI_SUM,
                        m->data, &op->req);
  else if (op->kind == DIST_OP_BCAST)
    rc = MPI_Ibcast(op->buf, (int)op->count, MPI_BYTE, op->root, m->data, &op->req);
  else
    rc = MPI_Ibarrier(m->data, &op->req);
  if (rc != MPI_SUCCESS) {
    fail_mpi(d, op->what, rc);
    return;
  }
  atomic_store(&op->state, DIST_OP_STARTED);
  op->next = NULL;
  if (m->active_tail != NULL)
    m->active_tail->next = op;
  else
    m->active_head = op;
  m->active_tail = op;
}

/* MPI_Test on every active operation; returns how many completed. */
static int progress_ops(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  fsq_dist_op *prev = NULL, *op = m->active_head;
  int completed = 0;
  while (op != NULL) {
    fsq_dist_op *next = op->next;
    int flag = 0;
    int rc = MPI_Test(&op->req, &flag, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      fail_mpi(d, op->what, rc);
      return completed;
    }
    if (flag) {
      if (prev != NULL)
        prev->next = next;
      else
        m->active_head = next;
      if (m->active_tail == op) m->active_tail = prev;
      if (op->on_done != NULL) op->on_done(op);
      atomic_store(&op->state, DIST_OP_DONE);
      completed++;
    } else {
      prev = op;
    }
    op = next;
  }
  return completed;
}

static void drain_heartbeats(fsq_dist *d, double now) {
  dist_mpi *m = d->mpi;
  for (int p = 0; p < d->size; p++) {
    while (m->rreq[p] != MPI_REQUEST_NULL) {
      int flag = 0;
      if (MPI_Test(&m->rreq[p], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag) break;
      m->last_heard[p] = now;
      atomic_store(&m->peer_seq[p], (uint64_t)m->rbuf[p][HB_SEQ]);
      if (m->rbuf[p][HB_BYE]) {
        m->peer_bye[p] = 1; /* its last message: nothing more to receive */
        break;
      }
      if (post_heartbeat_recv(m, p) != MPI_SUCCESS) break;
    }
  }
}

/* Sends {posted seq, bye} to every peer whose previous heartbeat has left. */
static void send_heartbeats(fsq_dist *d, int bye) {
  dist_mpi *m = d->mpi;
  for (int p = 0; p < d->size; p++) {
    if (p == d->rank) continue;
    int flag = 1;
    if (m->sreq[p] != MPI_REQUEST_NULL) MPI_Test(&m->sreq[p], &flag, MPI_STATUS_IGNORE);
    if (!flag) continue; /* a slow peer: do not queue more */
    m->sbuf[p][HB_SEQ] = (int64_t)atomic_load(&d->posted_seq);
    m->sbuf[p][HB_BYE] = bye;
    MPI_Isend(m->sbuf[p], 2, MPI_INT64_T, p, HB_TAG, m->hb, &m->sreq[p]);
  }
}

/* Fails naming every peer silent for longer than the liveness timeout. */
static void check_deadlines(fsq_dist *d, double now) {
  dist_mpi *m = d->mpi;
  char ranks[256] = "";
  size_t len = 0;
  int lost = 0;
  double silent = 0;
  for (int p = 0; p < d->size; p++) {
    if (p == d->rank || m->peer_bye[p] || now - m->last_heard[p] <= d->liveness_timeout) continue;
    if (now - m->last_heard[p] > silent) silent = now - m->last_heard[p];
    if (len < sizeof ranks - 16) len += (size_t)snprintf(ranks + len, sizeof ranks - len, "%s%d",
                                                         lost ? ", " : "", p);
    lost++;
  }
  if (!lost) return;
  char msg[512];
  snprintf(msg, sizeof msg,
           "lost rank%s %s: no heartbeat for %.1f s (limit %.1f s; the process died, was stopped, "
           "or its node is unreachable)",
           lost > 1 ? "s" : "", ranks, silent, d->liveness_timeout);
  dist_set_failed(d, msg);
}

static void heartbeat_step(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  double now = fsq_time_now();
  drain_heartbeats(d, now);
  if (now >= m->next_send) {
    send_heartbeats(d, 0);
    m->next_send = now + m->interval;
  }
  check_deadlines(d, now);
}

/* The last heartbeat says bye; then every peer's bye is received, so no
 * message is left unmatched at MPI_Finalize. */
static void say_goodbye(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  double start = fsq_time_now();
  for (int p = 0; p < d->size; p++)
    if (m->sreq[p] != MPI_REQUEST_NULL) MPI_Wait(&m->sreq[p], MPI_STATUS_IGNORE);
  send_heartbeats(d, 1);
  for (;;) {
    double now = fsq_time_now();
    drain_heartbeats(d, now);
    int waiting = 0;
    for (int p = 0; p < d->size; p++) waiting += p != d->rank && !m->peer_bye[p];
    if (!waiting) break;
    check_deadlines(d, now);
    if (atomic_load(&d->failed) || now - start > d->liveness_timeout) return;
    struct timespec ts = {0, 1000L * d->poll_us};
    nanosleep(&ts, NULL);
  }
  for (int p = 0; p < d->size; p++)
    if (m->sreq[p] != MPI_REQUEST_NULL) MPI_Wait(&m->sreq[p], MPI_STATUS_IGNORE);
}

static void cond_wait_seconds(fsq_dist *d, double seconds) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long ns = (long)(seconds * 1e9);
  ts.tv_sec += ns / 1000000000L;
  ts.tv_nsec += ns % 1000000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&d->work_cv, &d->lock, &ts);
}

static void helper_loop(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  pthread_mutex_lock(&d->lock);
  while (!m->stop) {
    fsq_dist_op *take = d->pending_head;
    d->pending_head = d->pending_tail = NULL;
    pthread_mutex_unlock(&d->lock);
    int failed = atomic_load(&d->failed);
    int completed = 0;
    if (!failed) {
      for (fsq_dist_op *op = take, *next; op != NULL; op = next) {
        next = op->next;
        start_op(d, op);
      }
      completed = progress_ops(d);
      heartbeat_step(d);
    }
    pthread_mutex_lock(&d->lock);
    if (completed) pthread_cond_broadcast(&d->done_cv);
    if (d->pending_head != NULL || m->stop) continue;
    if (m->active_head != NULL && !failed) {
      pthread_mutex_unlock(&d->lock);
      struct timespec ts = {0, 1000L * d->poll_us};
      nanosleep(&ts, NULL);
      pthread_mutex_lock(&d->lock);
    } else {
      double wait = failed ? 1.0 : m->next_send - fsq_time_now();
      if (wait > 0) cond_wait_seconds(d, wait);
    }
  }
  pthread_mutex_unlock(&d->lock);
}

static void *helper_main(void *arg) {
  fsq_dist *d = arg;
  dist_mpi *m = d->mpi;
  fsq_status st = helper_init(d);
  pthread_mutex_lock(&d->lock);
  m->init_status = st;
  if (st != FSQ_OK) snprintf(m->init_msg, sizeof m->init_msg, "%s", fsq_error_message());
  m->init_done = 1;
  pthread_cond_broadcast(&d->done_cv);
  pthread_mutex_unlock(&d->lock);
  if (st != FSQ_OK) return NULL;
  helper_loop(d);
  /* After a failure a peer may never answer: MPI_Finalize could block, so
   * the program is expected to fsq_dist_abort instead. */
  if (!atomic_load(&d->failed)) say_goodbye(d);
  if (!atomic_load(&d->failed)) {
    MPI_Comm_free(&m->data);
    MPI_Comm_free(&m->hb);
    MPI_Finalize();
  }
  return NULL;
}

static void free_mpi(dist_mpi *m) {
  free(m->sbuf);
  free(m->rbuf);
  free(m->sreq);
  free(m->rreq);
  free(m->last_heard);
  free((void *)m->peer_seq);
  free(m->peer_bye);
  free(m);
}

fsq_status dist_mpi_start(fsq_dist *d) {
  dist_mpi *m = calloc(1, sizeof *m);
  if (m == NULL) return fsq_error(FSQ_ERR_NOMEM, "distributed: out of memory");
  d->mpi = m;
  if (pthread_create(&m->thread, NULL, helper_main, d) != 0) {
    d->mpi = NULL;
    free(m);
    return fsq_error(FSQ_ERR_INTERNAL, "distributed: cannot start the MPI helper thread");
  }
  pthread_mutex_lock(&d->lock);
  while (!m->init_done) pthread_cond_wait(&d->done_cv, &d->lock);
  pthread_mutex_unlock(&d->lock);
  if (m->init_status != FSQ_OK) {
    pthread_join(m->thread, NULL);
    fsq_status st = fsq_error(m->init_status, "%s", m->init_msg);
    d->mpi = NULL;
    free_mpi(m);
    return st;
  }
  return FSQ_OK;
}

fsq_status dist_mpi_stop(fsq_dist *d) {
  dist_mpi *m = d->mpi;
  pthread_mutex_lock(&d->lock);
  m->stop = 1;
  pthread_cond_signal(&d->work_cv);
  pthread_mutex_unlock(&d->lock);
  pthread_join(m->thread, NULL);
  fsq_status st = atomic_load(&d->failed) ? dist_failure_error(d) : FSQ_OK;
  d->mpi = NULL;
  free_mpi(m);
  return st;
}

void dist_mpi_abort(fsq_dist *d, int code) {
  (void)d;
  MPI_Abort(MPI_COMM_WORLD, code);
}

void dist_mpi_late_ranks(fsq_dist *d, uint64_t seq, char *buf, size_t size) {
  dist_mpi *m = d->mpi;
  size_t len = 0;
  buf[0] = '\0';
  if (m == NULL) return;
  for (int p = 0; p < d->size && len + 16 < size; p++) {
    if (p == d->rank) continue;
    uint64_t at = atomic_load(&m->peer_seq[p]);
    if (at < seq)
      len += (size_t)snprintf(buf + len, size - len, "%s%d (at #%llu)", len ? ", " : "", p,
                              (unsigned long long)at);
  }
}

#endif /* FSQ_HAVE_MPI */
