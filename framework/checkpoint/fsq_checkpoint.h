/* fsq_checkpoint.h: the .fsq checkpoint file and its in-memory form.
 *
 * A .fsq file is an uncompressed POSIX ustar archive whose members are, in
 * this order:
 *   meta.json         the checkpoint's data (below) and the tensor index
 *   meta.json.crc32   8 hex digits + "\n": crc32 of meta.json's bytes
 *   model/<name>      raw little-endian tensor data, one member per tensor
 *   optimizer/<name>  the same for optimizer state
 *
 * meta.json mirrors the dictionary fairseq's checkpoint_utils.save_state
 * pickles, with our additions, so that a fairseq user finds the same keys:
 *   "format": "fairseq-c checkpoint", "format_version": 1,
 *   "framework_version": "0.1.0"             (the fairseq-c that wrote it)
 *   "components": {kind: {"name", "version"}} (fairseq keeps class names)
 *   "cfg": {...}                              the full resolved configuration
 *   "optimizer_history": [{"criterion_name", "optimizer_name",
 *                          "lr_scheduler_state", "num_updates"}]
 *   "task_state": {...}
 *   "extra_state": {"train_iterator": {"epoch", "iterations_in_epoch",
 *                   "shuffle"}, "val_loss", "best", "metrics" (meters),
 *                   "loss_scale", "rng", "previous_training_time"}
 *   "tensors": {"model": [...], "optimizer": [...]}   the index, each entry
 *              {"name", "dtype", "shape", "offset", "nbytes", "crc32"};
 *              offset is where the data starts in the file (bytes).
 * fairseq's "model" and "last_optimizer_state" are the two tensor groups;
 * optimizer records are named "<parameter name>.<state name>" (e.g.
 * "encoder.weight.exp_avg"), so a parameter rename can follow them.
 *
 * Only the data-parallel master (rank 0) writes: the functions here do not
 * know about ranks; callers check their rank before fsq_checkpoint_save.
 *
 * Tensor data is raw little-endian; big-endian hosts are refused at build
 * time (there is no byte swapping). */
#ifndef FSQ_CHECKPOINT_H
#define FSQ_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

#define FSQ_CHECKPOINT_FORMAT 1              /* the format version this code writes */
#define FSQ_CHECKPOINT_FORMAT_NAME "fairseq-c checkpoint"
#define FSQ_CHECKPOINT_EXT ".fsq"
#define FSQ_CKPT_MAX_DIMS 8

/* Element types, written by name ("f32", ...) in meta.json. */
typedef enum fsq_ckpt_dtype {
  FSQ_CKPT_F32 = 0,
  FSQ_CKPT_F16,
  FSQ_CKPT_BF16,
  FSQ_CKPT_F64,
  FSQ_CKPT_I32,
  FSQ_CKPT_I64,
  FSQ_CKPT_U8,
  FSQ_CKPT_DTYPE_COUNT
} fsq_ckpt_dtype;

const char *fsq_ckpt_dtype_name(fsq_ckpt_dtype dtype);
size_t fsq_ckpt_dtype_size(fsq_ckpt_dtype dtype);
int fsq_ckpt_dtype_parse(const char *name); /* -1 when unknown */

typedef enum fsq_ckpt_group {
  FSQ_CKPT_MODEL = 0,
  FSQ_CKPT_OPTIMIZER,
  FSQ_CKPT_GROUP_COUNT
} fsq_ckpt_group;

const char *fsq_ckpt_group_name(fsq_ckpt_group group); /* "model", "optimizer" */

/* A named tensor record. Read the fields; change them through fsq_state_*.
 * The pointer stays valid until the record is removed or the state freed. */
typedef struct fsq_ckpt_tensor {
  char *name;
  fsq_ckpt_dtype dtype;
  int ndim;
  int64_t shape[FSQ_CKPT_MAX_DIMS];
  void *data;      /* nbytes bytes: the caller's or the state's (see owned) */
  size_t nbytes;   /* product(shape) * dtype size */
  int owned;       /* the state frees data */
  uint32_t crc32;  /* as read from the file (0 for records added in memory) */
} fsq_ckpt_tensor;

/* ---- the in-memory checkpoint ------------------------------------------------
 * meta json (every key above except "tensors") + the records of each group in
 * order. Upgrade steps (fsq_upgrade_step.apply) operate on this. */
typedef struct fsq_state fsq_state;

/* An empty state: meta holds format, format_version, framework_version and
 * empty components, cfg, optimizer_history, task_state, extra_state. */
fsq_state *fsq_state_new(void);
void fsq_state_free(fsq_state *st);

/* Owned by the state; callers may add and change keys (not "tensors"). */
struct json_object *fsq_state_meta(fsq_state *st);
int64_t fsq_state_format_version(const fsq_state *st);

/* Deep-copies cfg into "cfg"; when cfg has "_components" (as
 * fsq_config_resolve records it), each {name, version} becomes a component. */
fsq_status fsq_state_set_config(fsq_state *st, struct json_object *cfg);
/* kind is the singular kind name ("model", "optimizer", ...). */
fsq_status fsq_state_set_component(fsq_state *st, const char *kind, const char *name,
                                   const char *version);
/* NULL outputs when kind is not recorded. Strings owned by the state. */
fsq_status fsq_state_get_component(fsq_state *st, const char *kind, const char **name,
                                   const char **version);

/* The well-known train counters: extra_state.train_iterator.{epoch,
 * iterations_in_epoch} and optimizer_history[-1].num_updates (an entry is
 * added when the history is empty). */
fsq_status fsq_state_set_progress(fsq_state *st, int64_t epoch, int64_t iterations_in_epoch,
                                  int64_t num_updates);
fsq_status fsq_state_get_progress(fsq_state *st, int64_t *epoch, int64_t *iterations_in_epoch,
                                  int64_t *num_updates);

/* How fsq_state_add treats data: BORROW keeps the caller's pointer (it must
 * outlive the state; saving streams from it with no copy), COPY duplicates
 * it, TAKE adopts a malloc'ed buffer the state will free. */
typedef enum fsq_ckpt_ownership { FSQ_CKPT_BORROW, FSQ_CKPT_COPY, FSQ_CKPT_TAKE } fsq_ckpt_ownership;

/* Adds a record. data: nbytes = product(shape) * dtype size bytes.
 * A duplicate name in the group is refused. */
fsq_status fsq_state_add(fsq_state *st, fsq_ckpt_group group, const char *name,
                         fsq_ckpt_dtype dtype, int ndim, const int64_t *shape, void *data,
                         size_t nbytes, fsq_ckpt_ownership ownership);
size_t fsq_state_count(const fsq_state *st, fsq_ckpt_group group);
fsq_ckpt_tensor *fsq_state_at(const fsq_state *st, fsq_ckpt_group group, size_t i);
fsq_ckpt_tensor *fsq_state_find(const fsq_state *st, fsq_ckpt_group group, const char *name);
fsq_status fsq_state_remove(fsq_state *st, fsq_ckpt_group group, const char *name);
fsq_status fsq_state_rename(fsq_state *st, fsq_ckpt_group group, const char *from,
                            const char *to);
/* Renames model/<from> and every optimizer record "<from>.<state>". */
fsq_status fsq_state_rename_param(fsq_state *st, const char *from, const char *to);
/* New shape with the same number of elements (data unchanged). */
fsq_status fsq_state_reshape(fsq_state *st, fsq_ckpt_group group, const char *name, int ndim,
                             const int64_t *shape);

/* ---- the file ----------------------------------------------------------------
 * Writes st to path atomically: a temporary ".<file>.tmp-XXXXXX" in the same
 * directory (never matching *.fsq), fsync, rename over path, fsync of the
 * directory. On any failure the temporary is removed and path is untouched. */
fsq_status fsq_checkpoint_save(const fsq_state *st, const char *path);

/* Where loaded tensor data goes. dest (may be NULL) is asked, for each
 * indexed tensor, for a buffer of t->nbytes bytes to read into (the caller
 * keeps owning it); returning NULL lets the state allocate and own it. */
typedef void *(*fsq_ckpt_dest_fn)(void *ctx, fsq_ckpt_group group, const fsq_ckpt_tensor *t);
typedef struct fsq_ckpt_load_options {
  fsq_ckpt_dest_fn dest;
  void *ctx;
  int skip_optimizer; /* verify and keep only the index of optimizer state */
} fsq_ckpt_load_options;

/* Reads and verifies every byte: tar structure, meta.json and its crc32,
 * format version (a newer one is refused naming the version it needs), the
 * index (dtypes, shapes against sizes), each member's presence, size, offset
 * and crc32. Errors name the file and the member. opt may be NULL. */
fsq_status fsq_checkpoint_load(const char *path, const fsq_ckpt_load_options *opt,
                               fsq_state **out);

/* ---- names and retention (fairseq's checkpoint_utils.save_checkpoint) -------
 * Pure functions: no file system access, so the trainer and tests share them. */
typedef struct fsq_ckpt_policy {
  const char *suffix;               /* --checkpoint-suffix, "" or NULL for none */
  int64_t save_interval;            /* --save-interval (epochs), default 1 */
  int64_t save_interval_updates;    /* --save-interval-updates, 0 = off */
  int no_epoch_checkpoints;         /* --no-epoch-checkpoints */
  int no_last_checkpoints;          /* --no-last-checkpoints */
  int64_t keep_interval_updates;    /* --keep-interval-updates, <= 0 = keep all */
  int64_t keep_last_epochs;         /* --keep-last-epochs, <= 0 = keep all */
  int64_t keep_best_checkpoints;    /* --keep-best-checkpoints, <= 0 = off */
  const char *best_checkpoint_metric; /* --best-checkpoint-metric, "loss" */
  int maximize_best_checkpoint_metric;
} fsq_ckpt_policy;

/* The moment of a save. has_best/best: the best value seen before this one
 * (fairseq's save_checkpoint.best), which decides checkpoint_best. */
typedef struct fsq_ckpt_moment {
  int64_t epoch;
  int64_t num_updates;
  int end_of_epoch;
  int has_val;
  double val;
  int has_best;
  double best;
} fsq_ckpt_moment;

#define FSQ_CKPT_MAX_NAMES 5
/* The file names to write for this moment, in fairseq's order (the first is
 * written, the others are copies): checkpoint{epoch}{sfx}.fsq,
 * checkpoint_{epoch}_{updates}{sfx}.fsq, checkpoint_best{sfx}.fsq,
 * checkpoint.best_{metric}_{val:.2f}{sfx}.fsq, checkpoint_last{sfx}.fsq.
 * names[i] are malloc'ed; *n gets the count. */
fsq_status fsq_checkpoint_names(const fsq_ckpt_policy *p, const fsq_ckpt_moment *m,
                                char *names[FSQ_CKPT_MAX_NAMES], size_t *n);
/* Given the file names in the save directory, marks remove[i] = 1 for those
 * the keep-* options delete after a save at moment m: interval-update
 * checkpoints beyond the newest keep_interval_updates (only when not at the
 * end of an epoch, as fairseq), epoch checkpoints beyond the newest
 * keep_last_epochs, and checkpoint.best_* beyond the best
 * keep_best_checkpoints. Other names are never marked. */
void fsq_checkpoint_old_files(const fsq_ckpt_policy *p, const fsq_ckpt_moment *m,
                              const char *const *names, size_t n, int *remove);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_CHECKPOINT_H */
