/* loss_scaler.c: fairseq's DynamicLossScaler, step for step (see
 * fsq_loss_scaler.h), with fairseq-train's checks of its flags. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>

#include "train/fsq_loss_scaler.h"

int64_t fsq_loss_scaler_default_window(int64_t data_parallel_size, int64_t update_freq) {
  if (data_parallel_size < 1) data_parallel_size = 1;
  if (update_freq < 1) update_freq = 1;
  /* fairseq divides in floating point and truncates: the same integer */
  return (int64_t)(16384.0 / (double)data_parallel_size / (double)update_freq);
}

/* cfg[key] as a number; *given = 0 when the key is missing or null. */
static fsq_status optional_number(json_object *cfg, const char *key, const char *flag,
                                  double *out, int *given) {
  json_object *v = NULL;
  *given = 0;
  if (cfg == NULL || !json_object_object_get_ex(cfg, key, &v) || v == NULL) return FSQ_OK;
  if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
    return fsq_error(FSQ_ERR_INVALID, "%s: expected a number, got %s", flag,
                     json_object_to_json_string(v));
  *out = json_object_get_double(v);
  *given = 1;
  return FSQ_OK;
}

/* The ranges fairseq's arithmetic needs; fairseq itself checks none. */
static fsq_status check_options(const fsq_loss_scaler_options *o) {
  if (!(o->init_scale > 0) || isinf(o->init_scale))
    return fsq_error(FSQ_ERR_INVALID, "--fp16-init-scale %g: the loss scale must be > 0",
                     o->init_scale);
  if (!(o->tolerance >= 0 && o->tolerance <= 1))
    return fsq_error(FSQ_ERR_INVALID,
                     "--fp16-scale-tolerance %g: a share of updates, from 0 to 1", o->tolerance);
  if (!(o->min_loss_scale >= 0) || isinf(o->min_loss_scale))
    return fsq_error(FSQ_ERR_INVALID, "--min-loss-scale %g: must be >= 0", o->min_loss_scale);
  if (o->has_threshold && (!(o->threshold > 0) || isinf(o->threshold)))
    return fsq_error(FSQ_ERR_INVALID, "--threshold-loss-scale %g: must be > 0", o->threshold);
  return FSQ_OK;
}

fsq_status fsq_loss_scaler_options_from_config(json_object *cfg, int64_t data_parallel_size,
                                               fsq_loss_scaler_options *out) {
  fsq_loss_scaler_options o = {128.0, 0, 0.0, 0, 0.0, 1e-4};
  double window = 0, update_freq = 1;
  int given = 0, window_given = 0;
  fsq_status st = optional_number(cfg, "fp16_init_scale", "--fp16-init-scale", &o.init_scale, &given);
  if (st == FSQ_OK)
    st = optional_number(cfg, "fp16_scale_window", "--fp16-scale-window", &window, &window_given);
  if (st == FSQ_OK)
    st = optional_number(cfg, "fp16_scale_tolerance", "--fp16-scale-tolerance", &o.tolerance, &given);
  if (st == FSQ_OK)
    st = optional_number(cfg, "threshold_loss_scale", "--threshold-loss-scale", &o.threshold,
                         &o.has_threshold);
  if (st == FSQ_OK)
    st = optional_number(cfg, "min_loss_scale", "--min-loss-scale", &o.min_loss_scale, &given);
  if (st == FSQ_OK) st = optional_number(cfg, "update_freq", "--update-freq", &update_freq, &given);
  if (st != FSQ_OK) return st;
  if (window_given) {
    if (!(window >= 1) || window != floor(window) || window > (double)INT64_MAX)
      return fsq_error(FSQ_ERR_INVALID, "--fp16-scale-window %g: a number of updates >= 1", window);
    o.scale_window = (int64_t)window;
  } else {
    o.scale_window = fsq_loss_scaler_default_window(data_parallel_size, (int64_t)update_freq);
  }
  if ((st = check_options(&o)) != FSQ_OK) return st;
  *out = o;
  return FSQ_OK;
}

fsq_status fsq_loss_scaler_init(fsq_loss_scaler *s, const fsq_loss_scaler_options *o) {
  fsq_status st = check_options(o);
  if (st != FSQ_OK) return st;
  if (o->scale_window < 1)
    return fsq_error(FSQ_ERR_INVALID,
                     "--fp16-scale-window: fairseq's default, 2**14 / ranks / --update-freq, "
                     "is 0 for this job; give the window");
  s->loss_scale = o->init_scale;
  s->scale_factor = 2.0;
  s->scale_window = o->scale_window;
  s->tolerance = o->tolerance;
  s->has_threshold = o->has_threshold;
  s->threshold = o->threshold;
  s->min_loss_scale = o->min_loss_scale;
  s->iter = 0;
  s->last_overflow_iter = -1;
  s->last_rescale_iter = -1;
  s->overflows_since_rescale = 0;
  s->max_grad_norm = -1.0;
  return FSQ_OK;
}

void fsq_loss_scaler_update(fsq_loss_scaler *s) {
  if ((s->iter - s->last_overflow_iter) % s->scale_window == 0) {
    s->loss_scale *= s->scale_factor;
    s->last_rescale_iter = s->iter;
  }
  s->iter++;
}

static void decrease_loss_scale(fsq_loss_scaler *s) {
  s->loss_scale /= s->scale_factor;
  if (s->has_threshold && s->loss_scale < s->threshold) s->loss_scale = s->threshold;
}

fsq_status fsq_loss_scaler_check_overflow(fsq_loss_scaler *s, double grad_norm, int64_t update,
                                          int *overflow) {
  /* fairseq tests grad_norm == inf or grad_norm != grad_norm */
  if (!(grad_norm == INFINITY || isnan(grad_norm))) {
    if (grad_norm > s->max_grad_norm) s->max_grad_norm = grad_norm;
    *overflow = 0;
    return FSQ_OK;
  }
  *overflow = 1;
  double prev_scale = s->loss_scale;
  int64_t iter_since_rescale = s->iter - s->last_rescale_iter;
  /* only after a failure below, which leaves iter where it was */
  if (iter_since_rescale == 0) iter_since_rescale = 1000;
  s->last_overflow_iter = s->iter;
  s->overflows_since_rescale++;
  double pct_overflow = (double)s->overflows_since_rescale / (double)iter_since_rescale;
  if (pct_overflow >= s->tolerance) {
    decrease_loss_scale(s);
    s->last_rescale_iter = s->iter;
    s->overflows_since_rescale = 0;
  }
  if (s->loss_scale <= s->min_loss_scale) {
    s->loss_scale = prev_scale;
    char largest[64];
    if (s->max_grad_norm >= 0)
      snprintf(largest, sizeof largest, "%g", s->max_grad_norm);
    else
      snprintf(largest, sizeof largest, "none finite yet");
    return fsq_error(FSQ_ERR_INVALID,
                     "Minimum loss scale reached (%g) at update %lld (gradient norm %g; the "
                     "largest finite one so far: %s). Your loss is probably exploding. Try "
                     "lowering the learning rate, using gradient clipping or increasing the "
                     "batch size.",
                     s->min_loss_scale, (long long)update, grad_norm, largest);
  }
  s->iter++;
  return FSQ_OK;
}

fsq_status fsq_loss_scaler_state_save(const fsq_loss_scaler *s, json_object *optimizer_state) {
  if (optimizer_state == NULL || !json_object_is_type(optimizer_state, json_type_object))
    return fsq_error(FSQ_ERR_INTERNAL, "loss scaler: optimizer_state is not a JSON object");
  json_object *v = json_object_new_double(s->loss_scale);
  if (v == NULL || json_object_object_add(optimizer_state, "loss_scale", v) != 0) {
    json_object_put(v);
    return fsq_error(FSQ_ERR_NOMEM, "loss scaler: out of memory");
  }
  return FSQ_OK;
}

fsq_status fsq_loss_scaler_state_load(fsq_loss_scaler *s, json_object *optimizer_state) {
  json_object *v = NULL;
  if (optimizer_state == NULL || !json_object_object_get_ex(optimizer_state, "loss_scale", &v) ||
      v == NULL)
    return FSQ_OK;
  if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
    return fsq_error(FSQ_ERR_FORMAT, "last_optimizer_state.loss_scale is %s, expected a number",
                     json_object_to_json_string(v));
  double scale = json_object_get_double(v);
  if (!(scale > 0) || isinf(scale))
    return fsq_error(FSQ_ERR_FORMAT, "last_optimizer_state.loss_scale %g: a loss scale is > 0", scale);
  s->loss_scale = scale;
  return FSQ_OK;
}
