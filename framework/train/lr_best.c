/* lr_best.c: the best-validation-loss part of every scheduler's state. */
#include "train/fsq_lr_scheduler.h"

#include <json-c/json.h>

fsq_status fsq_lr_best_save(const fsq_lr_best *b, json_object *state) {
  json_object_object_add(state, "best", b->has_best ? json_object_new_double(b->best) : NULL);
  return FSQ_OK;
}

fsq_status fsq_lr_best_load(fsq_lr_best *b, json_object *state) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(state, "best", &v))
    return fsq_error(FSQ_ERR_FORMAT, "lr scheduler state: missing key 'best'");
  b->has_best = v != NULL;
  b->best = v != NULL ? json_object_get_double(v) : 0.0;
  return FSQ_OK;
}
