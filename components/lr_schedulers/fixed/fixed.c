/* fixed: fairseq's FixedLRSchedule. --lr gives one rate per epoch (the last
 * one repeats); from --force-anneal on, the last rate shrinks by --lr-shrink
 * each epoch; an optional linear warmup over --warmup-updates updates. */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>

#include "registry/fsq_component.h"
#include "train/fsq_lr_scheduler.h"

#define MAX_LRS 64

struct fsq_lr_scheduler {
  double lrs[MAX_LRS];
  size_t n_lrs;
  int has_force_anneal;
  int64_t force_anneal;
  double lr_shrink;
  int64_t warmup_updates;
  double warmup_factor;
  double lr;      /* the epoch's rate, before warmup */
  double current; /* what the optimizer was given */
  fsq_lr_best best;
};

static fsq_status create(json_object *cfg, fsq_lr_scheduler **out) {
  fsq_lr_scheduler *s = calloc(1, sizeof *s);
  if (s == NULL) return fsq_error(FSQ_ERR_NOMEM, "fixed: out of memory");
  fsq_status st = fsq_json_get_double_list(cfg, "lr", s->lrs, MAX_LRS, &s->n_lrs);
  if (st == FSQ_OK) st = fsq_json_get_double(cfg, "lr_shrink", &s->lr_shrink);
  if (st == FSQ_OK) st = fsq_json_get_int64(cfg, "warmup_updates", &s->warmup_updates);
  json_object *fa = NULL;
  if (st == FSQ_OK && json_object_object_get_ex(cfg, "force_anneal", &fa) && fa != NULL) {
    s->has_force_anneal = 1;
    s->force_anneal = json_object_get_int64(fa);
  }
  if (st != FSQ_OK) {
    free(s);
    return fsq_error_wrap(st, "fixed");
  }
  s->lr = s->lrs[0];
  s->warmup_factor = s->warmup_updates > 0 ? 1.0 / (double)s->warmup_updates : 1.0;
  s->current = s->lr;
  *out = s;
  return FSQ_OK;
}

static void destroy(fsq_lr_scheduler *s) { free(s); }

static double next_lr(const fsq_lr_scheduler *s, int64_t epoch) {
  if (!s->has_force_anneal || epoch < s->force_anneal) {
    int64_t i = epoch - 1;
    if (i < 0) i = 0;
    if ((size_t)i > s->n_lrs - 1) i = (int64_t)s->n_lrs - 1;
    return s->lrs[i];
  }
  return s->lrs[s->n_lrs - 1] * pow(s->lr_shrink, (double)(epoch + 1 - s->force_anneal));
}

static double step_begin_epoch(fsq_lr_scheduler *s, int64_t epoch) {
  s->lr = next_lr(s, epoch);
  s->current = s->warmup_factor * s->lr;
  return s->current;
}

static double step(fsq_lr_scheduler *s, int64_t epoch, int has_loss, double val_loss) {
  fsq_lr_best_update(&s->best, has_loss, val_loss);
  return s->current;
}

static double step_update(fsq_lr_scheduler *s, int64_t num_updates) {
  if (s->warmup_updates > 0 && num_updates < s->warmup_updates) {
    s->warmup_factor = (double)(num_updates + 1) / (double)s->warmup_updates;
    s->current = s->warmup_factor * s->lr;
  } else {
    s->current = s->lr;
  }
  return s->current;
}

static double get_lr(const fsq_lr_scheduler *s) { return s->current; }

static fsq_status state_save(const fsq_lr_scheduler *s, json_object **out) {
  json_object *o = json_object_new_object();
  fsq_lr_best_save(&s->best, o);
  json_object_object_add(o, "lr", json_object_new_double(s->lr));
  *out = o;
  return FSQ_OK;
}

static fsq_status state_load(fsq_lr_scheduler *s, json_object *state) {
  fsq_status st = fsq_lr_best_load(&s->best, state);
  if (st == FSQ_OK) st = fsq_json_get_double(state, "lr", &s->lr);
  return st == FSQ_OK ? FSQ_OK : fsq_error_wrap(st, "fixed lr scheduler state");
}

static const fsq_lr_scheduler_ops ops = {create, destroy, step_begin_epoch, step,
                                         step_update, get_lr, state_save, state_load};

static const fsq_option options[] = {
    {"force-anneal", FSQ_OPT_INT, NULL, "force annealing at specified epoch", NULL, NULL},
    {"lr-shrink", FSQ_OPT_FLOAT, "0.1", "shrink factor for annealing, lr_new = (lr * lr_shrink)", NULL, NULL},
    {"warmup-updates", FSQ_OPT_INT, "0", "warmup the learning rate linearly for the first N updates", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_component descriptor = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_LR_SCHEDULER,
    .name = "fixed",
    .version = FSQ_COMPONENT_VERSION,
    .description = "a fixed rate per epoch, optional annealing and warmup",
    .options = options,
    .ops_version = FSQ_LR_SCHEDULER_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &descriptor; }
