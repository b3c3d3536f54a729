/* fsq_loss_scaler.h: fairseq's DynamicLossScaler (fairseq/optim/
 * dynamic_loss_scaler.py), the loss scale of --fp16 training, step for
 * step: the loss is multiplied by the scale before backward; a step whose
 * gradient norm is inf or nan is skipped and the scale lowered; after
 * scale_window clean updates the scale doubles. --bf16 trains without one,
 * as fairseq's FP16Optimizer does. */
#ifndef FSQ_LOSS_SCALER_H
#define FSQ_LOSS_SCALER_H

#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* The scaler's settings, fairseq-train's flags. */
typedef struct fsq_loss_scaler_options {
  double init_scale;     /* --fp16-init-scale (128) */
  int64_t scale_window;  /* --fp16-scale-window, or fsq_loss_scaler_default_window */
  double tolerance;      /* --fp16-scale-tolerance (0.0): share of overflowing updates */
  int has_threshold;     /* --threshold-loss-scale given (fairseq's None otherwise) */
  double threshold;      /* the scale never falls below it by a decrease */
  double min_loss_scale; /* --min-loss-scale (1e-4): training stops at or below it */
} fsq_loss_scaler_options;

typedef struct fsq_loss_scaler {
  double loss_scale;
  double scale_factor; /* 2, fairseq's constant */
  int64_t scale_window;
  double tolerance;
  int has_threshold;
  double threshold;
  double min_loss_scale;
  /* fairseq's _iter, _last_overflow_iter, _last_rescale_iter and
   * _overflows_since_rescale */
  int64_t iter;
  int64_t last_overflow_iter;
  int64_t last_rescale_iter;
  int64_t overflows_since_rescale;
  /* Not fairseq's: the largest finite gradient norm checked so far, for the
   * message when training has to stop (-1 while there is none). */
  double max_grad_norm;
} fsq_loss_scaler;

/* fairseq's window when --fp16-scale-window is not given (FP16Optimizer):
 * int(2**14 / data-parallel size / update_freq); 0 when that many ranks
 * times --update-freq exceed 2**14. */
int64_t fsq_loss_scaler_default_window(int64_t data_parallel_size, int64_t update_freq);

/* The options from a resolved configuration (keys fp16_init_scale,
 * fp16_scale_window, fp16_scale_tolerance, threshold_loss_scale,
 * min_loss_scale, update_freq; a missing or null key takes fairseq's
 * default). Values out of range are refused naming their flag. The window
 * is the default one for data_parallel_size ranks when not given; a zero
 * default is refused by fsq_loss_scaler_init, not here, so that a run
 * without a scaler never trips over it. */
fsq_status fsq_loss_scaler_options_from_config(struct json_object *cfg,
                                               int64_t data_parallel_size,
                                               fsq_loss_scaler_options *out);

/* fairseq's initial state for o, after checking o as options_from_config
 * does (and the window >= 1). */
fsq_status fsq_loss_scaler_init(fsq_loss_scaler *s, const fsq_loss_scaler_options *o);

/* After an update that was applied: doubles the scale every scale_window
 * iterations counted from the last overflow. */
void fsq_loss_scaler_update(fsq_loss_scaler *s);

/* Before the update, with the norm of the gradients (fairseq's
 * check_overflow): *overflow = 0 when the norm is finite (take the step);
 * 1 when it is inf or nan: skip the step, the scale was lowered (when the
 * overflows since the last rescale reach --fp16-scale-tolerance). When the
 * scale would reach --min-loss-scale it is kept, *overflow is 1 and an
 * error says so (fairseq's FloatingPointError) naming the update number
 * `update` (the one being attempted), the gradient norm and the largest
 * finite one seen: training must stop. */
fsq_status fsq_loss_scaler_check_overflow(fsq_loss_scaler *s, double grad_norm, int64_t update,
                                          int *overflow);

/* Checkpoints keep the scale alone, as fairseq does ("loss_scale" in the
 * optimizer's state, last_optimizer_state); the counters start afresh on
 * resume. save adds the key to that object; load takes it when present (a
 * checkpoint of an fp32 run has none). */
fsq_status fsq_loss_scaler_state_save(const fsq_loss_scaler *s, struct json_object *optimizer_state);
fsq_status fsq_loss_scaler_state_load(fsq_loss_scaler *s, struct json_object *optimizer_state);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_LOSS_SCALER_H */
