/* fsq_grads.h: what the trainer does to gradients between backward and the
 * optimizer step, on flat f32 buffers: fairseq's clip_grad_norm_ and
 * multiply_grads, and the dynamic loss scaler of mixed precision. */
#ifndef FSQ_GRADS_H
#define FSQ_GRADS_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* A gradient buffer: data: [numel] f32. */
typedef struct fsq_grad_buffer {
  float *data;
  size_t numel;
} fsq_grad_buffer;

/* L2 norm over all buffers (accumulated in double); inf or nan when any
 * element is. */
double fsq_grads_norm(const fsq_grad_buffer *grads, size_t n);
void fsq_grads_scale(const fsq_grad_buffer *grads, size_t n, float factor);
/* fairseq's clip_grad_norm_: when max_norm > 0 the gradients are multiplied
 * by min(1, max_norm / (norm + 1e-6)). Returns the norm before clipping. */
double fsq_grads_clip(const fsq_grad_buffer *grads, size_t n, double max_norm);

/* fairseq's DynamicLossScaler (optim/dynamic_loss_scaler.py). */
typedef struct fsq_loss_scaler {
  double loss_scale;
  double scale_factor;
  int64_t scale_window;
  double tolerance;
  double threshold; /* lower bound after a decrease; <= 0 for none */
  double min_loss_scale;
  int64_t iter;
  int64_t last_overflow_iter;
  int64_t last_rescale_iter;
  int64_t overflows_since_rescale;
} fsq_loss_scaler;

typedef enum fsq_overflow {
  FSQ_OVERFLOW_NONE = 0,    /* gradients are finite: take the step */
  FSQ_OVERFLOW_SKIP,        /* inf/nan: skip this step, the scale was lowered */
  FSQ_OVERFLOW_MIN_REACHED  /* the scale would go below the minimum: stop */
} fsq_overflow;

void fsq_loss_scaler_init(fsq_loss_scaler *s, double init_scale, int64_t scale_window,
                          double tolerance, double threshold, double min_loss_scale);
/* After a step that was taken: grows the scale every scale_window steps
 * without overflow. */
void fsq_loss_scaler_update(fsq_loss_scaler *s);
/* Before the step, with the gradient norm (of the scaled gradients). */
fsq_overflow fsq_loss_scaler_check(fsq_loss_scaler *s, double grad_norm);
fsq_status fsq_loss_scaler_save(const fsq_loss_scaler *s, struct json_object **out);
fsq_status fsq_loss_scaler_load(fsq_loss_scaler *s, struct json_object *state);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_GRADS_H */
