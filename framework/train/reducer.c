/* reducer.c: gradient buckets summed across ranks while backward runs. The
 * trainer marks each gradient final as backward produces it; a bucket whose
 * gradients are all final is posted to fsq_dist's helper thread at once
 * (MPI_Iallreduce), so communication overlaps the rest of backward. */
#define _GNU_SOURCE
#include "train/distributed_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  size_t first, count; /* gradients [first, first + count) */
  size_t numel;
  float *base;         /* in place: grads[first].data; else a slice of pack */
  int in_place;
  size_t ready;        /* gradients marked this step */
  fsq_reducer *owner;
  fsq_dist_op op;
} bucket;

struct fsq_reducer {
  fsq_dist *dist;
  fsq_grad_buffer *grads; /* [n], a copy of the caller's table */
  size_t n;
  size_t *bucket_of;      /* [n] */
  unsigned char *marked;  /* [n] */
  bucket *buckets;        /* [nb] */
  size_t nb;
  float *pack;            /* storage of the buckets not reduced in place */
  size_t next_start;      /* buckets [0, next_start) are posted this step */
  int sync;
  fsq_reducer_stats stats;
};

static void unpack_bucket(fsq_dist_op *op) {
  bucket *b = op->ctx;
  const float *src = b->base;
  for (size_t j = b->first; j < b->first + b->count; j++) {
    fsq_grad_buffer *g = &b->owner->grads[j];
    memcpy(g->data, src, g->numel * sizeof(float));
    src += g->numel;
  }
}

static void pack_bucket(bucket *b) {
  float *dst = b->base;
  for (size_t j = b->first; j < b->first + b->count; j++) {
    const fsq_grad_buffer *g = &b->owner->grads[j];
    memcpy(dst, g->data, g->numel * sizeof(float));
    dst += g->numel;
  }
}

/* Splits the gradients into buckets of at most cap bytes (one gradient
 * larger than cap alone); returns the number of buckets, filling bucket_of. */
static size_t assign_buckets(fsq_reducer *r, size_t cap, bucket *out) {
  size_t nb = 0, bytes = 0;
  for (size_t i = 0; i < r->n; i++) {
    size_t gb = r->grads[i].numel * sizeof(float);
    if (i == 0 || (bytes > 0 && bytes + gb > cap)) {
      if (out != NULL) out[nb] = (bucket){.first = i};
      nb++;
      bytes = 0;
    }
    bytes += gb;
    if (out != NULL) {
      out[nb - 1].count++;
      out[nb - 1].numel += r->grads[i].numel;
      r->bucket_of[i] = nb - 1;
    }
  }
  return nb;
}

static int contiguous(const fsq_reducer *r, const bucket *b) {
  for (size_t j = b->first; j + 1 < b->first + b->count; j++)
    if (r->grads[j].data + r->grads[j].numel != r->grads[j + 1].data) return 0;
  return 1;
}

static fsq_status layout_buckets(fsq_reducer *r, size_t cap) {
  r->nb = assign_buckets(r, cap, NULL);
  r->buckets = calloc(r->nb ? r->nb : 1, sizeof *r->buckets);
  if (r->buckets == NULL) return fsq_error(FSQ_ERR_NOMEM, "reducer: out of memory");
  assign_buckets(r, cap, r->buckets);
  size_t pack_numel = 0;
  for (size_t k = 0; k < r->nb; k++) {
    bucket *b = &r->buckets[k];
    b->owner = r;
    b->in_place = contiguous(r, b);
    if (!b->in_place) pack_numel += b->numel;
  }
  if (pack_numel > 0 && (r->pack = malloc(pack_numel * sizeof(float))) == NULL)
    return fsq_error(FSQ_ERR_NOMEM, "reducer: out of memory for %zu packed gradient values",
                     pack_numel);
  float *slot = r->pack;
  for (size_t k = 0; k < r->nb; k++) {
    bucket *b = &r->buckets[k];
    if (b->in_place) {
      b->base = r->grads[b->first].data;
    } else {
      b->base = slot;
      slot += b->numel;
    }
    b->op = (fsq_dist_op){.kind = DIST_OP_ALLREDUCE, .dtype = DIST_F32, .buf = b->base,
                          .count = b->numel, .what = "gradient bucket",
                          .on_done = b->in_place ? NULL : unpack_bucket, .ctx = b};
  }
  return FSQ_OK;
}

fsq_status fsq_reducer_create(fsq_dist *dist, const fsq_grad_buffer *grads, size_t n,
                              size_t bucket_cap_bytes, fsq_reducer **out) {
  *out = NULL;
  if (bucket_cap_bytes == 0) return fsq_error(FSQ_ERR_INVALID, "reducer: bucket cap must be > 0");
  fsq_reducer *r = calloc(1, sizeof *r);
  if (r == NULL) return fsq_error(FSQ_ERR_NOMEM, "reducer: out of memory");
  r->dist = dist;
  r->n = n;
  r->sync = 1;
  r->grads = malloc((n ? n : 1) * sizeof *r->grads);
  r->bucket_of = malloc((n ? n : 1) * sizeof *r->bucket_of);
  r->marked = calloc(n ? n : 1, 1);
  if (r->grads == NULL || r->bucket_of == NULL || r->marked == NULL) {
    fsq_reducer_destroy(r);
    return fsq_error(FSQ_ERR_NOMEM, "reducer: out of memory for %zu gradients", n);
  }
  for (size_t i = 0; i < n; i++) {
    if (grads[i].data == NULL && grads[i].numel > 0) {
      fsq_reducer_destroy(r);
      return fsq_error(FSQ_ERR_INVALID, "reducer: gradient %zu has no data", i);
    }
    r->grads[i] = grads[i];
  }
  fsq_status st = layout_buckets(r, bucket_cap_bytes);
  if (st != FSQ_OK) {
    fsq_reducer_destroy(r);
    return st;
  }
  r->stats.buckets = r->nb;
  *out = r;
  return FSQ_OK;
}

void fsq_reducer_destroy(fsq_reducer *r) {
  if (r == NULL) return;
  free(r->grads);
  free(r->bucket_of);
  free(r->marked);
  free(r->buckets);
  free(r->pack);
  free(r);
}

size_t fsq_reducer_num_buckets(const fsq_reducer *r) { return r->nb; }
size_t fsq_reducer_bucket_of(const fsq_reducer *r, size_t i) { return r->bucket_of[i]; }
int fsq_reducer_bucket_in_place(const fsq_reducer *r, size_t k) { return r->buckets[k].in_place; }
void fsq_reducer_set_sync(fsq_reducer *r, int sync) { r->sync = sync != 0; }

/* Posts every bucket that is complete and follows only posted buckets, so
 * all ranks start their reductions in the same order. */
static fsq_status start_ready_buckets(fsq_reducer *r) {
  while (r->next_start < r->nb) {
    bucket *b = &r->buckets[r->next_start];
    if (b->ready < b->count) break;
    r->next_start++;
    if (r->dist->mpi == NULL) { /* size 1: the sum is the gradient itself */
      atomic_store(&b->op.state, DIST_OP_DONE);
      continue;
    }
    if (!b->in_place) pack_bucket(b);
    fsq_status st = dist_post(r->dist, &b->op);
    if (st != FSQ_OK) return st;
  }
  return FSQ_OK;
}

fsq_status fsq_reducer_mark_ready(fsq_reducer *r, size_t i) {
  if (!r->sync) return FSQ_OK;
  if (i >= r->n) return fsq_error(FSQ_ERR_INVALID, "reducer: gradient %zu of %zu", i, r->n);
  if (r->marked[i])
    return fsq_error(FSQ_ERR_INVALID, "reducer: gradient %zu marked ready twice in one step", i);
  r->marked[i] = 1;
  r->buckets[r->bucket_of[i]].ready++;
  return start_ready_buckets(r);
}

fsq_status fsq_reducer_mark_rest(fsq_reducer *r) {
  if (!r->sync) return FSQ_OK;
  for (size_t i = 0; i < r->n; i++) {
    if (r->marked[i]) continue;
    r->marked[i] = 1;
    r->buckets[r->bucket_of[i]].ready++;
  }
  return start_ready_buckets(r);
}

static size_t count_state(const fsq_reducer *r, int at_least) {
  size_t c = 0;
  for (size_t k = 0; k < r->nb; k++) c += atomic_load(&r->buckets[k].op.state) >= at_least;
  return c;
}

size_t fsq_reducer_buckets_started(const fsq_reducer *r) {
  return count_state(r, DIST_OP_STARTED);
}

size_t fsq_reducer_buckets_posted(const fsq_reducer *r) { return r->next_start; }

size_t fsq_reducer_buckets_completed(const fsq_reducer *r) { return count_state(r, DIST_OP_DONE); }

fsq_reducer_stats fsq_reducer_get_stats(const fsq_reducer *r) { return r->stats; }

fsq_status fsq_reducer_wait(fsq_reducer *r, double timeout_s) {
  if (!r->sync) return FSQ_OK;
  fsq_status st = fsq_dist_check(r->dist);
  if (st != FSQ_OK) return st;
  if (r->next_start < r->nb) {
    size_t i = 0;
    while (i < r->n && r->marked[i]) i++;
    return fsq_error(FSQ_ERR_INVALID, "reducer: gradient %zu (bucket %zu) was never marked ready",
                     i, r->bucket_of[i]);
  }
  r->stats.started_before_wait += fsq_reducer_buckets_started(r);
  r->stats.completed_before_wait += fsq_reducer_buckets_completed(r);
  double since = fsq_time_now();
  double limit = timeout_s > 0 ? timeout_s : r->dist->collective_timeout;
  for (size_t k = 0; k < r->nb; k++) {
    st = dist_wait_op(r->dist, &r->buckets[k].op, since, limit);
    if (st != FSQ_OK) return st;
  }
  for (size_t k = 0; k < r->nb; k++) {
    r->buckets[k].ready = 0;
    atomic_store(&r->buckets[k].op.state, DIST_OP_IDLE);
  }
  memset(r->marked, 0, r->n);
  r->next_start = 0;
  r->stats.steps++;
  return FSQ_OK;
}
