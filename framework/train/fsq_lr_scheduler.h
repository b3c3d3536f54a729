/* fsq_lr_scheduler.h: the ops table of lr_scheduler components. A scheduler
 * computes the learning rate from the epoch and update counts, as fairseq's
 * FairseqLRScheduler does; the trainer hands the value to the optimizer. */
#ifndef FSQ_LR_SCHEDULER_H
#define FSQ_LR_SCHEDULER_H

#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

#define FSQ_LR_SCHEDULER_OPS_VERSION 1

typedef struct fsq_lr_scheduler fsq_lr_scheduler; /* owned by the component */

typedef struct fsq_lr_scheduler_ops {
  /* Reads its options (and "lr", fairseq's --lr list) from the resolved
   * configuration. The learning rate starts at get_lr(). */
  fsq_status (*create)(struct json_object *cfg, fsq_lr_scheduler **out);
  void (*destroy)(fsq_lr_scheduler *s);
  /* fairseq's step_begin_epoch(epoch): returns the new rate. */
  double (*step_begin_epoch)(fsq_lr_scheduler *s, int64_t epoch);
  /* fairseq's step(epoch, val_loss) at the end of an epoch; has_loss = 0
   * when there was no validation. Returns the new rate. */
  double (*step)(fsq_lr_scheduler *s, int64_t epoch, int has_loss, double val_loss);
  /* fairseq's step_update(num_updates), after every update. */
  double (*step_update)(fsq_lr_scheduler *s, int64_t num_updates);
  double (*get_lr)(const fsq_lr_scheduler *s);
  /* State for checkpoints: a new json object, and its inverse. */
  fsq_status (*state_save)(const fsq_lr_scheduler *s, struct json_object **out);
  fsq_status (*state_load)(fsq_lr_scheduler *s, struct json_object *state);
} fsq_lr_scheduler_ops;

/* fairseq's FairseqLRScheduler.step keeps the best (lowest) validation loss;
 * every scheduler does the same, so it lives here. */
typedef struct fsq_lr_best {
  int has_best;
  double best;
} fsq_lr_best;

static inline void fsq_lr_best_update(fsq_lr_best *b, int has_loss, double loss) {
  if (!has_loss) return;
  if (!b->has_best || loss < b->best) b->best = loss;
  b->has_best = 1;
}

/* The "best" entry of a scheduler's state, as fairseq saves it (null when
 * no validation has run yet). */
fsq_status fsq_lr_best_save(const fsq_lr_best *b, struct json_object *state);
fsq_status fsq_lr_best_load(fsq_lr_best *b, struct json_object *state);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_LR_SCHEDULER_H */
