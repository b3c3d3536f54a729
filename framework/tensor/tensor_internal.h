/* tensor_internal.h: the context, the tape node and the helpers the op
 * files share (not installed). */
#ifndef FSQ_TENSOR_INTERNAL_H
#define FSQ_TENSOR_INTERNAL_H

#include "tensor/fsq_tensor.h"

typedef void (*fsq_backward_fn)(fsq_ctx *ctx, fsq_node *node);

/* One recorded op. Fields past `n_in` are the op's saved state. */
struct fsq_node {
  fsq_node *prev; /* the node recorded before this one */
  fsq_backward_fn backward;
  fsq_tensor *out;
  fsq_tensor *out2; /* a second output (label_smoothed_nll's nll), or NULL */
  fsq_tensor **in;
  int n_in;
  const void *saved[4]; /* contiguous copies / statistics kept for backward */
  double f[4];
  int64_t i[2 * FSQ_MAX_DIMS + 2];
  /* What backward reads of the tensors' data (FSQ_NODE_READS_*); fsq_record
   * sets both, an op clears what its backward never reads, so that
   * fsq_tape_storage_dead can prove a buffer unused by the rest of backward. */
  unsigned reads;
};

#define FSQ_NODE_READS_INPUTS 1u
#define FSQ_NODE_READS_OUTPUT 2u

/* An arena of the context with what its reset policy needs. */
struct fsq_ctx_arena {
  fsq_arena *arena;
  size_t block_bytes; /* the arena's block size */
  size_t high;        /* the most bytes one step has used */
};

struct fsq_ctx {
  /* Host memory: tensor headers, tape nodes, kernels' host arguments, and
   * on a host backend the tensors' data too. */
  struct fsq_ctx_arena meta;
  /* Tensor data on a device backend (its memory); unused on a host one. */
  struct fsq_ctx_arena device;
  fsq_node *tape; /* most recent node */
  const fsq_kernels *k;
  fsq_status status;
  int grad_enabled;
  int training;
  uint64_t seed;
  uint64_t step;
  uint64_t dropout_calls;
  struct grad_free *free_grads; /* released gradient buffers (autograd.c) */
  fsq_grad_ready_fn grad_ready; /* fsq_ctx_set_grad_ready_hook */
  void *grad_ready_user;
};

/* Records the error in fsq_error and the context; returns NULL. */
void *fsq_ctx_fail(fsq_ctx *ctx, fsq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Host arena memory, 64-byte aligned (headers, nodes, host arguments of
 * kernels); NULL and a failed status when exhausted. */
void *fsq_ctx_alloc(fsq_ctx *ctx, size_t bytes);
/* The same in the backend's memory: every buffer a kernel reads or writes
 * as tensor data (outputs, saved statistics, scratch copies). */
void *fsq_ctx_alloc_data(fsq_ctx *ctx, size_t bytes);
/* Host-backend tensors may be read directly; others through mem_download. */
int fsq_on_host(const fsq_tensor *t);
/* bytes of ctx's device memory at data, copied into its host arena (valid
 * until fsq_ctx_reset); NULL with the context's status on failure. */
void *fsq_host_copy(fsq_ctx *ctx, const void *data, size_t bytes);
/* A fresh tensor header (no data) with contiguous strides. */
fsq_tensor *fsq_tensor_header(fsq_ctx *ctx, fsq_dtype dtype, int ndim, const int64_t *shape);
void fsq_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
int fsq_is_float(fsq_dtype t); /* f32, f64, f16 or bf16: the dtypes with math */
/* The dtype statistics and loss sums of a t tensor are kept in: f32 for
 * f16/bf16 (mixed precision computes them in f32, as fairseq's --fp16
 * layer norm and log_softmax(logits.float()) do), else t itself. */
fsq_dtype fsq_accum_dtype(fsq_dtype t);
/* NULL (with error) unless x is a float dtype. */
int fsq_check_float(fsq_ctx *ctx, const fsq_tensor *x, const char *op);
/* x's elements in row-major order: x->data when contiguous, else a copy in
 * the arena (not recorded on the tape). */
void *fsq_contig_data(fsq_ctx *ctx, const fsq_tensor *x);

/* 1 when the bytes t's elements can touch ([data, data + extent) by its
 * strides) meet [p, p + bytes). */
int fsq_tensor_overlaps(const fsq_tensor *t, const void *p, size_t bytes);
/* Whether an op over these inputs must be recorded. */
int fsq_needs_grad(const fsq_ctx *ctx, int n, fsq_tensor *const *in);
/* Records a node producing out; out becomes requires_grad. NULL on OOM. */
fsq_node *fsq_record(fsq_ctx *ctx, fsq_tensor *out, fsq_backward_fn fn, int n,
                     fsq_tensor *const *in);
/* 1 when no node recorded before n reads [p, p + bytes) in its backward
 * (by its READS flags and the extents of its inputs and outputs) and no
 * tensor made by no op (a parameter, an input) lies there: during n's
 * backward that memory may then be overwritten. */
int fsq_tape_storage_dead(const fsq_node *n, const void *p, size_t bytes);
/* The same over every node recorded so far: in forward, whether an op may
 * write over [p, p + bytes) without changing what backward computes. */
int fsq_tape_storage_unread(const fsq_ctx *ctx, const void *p, size_t bytes);
/* t's gradient buffer (allocated zeroed on first use) or NULL when t does
 * not require grad. */
void *fsq_grad_data(fsq_ctx *ctx, fsq_tensor *t);
/* The same for a writer that overwrites every element when *fresh is set on
 * return (the buffer is new and not zeroed); when t already has a gradient,
 * *fresh is 0 and the writer must accumulate. */
void *fsq_grad_data_fresh(fsq_ctx *ctx, fsq_tensor *t, int *fresh);

/* out = view of x with the given shape/strides/offset (elements), sharing
 * storage; vstride/voff map view indices to x's row-major indices so that
 * backward can add the gradient back. */
fsq_tensor *fsq_view_make(fsq_ctx *ctx, fsq_tensor *x, int ndim, const int64_t *shape,
                          const int64_t *stride, int64_t offset, const int64_t *vstride,
                          int64_t voff);

#endif
