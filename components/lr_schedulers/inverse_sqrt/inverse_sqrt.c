/* inverse_sqrt: fairseq's InverseSquareRootSchedule. Linear warmup from
 * --warmup-init-lr to --lr over --warmup-updates updates, then decay
 * proportional to the inverse square root of the update number:
 *   lr = decay_factor / sqrt(update), decay_factor = lr * sqrt(warmup_updates) */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>

#include "registry/fsq_component.h"
#include "train/fsq_lr_scheduler.h"

struct fsq_lr_scheduler {
  double warmup_init_lr;
  double lr_step;
  double decay_factor;
  int64_t warmup_updates;
  double lr;
  fsq_lr_best best;
};

static fsq_status create(json_object *cfg, fsq_lr_scheduler **out) {
  double lrs[16];
  size_t n = 0;
  int64_t warmup = 0;
  double init = 0;
  fsq_status st = fsq_json_get_double_list(cfg, "lr", lrs, 16, &n);
  if (st == FSQ_OK) st = fsq_json_get_int64(cfg, "warmup_updates", &warmup);
  if (st == FSQ_OK) st = fsq_json_get_double(cfg, "warmup_init_lr", &init);
  if (st != FSQ_OK) return fsq_error_wrap(st, "inverse_sqrt");
  if (n > 1)
    return fsq_error(FSQ_ERR_INVALID, "inverse_sqrt: cannot use a fixed learning rate schedule "
                                      "with inverse_sqrt; consider --lr-scheduler=fixed instead");
  if (warmup < 0) return fsq_error(FSQ_ERR_INVALID, "inverse_sqrt: --warmup-updates must be >= 0");
  fsq_lr_scheduler *s = calloc(1, sizeof *s);
  if (s == NULL) return fsq_error(FSQ_ERR_NOMEM, "inverse_sqrt: out of memory");
  double lr = lrs[0];
  if (init < 0) init = warmup > 0 ? 0.0 : lr;
  s->warmup_init_lr = init;
  s->warmup_updates = warmup;
  s->lr_step = warmup > 0 ? (lr - init) / (double)warmup : 0.0;
  s->decay_factor = lr * sqrt((double)warmup);
  s->lr = init;
  *out = s;
  return FSQ_OK;
}

static void destroy(fsq_lr_scheduler *s) { free(s); }

static double step_begin_epoch(fsq_lr_scheduler *s, int64_t epoch) { return s->lr; }

static double step(fsq_lr_scheduler *s, int64_t epoch, int has_loss, double val_loss) {
  fsq_lr_best_update(&s->best, has_loss, val_loss);
  return s->lr;
}

static double step_update(fsq_lr_scheduler *s, int64_t num_updates) {
  if (num_updates < s->warmup_updates)
    s->lr = s->warmup_init_lr + (double)num_updates * s->lr_step;
  else
    s->lr = s->decay_factor * pow((double)num_updates, -0.5);
  return s->lr;
}

static double get_lr(const fsq_lr_scheduler *s) { return s->lr; }

static fsq_status state_save(const fsq_lr_scheduler *s, json_object **out) {
  json_object *o = json_object_new_object();
  fsq_lr_best_save(&s->best, o);
  *out = o;
  return FSQ_OK;
}

static fsq_status state_load(fsq_lr_scheduler *s, json_object *state) {
  return fsq_lr_best_load(&s->best, state);
}

static const fsq_lr_scheduler_ops ops = {create, destroy, step_begin_epoch, step,
                                         step_update, get_lr, state_save, state_load};

static const fsq_option options[] = {
    {"warmup-updates", FSQ_OPT_INT, "4000", "warmup the learning rate linearly for the first N updates", NULL, NULL},
    {"warmup-init-lr", FSQ_OPT_FLOAT, "-1", "initial learning rate during warmup phase; default is cfg.lr", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_component descriptor = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_LR_SCHEDULER,
    .name = "inverse_sqrt",
    .version = FSQ_COMPONENT_VERSION,
    .description = "linear warmup, then decay with the inverse square root of the update",
    .options = options,
    .ops_version = FSQ_LR_SCHEDULER_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &descriptor; }
