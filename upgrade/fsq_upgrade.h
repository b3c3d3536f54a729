/* fsq_upgrade.h: the checkpoint upgrade chain.
 *
 * Two kinds of steps move an old checkpoint forward, in memory:
 *  - framework format steps (format N -> N+1), one file each in upgrade/,
 *    listed in fsq_format_steps; they run first;
 *  - component state steps (fsq_upgrade_step in each component's
 *    descriptor): for every component recorded in meta.json, the steps from
 *    the recorded version up to the installed (newest registered) version.
 *
 * Component chain rules: a step applies to the current version v when
 * from <= v < to <= installed; the one with the smallest `to` runs next.
 * When none applies and v's MAJOR equals the installed MAJOR, the state is
 * compatible (semver) and the chain ends; otherwise the missing step is an
 * error. A recorded version newer than the installed one is refused naming
 * both. After the chain, meta.json records the installed versions.
 *
 * fairseq PyTorch checkpoints (.pt, zip + pickle) would enter as format 0;
 * that importer does not exist yet, so format 0 is refused. */
#ifndef FSQ_UPGRADE_H
#define FSQ_UPGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint/fsq_checkpoint.h"
#include "registry/fsq_registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fsq_format_step {
  int64_t from_format;
  int64_t to_format; /* from_format + 1 */
  const char *description;
  fsq_status (*apply)(fsq_state *state);
} fsq_format_step;

/* The framework's format steps, ending with {0, 0, NULL, NULL}. Empty while
 * FSQ_CHECKPOINT_FORMAT is 1. */
extern const fsq_format_step fsq_format_steps[];

/* Told about each step applied (or, in a dry run, that would be applied):
 * subject is "format" or "<kind> <name>" ("model renamer"). */
typedef void (*fsq_upgrade_report_fn)(void *ctx, const char *subject, const char *from,
                                      const char *to, const char *description);

typedef struct fsq_upgrade_options {
  int dry_run;                  /* check and report only; st is not changed */
  fsq_upgrade_report_fn report; /* may be NULL */
  void *ctx;
  const char *label;            /* names the checkpoint in messages (its path) */
} fsq_upgrade_options;

/* Runs format steps up to `target` from `steps` (normally fsq_format_steps
 * and FSQ_CHECKPOINT_FORMAT). *applied (may be NULL) counts the steps. */
fsq_status fsq_upgrade_format(fsq_state *st, const fsq_format_step *steps, int64_t target,
                              const fsq_upgrade_options *opt, size_t *applied);

/* Runs every component's chain against the components in reg. */
fsq_status fsq_upgrade_components(fsq_state *st, const fsq_registry *reg,
                                  const fsq_upgrade_options *opt, size_t *applied);

/* Both, in order: the whole chain. */
fsq_status fsq_upgrade_state(fsq_state *st, const fsq_registry *reg,
                             const fsq_upgrade_options *opt, size_t *applied);

/* fsq_checkpoint_load followed by fsq_upgrade_state (report/ctx from opt;
 * dry_run is ignored). */
fsq_status fsq_checkpoint_load_upgraded(const char *path, const fsq_ckpt_load_options *load,
                                        const fsq_registry *reg, const fsq_upgrade_options *opt,
                                        fsq_state **out, size_t *applied);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_UPGRADE_H */
