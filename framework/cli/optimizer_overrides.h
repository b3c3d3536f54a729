/* optimizer_overrides.h: fairseq-train's --optimizer-overrides. */
#ifndef FSQ_CLI_OPTIMIZER_OVERRIDES_H
#define FSQ_CLI_OPTIMIZER_OVERRIDES_H

#include "core/fsq_core.h"

struct json_object;

/* text: a Python dict literal of the optimizer's param-group keys, e.g.
 * "{'lr': 0.1, 'betas': (0.9, 0.98), 'weight_decay': 0.0}". Each key is
 * written into cfg under the option that sets it for the chosen optimizer
 * (betas -> adam_betas, eps -> adam_eps, lr, weight_decay); an unknown key
 * or a value that is not a number (or a tuple of numbers) is refused by
 * name. "{}" changes nothing. */
fsq_status fsq_apply_optimizer_overrides(struct json_object *cfg, const char *optimizer,
                                         const char *text);

#endif
