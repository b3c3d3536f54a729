/* distributed_nccl.c: NCCL's communicator, bootstrapped over fsq_dist
 * (rank 0's unique id is broadcast to every rank), and an in-place sum of a
 * device buffer on a stream. Built only with CUDA; without it every call
 * says so. MINIMAL AND UNTESTED ACROSS RANKS: no GPU was available where it
 * was written; tests/unit/test_distributed_nccl.c checks the one-rank path
 * wherever a GPU is present and skips elsewhere. The bucketed reducer still
 * reduces host buffers over MPI; docs/distributed.md describes how buckets
 * will use this (events, a side stream). */
#define _GNU_SOURCE
#include "train/distributed_internal.h"

#include <stdlib.h>

#ifdef FSQ_HAVE_CUDA
#include <cuda_runtime.h>
/* nccl.h declares ncclGroupStart() and others without (void). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <nccl.h>
#pragma GCC diagnostic pop

struct dist_nccl {
  ncclComm_t comm;
  cudaStream_t stream; /* the side stream reductions run on by default */
  int device;
};

static fsq_status cuda_error(cudaError_t err, const char *call) {
  return fsq_error(FSQ_ERR_IO, "distributed: NCCL setup: %s: %s", call, cudaGetErrorString(err));
}

static fsq_status nccl_error(ncclResult_t res, const char *call) {
  return fsq_error(FSQ_ERR_IO, "distributed: %s: %s", call, ncclGetErrorString(res));
}

int fsq_dist_nccl_available(void) { return 1; }

fsq_status fsq_dist_nccl_init(fsq_dist *d, int device) {
  if (d->nccl != NULL) return fsq_error(FSQ_ERR_INVALID, "distributed: NCCL already initialized");
  if (device < 0) device = d->local_rank;
  cudaError_t err = cudaSetDevice(device);
  if (err != cudaSuccess) return cuda_error(err, "cudaSetDevice");
  ncclUniqueId id;
  if (d->rank == 0) {
    ncclResult_t res = ncclGetUniqueId(&id);
    if (res != ncclSuccess) return nccl_error(res, "ncclGetUniqueId");
  }
  fsq_status st = fsq_dist_broadcast(d, &id, sizeof id, 0);
  if (st != FSQ_OK) return st;
  struct dist_nccl *n = calloc(1, sizeof *n);
  if (n == NULL) return fsq_error(FSQ_ERR_NOMEM, "distributed: out of memory");
  n->device = device;
  err = cudaStreamCreateWithFlags(&n->stream, cudaStreamNonBlocking);
  if (err != cudaSuccess) {
    free(n);
    return cuda_error(err, "cudaStreamCreateWithFlags");
  }
  ncclResult_t res = ncclCommInitRank(&n->comm, d->size, id, d->rank);
  if (res != ncclSuccess) {
    cudaStreamDestroy(n->stream);
    free(n);
    return nccl_error(res, "ncclCommInitRank");
  }
  d->nccl = n;
  return FSQ_OK;
}

fsq_status fsq_dist_nccl_allreduce_f32(fsq_dist *d, float *x, size_t count, void *stream) {
  if (d->nccl == NULL)
    return fsq_error(FSQ_ERR_INVALID, "distributed: NCCL all-reduce before fsq_dist_nccl_init");
  struct dist_nccl *n = d->nccl;
  cudaStream_t s = stream != NULL ? (cudaStream_t)stream : n->stream;
  ncclResult_t res = ncclAllReduce(x, x, count, ncclFloat32, ncclSum, n->comm, s);
  return res == ncclSuccess ? FSQ_OK : nccl_error(res, "ncclAllReduce");
}

fsq_status fsq_dist_nccl_synchronize(fsq_dist *d) {
  if (d->nccl == NULL) return FSQ_OK;
  cudaError_t err = cudaStreamSynchronize(((struct dist_nccl *)d->nccl)->stream);
  return err == cudaSuccess ? FSQ_OK : cuda_error(err, "cudaStreamSynchronize");
}

void dist_nccl_destroy(fsq_dist *d) {
  struct dist_nccl *n = d->nccl;
  if (n == NULL) return;
  ncclCommDestroy(n->comm);
  cudaStreamDestroy(n->stream);
  free(n);
  d->nccl = NULL;
}

#else /* no CUDA: the API answers that it is not built */

int fsq_dist_nccl_available(void) { return 0; }

static fsq_status not_built(void) {
  return fsq_error(FSQ_ERR_UNSUPPORTED, "distributed: NCCL: built without CUDA (configure --with-cuda)");
}

fsq_status fsq_dist_nccl_init(fsq_dist *d, int device) {
  (void)d;
  (void)device;
  return not_built();
}

fsq_status fsq_dist_nccl_allreduce_f32(fsq_dist *d, float *x, size_t count, void *stream) {
  (void)d;
  (void)x;
  (void)count;
  (void)stream;
  return not_built();
}

fsq_status fsq_dist_nccl_synchronize(fsq_dist *d) {
  (void)d;
  return FSQ_OK;
}

void dist_nccl_destroy(fsq_dist *d) { (void)d; }

#endif
