/* loss_scaler.c: fairseq's DynamicLossScaler, step for step: the scale
 * doubles after scale_window clean updates and halves on an overflow (when
 * the share of overflows since the last rescale reaches tolerance). */
#include <json-c/json.h>
#include <math.h>

#include "train/fsq_grads.h"

void fsq_loss_scaler_init(fsq_loss_scaler *s, double init_scale, int64_t scale_window,
                          double tolerance, double threshold, double min_loss_scale) {
  s->loss_scale = init_scale;
  s->scale_factor = 2.0;
  s->scale_window = scale_window > 0 ? scale_window : 1;
  s->tolerance = tolerance;
  s->threshold = threshold;
  s->min_loss_scale = min_loss_scale;
  s->iter = 0;
  s->last_overflow_iter = -1;
  s->last_rescale_iter = -1;
  s->overflows_since_rescale = 0;
}

void fsq_loss_scaler_update(fsq_loss_scaler *s) {
  if ((s->iter - s->last_overflow_iter) % s->scale_window == 0) {
    s->loss_scale *= s->scale_factor;
    s->last_rescale_iter = s->iter;
  }
  s->iter++;
}

fsq_overflow fsq_loss_scaler_check(fsq_loss_scaler *s, double grad_norm) {
  if (isfinite(grad_norm)) return FSQ_OVERFLOW_NONE;
  double prev = s->loss_scale;
  int64_t since = s->iter - s->last_rescale_iter;
  if (since == 0) since = 1000;
  s->last_overflow_iter = s->iter;
  s->overflows_since_rescale++;
  if ((double)s->overflows_since_rescale / (double)since >= s->tolerance) {
    s->loss_scale /= s->scale_factor;
    if (s->threshold > 0 && s->loss_scale < s->threshold) s->loss_scale = s->threshold;
    s->last_rescale_iter = s->iter;
    s->overflows_since_rescale = 0;
  }
  if (s->loss_scale <= s->min_loss_scale) {
    s->loss_scale = prev;
    return FSQ_OVERFLOW_MIN_REACHED;
  }
  s->iter++;
  return FSQ_OVERFLOW_SKIP;
}

fsq_status fsq_loss_scaler_save(const fsq_loss_scaler *s, json_object **out) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "loss_scale", json_object_new_double(s->loss_scale));
  json_object_object_add(o, "iter", json_object_new_int64(s->iter));
  json_object_object_add(o, "last_overflow_iter", json_object_new_int64(s->last_overflow_iter));
  json_object_object_add(o, "last_rescale_iter", json_object_new_int64(s->last_rescale_iter));
  json_object_object_add(o, "overflows_since_rescale",
                         json_object_new_int64(s->overflows_since_rescale));
  *out = o;
  return FSQ_OK;
}

fsq_status fsq_loss_scaler_load(fsq_loss_scaler *s, json_object *state) {
  fsq_status st = fsq_json_get_double(state, "loss_scale", &s->loss_scale);
  if (st == FSQ_OK) st = fsq_json_get_int64(state, "iter", &s->iter);
  if (st == FSQ_OK) st = fsq_json_get_int64(state, "last_overflow_iter", &s->last_overflow_iter);
  if (st == FSQ_OK) st = fsq_json_get_int64(state, "last_rescale_iter", &s->last_rescale_iter);
  if (st == FSQ_OK)
    st = fsq_json_get_int64(state, "overflows_since_rescale", &s->overflows_since_rescale);
  return st == FSQ_OK ? FSQ_OK : fsq_error_wrap(st, "loss scaler state");
}
