/* autograd.c: recording nodes and walking them back. */
#include "tensor/tensor_internal.h"

#include <string.h>

void fsq_requires_grad(fsq_tensor *t) {
  if (t && fsq_is_float(t->dtype)) t->requires_grad = 1;
}

int fsq_needs_grad(const fsq_ctx *ctx, int n, fsq_tensor *const *in) {
  if (!ctx->grad_enabled) return 0;
  for (int i = 0; i < n; i++)
    if (in[i] && in[i]->requires_grad) return 1;
  return 0;
}

fsq_node *fsq_record(fsq_ctx *ctx, fsq_tensor *out, fsq_backward_fn fn, int n,
                     fsq_tensor *const *in) {
  fsq_node *node = fsq_ctx_alloc(ctx, sizeof(*node) + (size_t)n * sizeof(fsq_tensor *));
  if (!node) return NULL;
  memset(node, 0, sizeof(*node));
  node->in = (fsq_tensor **)(node + 1);
  memcpy(node->in, in, (size_t)n * sizeof(fsq_tensor *));
  node->n_in = n;
  node->backward = fn;
  node->out = out;
  node->prev = ctx->tape;
  ctx->tape = node;
  out->node = node;
  out->requires_grad = 1;
  return node;
}

void *fsq_grad_data(fsq_ctx *ctx, fsq_tensor *t) {
  if (!t || !t->requires_grad) return NULL;
  if (!t->grad) {
    t->grad = fsq_zeros(ctx, t->dtype, t->ndim, t->shape);
    if (!t->grad) return NULL;
  }
  return t->grad->data;
}

fsq_status fsq_backward(fsq_ctx *ctx, fsq_tensor *loss) {
  if (!loss) return fsq_error(FSQ_ERR_INVALID, "backward: loss is NULL");
  if (ctx->status != FSQ_OK)
    return fsq_error(ctx->status, "backward: the forward pass failed earlier");
  if (fsq_numel(loss) != 1 || !fsq_is_float(loss->dtype))
    return fsq_error(FSQ_ERR_INVALID, "backward: loss must be one f32/f64 element");
  if (!loss->requires_grad)
    return fsq_error(FSQ_ERR_INVALID, "backward: loss does not depend on any parameter");
  void *g = fsq_grad_data(ctx, loss);
  if (!g) return ctx->status;
  ctx->k->fill(loss->dtype, g, 1, 1.0);
  for (fsq_node *n = ctx->tape; n; n = n->prev) {
    if (!n->out->grad && !(n->out2 && n->out2->grad)) continue; /* off the loss path */
    n->backward(ctx, n);
    if (ctx->status != FSQ_OK) return fsq_error_wrap(ctx->status, "backward");
  }
  return FSQ_OK;
}
