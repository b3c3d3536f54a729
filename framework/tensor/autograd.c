/* autograd.c: recording nodes and walking them back. */
#include "tensor/tensor_internal.h"

#include <stdint.h>
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
  node->reads = FSQ_NODE_READS_INPUTS | FSQ_NODE_READS_OUTPUT;
  node->prev = ctx->tape;
  ctx->tape = node;
  out->node = node;
  out->requires_grad = 1;
  return node;
}

int fsq_tensor_overlaps(const fsq_tensor *t, const void *p_, size_t bytes) {
  const char *p = p_;
  if (!t || !t->data) return 0;
  int64_t last = 0;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0) return 0;
    last += (t->shape[d] - 1) * (t->stride[d] < 0 ? -t->stride[d] : t->stride[d]);
  }
  const char *lo = t->data, *hi = lo + (size_t)(last + 1) * fsq_dtype_size(t->dtype);
  return lo < p + bytes && p < hi;
}

/* 1 when no node from m back reads [p, p + bytes) in its backward and no
 * tensor made by no op lies there. */
static int storage_unread_from(const fsq_node *m, const void *p, size_t bytes) {
  for (; m; m = m->prev) {
    if ((m->reads & FSQ_NODE_READS_OUTPUT) &&
        (fsq_tensor_overlaps(m->out, p, bytes) || fsq_tensor_overlaps(m->out2, p, bytes)))
      return 0;
    for (int j = 0; j < m->n_in; j++) {
      if (!fsq_tensor_overlaps(m->in[j], p, bytes)) continue;
      /* read by this backward, or the memory of a tensor no op made (a
       * parameter, an input): the caller may still want it */
      if ((m->reads & FSQ_NODE_READS_INPUTS) || !m->in[j]->node) return 0;
    }
  }
  return 1;
}

int fsq_tape_storage_dead(const fsq_node *n, const void *p, size_t bytes) {
  return storage_unread_from(n->prev, p, bytes);
}

int fsq_tape_storage_unread(const fsq_ctx *ctx, const void *p, size_t bytes) {
  return storage_unread_from(ctx->tape, p, bytes);
}

/* A gradient buffer released by fsq_backward once its node has run; the
 * list lives in the step arena and is dropped by fsq_ctx_reset. */
struct grad_free {
  struct grad_free *next;
  size_t bytes;
  void *data;
};

void *fsq_grad_data_fresh(fsq_ctx *ctx, fsq_tensor *t, int *fresh) {
  *fresh = 0;
  if (!t || !t->requires_grad) return NULL;
  if (t->grad) return t->grad->data;
  size_t bytes = (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype);
  /* a released buffer of the same size, else the front of the first larger
   * one (the logits' gradient, released early in backward, then serves the
   * layers' gradients) */
  struct grad_free **pick = NULL;
  for (struct grad_free **p = &ctx->free_grads; *p; p = &(*p)->next) {
    if ((*p)->bytes == bytes) {
      pick = p;
      break;
    }
    if (!pick && (*p)->bytes > bytes) pick = p;
  }
  if (pick) {
    struct grad_free *f = *pick;
    size_t take = (bytes + 63) & ~(size_t)63;
    t->grad = fsq_wrap(ctx, t->dtype, t->ndim, t->shape, f->data);
    if (!t->grad) return NULL;
    if (f->bytes > take) {
      f->data = (char *)f->data + take;
      f->bytes -= take;
    } else {
      *pick = f->next;
    }
    *fresh = 1;
    return t->grad->data;
  }
  t->grad = fsq_empty(ctx, t->dtype, t->ndim, t->shape);
  if (!t->grad) return NULL;
  *fresh = 1;
  return t->grad->data;
}

void *fsq_grad_data(fsq_ctx *ctx, fsq_tensor *t) {
  int fresh;
  void *g = fsq_grad_data_fresh(ctx, t, &fresh);
  if (g && fresh) ctx->k->mem_zero(g, (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype));
  return g;
}

/* The gradient of an op's output is dead once the op's backward has run
 * (every consumer was recorded later, so ran earlier): its buffer serves
 * the next gradient of the same size, as PyTorch frees non-leaf grads. A
 * step then holds the activations plus a few live gradients instead of a
 * gradient for every activation. */
static void release_grad(fsq_ctx *ctx, fsq_tensor *t) {
  if (!t || !t->grad) return;
  struct grad_free *f = fsq_arena_alloc(ctx->meta.arena, sizeof *f, 16);
  if (!f) return; /* keep it: correct, only larger */
  f->bytes = (size_t)fsq_numel(t) * fsq_dtype_size(t->dtype);
  f->data = t->grad->data;
  f->next = ctx->free_grads;
  ctx->free_grads = f;
  t->grad = NULL;
}

void fsq_ctx_set_grad_ready_hook(fsq_ctx *ctx, fsq_grad_ready_fn fn, void *user) {
  ctx->grad_ready = fn;
  ctx->grad_ready_user = user;
}

static int is_leaf(const fsq_tensor *t) { return t && t->requires_grad && !t->node; }

/* For the grad-ready hook: every leaf on the tape with the earliest
 * recorded node that uses it (backward walks the tape newest first, so the
 * leaf's gradient is final once that node has run). An open-addressing
 * table in the step arena, keyed by the leaf's address. */
struct leaf_slot {
  fsq_tensor *leaf;
  const fsq_node *last; /* the earliest recorded node using leaf */
  int fired;
};

struct leaf_table {
  struct leaf_slot *slot;
  size_t mask;
};

static struct leaf_slot *leaf_find(const struct leaf_table *tb, const fsq_tensor *t) {
  size_t h = (size_t)(((uintptr_t)t >> 4) * (uintptr_t)0x9E3779B97F4A7C15ull) & tb->mask;
  while (tb->slot[h].leaf && tb->slot[h].leaf != t) h = (h + 1) & tb->mask;
  return &tb->slot[h];
}

static fsq_status leaf_table_build(fsq_ctx *ctx, struct leaf_table *tb) {
  size_t uses = 0;
  for (const fsq_node *n = ctx->tape; n; n = n->prev)
    for (int j = 0; j < n->n_in; j++) uses += is_leaf(n->in[j]);
  size_t cap = 16;
  while (cap < 2 * uses) cap *= 2;
  tb->slot = fsq_ctx_alloc(ctx, cap * sizeof *tb->slot);
  if (!tb->slot) return ctx->status;
  memset(tb->slot, 0, cap * sizeof *tb->slot);
  tb->mask = cap - 1;
  for (const fsq_node *n = ctx->tape; n; n = n->prev)
    for (int j = 0; j < n->n_in; j++)
      if (is_leaf(n->in[j])) {
        struct leaf_slot *s = leaf_find(tb, n->in[j]);
        s->leaf = n->in[j];
        s->last = n; /* older nodes come later in this walk */
      }
  return FSQ_OK;
}

/* After node n's backward (or its skip): the hook for each leaf n was the
 * last to touch. */
static fsq_status leaf_table_fire(fsq_ctx *ctx, const struct leaf_table *tb, const fsq_node *n) {
  for (int j = 0; j < n->n_in; j++) {
    if (!is_leaf(n->in[j])) continue;
    struct leaf_slot *s = leaf_find(tb, n->in[j]);
    if (s->last != n || s->fired || !s->leaf->grad) continue;
    s->fired = 1;
    fsq_status st = ctx->grad_ready(s->leaf, ctx->grad_ready_user);
    if (st != FSQ_OK) return st;
  }
  return FSQ_OK;
}

fsq_status fsq_backward(fsq_ctx *ctx, fsq_tensor *loss) {
  if (!loss) return fsq_error(FSQ_ERR_INVALID, "backward: loss is NULL");
  if (ctx->status != FSQ_OK)
    return fsq_error(ctx->status, "backward: the forward pass failed earlier");
  if (fsq_numel(loss) != 1 || !fsq_is_float(loss->dtype))
    return fsq_error(FSQ_ERR_INVALID, "backward: loss must be one floating-point element");
  if (!loss->requires_grad)
    return fsq_error(FSQ_ERR_INVALID, "backward: loss does not depend on any parameter");
  void *g = fsq_grad_data(ctx, loss);
  if (!g) return ctx->status;
  ctx->k->fill(loss->dtype, g, 1, 1.0);
  struct leaf_table tb = {NULL, 0};
  if (ctx->grad_ready) {
    fsq_status st = leaf_table_build(ctx, &tb);
    if (st != FSQ_OK) return fsq_error_wrap(st, "backward");
  }
  for (fsq_node *n = ctx->tape; n; n = n->prev) {
    if (n->out->grad || (n->out2 && n->out2->grad)) { /* else off the loss path */
      n->backward(ctx, n);
      if (ctx->status != FSQ_OK) return fsq_error_wrap(ctx->status, "backward");
      release_grad(ctx, n->out);
      release_grad(ctx, n->out2);
    }
    if (tb.slot) {
      fsq_status st = leaf_table_fire(ctx, &tb, n);
      if (st != FSQ_OK) return fsq_error_wrap(st, "backward: grad-ready hook");
    }
  }
  return FSQ_OK;
}
