/* fairseq-train: trains a model with fairseq's flags. The program chooses
 * the components (--task, --arch, --criterion, --optimizer, --lr-scheduler),
 * resolves the configuration, restores checkpoint_last when there is one,
 * and hands everything to the trainer. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/fsq_checkpoint.h"
#include "cli/optimizer_overrides.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "registry/fsq_registry.h"
#include "train/fsq_distributed.h"
#include "train/fsq_loss_scaler.h"
#include "train/fsq_trainer.h"
#include "upgrade/fsq_upgrade.h"

#define LOGGER "fairseq_cli.train"

static const char *const log_formats[] = {"json", "none", "simple", "tqdm", NULL};
static const char *const dist_backends[] = {"gloo", "mpi", "nccl", NULL};
static const char *const ddp_backends[] = {"c10d", "fully_sharded", "legacy_ddp", "no_c10d",
                                           "pytorch_ddp", "slowmo", NULL};

static const fsq_option train_options[] = {
    /* common */
    {"user-dir", FSQ_OPT_STRING, NULL, "path to a python module containing custom extensions (a component directory)", NULL, NULL},
    {"seed", FSQ_OPT_INT, "1", "pseudo random number generator seed", NULL, NULL},
    {"log-format", FSQ_OPT_CHOICE, NULL, "log format to use", log_formats, NULL},
    {"log-interval", FSQ_OPT_INT, "100", "log progress every N batches (when progress bar is disabled)", NULL, NULL},
    {"cpu", FSQ_OPT_BOOL, NULL, "use CPU instead of CUDA", NULL, NULL},
    {"device", FSQ_OPT_CHOICE, NULL, "where to train: cpu, or cuda (the first GPU); default: cuda when a GPU is present, as fairseq does, unless --cpu", fsq_cli_device_choices, NULL},
    /* mixed precision: fairseq's flags (the scaler's are checked whatever
     * the precision) */
    FSQ_CLI_PRECISION_OPTIONS,
    {"fp16-init-scale", FSQ_OPT_INT, "128", "default FP16 loss scale", NULL, NULL},
    {"fp16-scale-window", FSQ_OPT_INT, NULL, "number of updates before increasing loss scale", NULL, NULL},
    {"fp16-scale-tolerance", FSQ_OPT_FLOAT, "0.0", "pct of updates that can overflow before decreasing the loss scale", NULL, NULL},
    {"min-loss-scale", FSQ_OPT_FLOAT, "1e-4", "minimum FP16 loss scale, after which training is stopped", NULL, NULL},
    {"threshold-loss-scale", FSQ_OPT_FLOAT, NULL, "threshold FP16 loss scale from below", NULL, NULL},
    /* components */
    {"task", FSQ_OPT_STRING, "translation", "task", NULL, NULL},
    {"arch", FSQ_OPT_STRING, NULL, "model architecture", NULL, "a"},
    {"criterion", FSQ_OPT_STRING, "cross_entropy", "criterion", NULL, NULL},
    {"optimizer", FSQ_OPT_STRING, NULL, "optimizer", NULL, NULL},
    {"lr-scheduler", FSQ_OPT_STRING, "fixed", "learning rate scheduler", NULL, NULL},
    /* dataset */
    {"max-tokens", FSQ_OPT_INT, NULL, "maximum number of tokens in a batch", NULL, NULL},
    {"batch-size", FSQ_OPT_INT, NULL, "number of examples in a batch", NULL, NULL},
    {"required-batch-size-multiple", FSQ_OPT_INT, "8", "batch size will be a multiplier of this value", NULL, NULL},
    {"skip-invalid-size-inputs-valid-test", FSQ_OPT_BOOL, NULL, "ignore too long or too short lines in valid and test set", NULL, NULL},
    {"train-subset", FSQ_OPT_STRING, "train", "data subset to use for training (e.g. train, valid, test)", NULL, NULL},
    {"valid-subset", FSQ_OPT_STRING, "valid", "comma separated list of data subsets to use for validation", NULL, NULL},
    {"validate-interval", FSQ_OPT_INT, "1", "validate every N epochs", NULL, NULL},
    {"validate-interval-updates", FSQ_OPT_INT, "0", "validate every N updates", NULL, NULL},
    {"disable-validation", FSQ_OPT_BOOL, NULL, "disable validation", NULL, NULL},
    /* optimization */
    {"max-epoch", FSQ_OPT_INT, "0", "force stop training at specified epoch", NULL, NULL},
    {"max-update", FSQ_OPT_INT, "0", "force stop training at specified update", NULL, NULL},
    {"stop-time-hours", FSQ_OPT_FLOAT, "0", "force stop training after specified cumulative time (if >0)", NULL, NULL},
    {"clip-norm", FSQ_OPT_FLOAT, "0.0", "clip threshold of gradients", NULL, NULL},
    {"update-freq", FSQ_OPT_INT, "1", "update parameters every N_i batches", NULL, NULL},
    {"lr", FSQ_OPT_STRING, "0.25", "learning rate for the first N epochs; all epochs >N using LR_N", NULL, NULL},
    /* checkpoint */
    {"save-dir", FSQ_OPT_STRING, "checkpoints", "path to save checkpoints", NULL, NULL},
    {"restore-file", FSQ_OPT_STRING, "checkpoint_last.fsq", "filename from which to load checkpoint", NULL, NULL},
    {"optimizer-overrides", FSQ_OPT_STRING, "{}", "a dictionary used to override optimizer args when loading a checkpoint", NULL, NULL},
    {"finetune-from-model", FSQ_OPT_STRING, NULL, "finetune from a pretrained model; note that meters and lr scheduler will be reset", NULL, NULL},
    {"reset-dataloader", FSQ_OPT_BOOL, NULL, "if set, does not reload dataloader state from the checkpoint", NULL, NULL},
    {"reset-lr-scheduler", FSQ_OPT_BOOL, NULL, "if set, does not load lr scheduler state from the checkpoint", NULL, NULL},
    {"reset-meters", FSQ_OPT_BOOL, NULL, "if set, does not load meters from the checkpoint", NULL, NULL},
    {"reset-optimizer", FSQ_OPT_BOOL, NULL, "if set, does not load optimizer state from the checkpoint", NULL, NULL},
    {"save-interval", FSQ_OPT_INT, "1", "save a checkpoint every N epochs", NULL, NULL},
    {"save-interval-updates", FSQ_OPT_INT, "0", "save a checkpoint (and validate) every N updates", NULL, NULL},
    {"keep-interval-updates", FSQ_OPT_INT, "-1", "keep the last N checkpoints saved with --save-interval-updates", NULL, NULL},
    {"keep-last-epochs", FSQ_OPT_INT, "-1", "keep last N epoch checkpoints", NULL, NULL},
    {"keep-best-checkpoints", FSQ_OPT_INT, "-1", "keep best N checkpoints based on scores", NULL, NULL},
    {"no-save", FSQ_OPT_BOOL, NULL, "don't save models or checkpoints", NULL, NULL},
    {"no-epoch-checkpoints", FSQ_OPT_BOOL, NULL, "only store last and best checkpoints", NULL, NULL},
    {"no-last-checkpoints", FSQ_OPT_BOOL, NULL, "don't store last checkpoints", NULL, NULL},
    {"no-save-optimizer-state", FSQ_OPT_BOOL, NULL, "don't save optimizer-state as part of checkpoint", NULL, NULL},
    {"best-checkpoint-metric", FSQ_OPT_CHOICE, "loss", "metric to use for saving \"best\" checkpoints", (const char *const[]){"loss", NULL}, NULL},
    {"patience", FSQ_OPT_INT, "-1", "early stop training if valid performance doesn't improve for N consecutive validation runs", NULL, NULL},
    {"checkpoint-suffix", FSQ_OPT_STRING, "", "suffix to add to the checkpoint file name", NULL, NULL},
    /* distributed training: the ranks are mpirun's */
    {"distributed-world-size", FSQ_OPT_INT, NULL, "total number of GPUs across all nodes (here: ranks; must equal mpirun's -np)", NULL, NULL},
    {"distributed-backend", FSQ_OPT_CHOICE, NULL, "distributed backend (gloo and mpi: MPI collectives on the CPU; nccl: not yet)", dist_backends, NULL},
    {"distributed-no-spawn", FSQ_OPT_BOOL, NULL, "do not spawn multiple processes even if multiple GPUs are visible (mpirun starts the ranks)", NULL, NULL},
    {"ddp-backend", FSQ_OPT_CHOICE, "pytorch_ddp", "DistributedDataParallel backend (gradients are summed across ranks in buckets)", ddp_backends, NULL},
    {"bucket-cap-mb", FSQ_OPT_INT, "25", "bucket size for reduction", NULL, NULL},
    {"heartbeat-timeout", FSQ_OPT_FLOAT, "-1", "kill the job if no progress is made in N seconds; set to -1 to disable (a silent rank is still declared lost after 300 s)", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_config_selector selectors[] = {
    {"task", FSQ_KIND_TASK},           {"arch", FSQ_KIND_MODEL},
    {"criterion", FSQ_KIND_CRITERION}, {"optimizer", FSQ_KIND_OPTIMIZER},
    {"lr-scheduler", FSQ_KIND_LR_SCHEDULER}, FSQ_SELECTOR_END};

static const uint32_t ops_versions[FSQ_KIND_COUNT] = {
    FSQ_MODEL_OPS_VERSION, FSQ_TASK_OPS_VERSION, FSQ_CRITERION_OPS_VERSION,
    FSQ_OPTIMIZER_OPS_VERSION, FSQ_LR_SCHEDULER_OPS_VERSION};

/* The chosen components' ops, checked against the layouts this build knows. */
static fsq_status collect_parts(const fsq_config *c, fsq_trainer_parts *parts) {
  const void *ops[FSQ_KIND_COUNT] = {0};
  for (int k = 0; k < FSQ_KIND_COUNT; k++) {
    const fsq_registry_entry *e = c->chosen[k];
    if (e == NULL)
      return fsq_error(FSQ_ERR_INVALID, "no %s chosen (--%s)", fsq_kind_name((fsq_component_kind)k),
                       k == FSQ_KIND_MODEL ? "arch" : k == FSQ_KIND_LR_SCHEDULER ? "lr-scheduler"
                                                                                  : fsq_kind_name((fsq_component_kind)k));
    if (e->component->ops == NULL || e->component->ops_version != ops_versions[k])
      return fsq_error(FSQ_ERR_VERSION, "%s: %s ops version %u, this fairseq-train needs %u",
                       e->path, fsq_kind_name((fsq_component_kind)k), e->component->ops_version,
                       ops_versions[k]);
    ops[k] = e->component->ops;
  }
  parts->model = ops[FSQ_KIND_MODEL];
  parts->task = ops[FSQ_KIND_TASK];
  parts->criterion = ops[FSQ_KIND_CRITERION];
  parts->optimizer = ops[FSQ_KIND_OPTIMIZER];
  parts->lr_scheduler = ops[FSQ_KIND_LR_SCHEDULER];
  return fsq_cli_device(c->cfg, &parts->backend);
}

static void report_step(void *ctx, const char *subject, const char *from, const char *to,
                        const char *description) {
  fsq_log_info("fairseq.checkpoint_utils", "upgrading %s %s -> %s: %s", subject, from, to,
               description ? description : "");
}

/* Loads path through the upgrade chain and restores it into t (all of it,
 * or only the parameters). The loader's messages name the file; the
 * trainer's do not. */
static fsq_status restore_from(fsq_trainer *t, const fsq_config *c, const char *path,
                               int params_only) {
  fsq_state *st = NULL;
  fsq_upgrade_options up = {0, report_step, NULL, path};
  fsq_status s = fsq_checkpoint_load_upgraded(path, NULL, c->registry, &up, &st, NULL);
  if (s == FSQ_OK) {
    s = params_only ? fsq_trainer_restore_params(t, st) : fsq_trainer_restore(t, st);
    if (s != FSQ_OK) fsq_error_wrap(s, "%s", path);
  }
  if (s == FSQ_OK) {
    int64_t epoch = 0, index = 0, updates = 0;
    fsq_state_get_progress(st, &epoch, &index, &updates);
    fsq_log_info("fairseq.trainer", "Loaded checkpoint %s (epoch %lld @ %lld updates)", path,
                 (long long)epoch, (long long)updates);
  }
  fsq_state_free(st);
  return s;
}

static int cfg_flag(const fsq_config *c, const char *key) {
  int v = 0;
  fsq_json_get_bool(c->cfg, key, &v);
  return v;
}

/* The file to resume from: checkpoint_last{suffix}.fsq in --save-dir, or
 * --restore-file. Returns whether it is checkpoint_last. */
static int restore_path(const fsq_config *c, char *path, size_t size) {
  const char *file = "checkpoint_last.fsq", *dir = "checkpoints", *suffix = "";
  fsq_json_get_string(c->cfg, "restore_file", &file);
  fsq_json_get_string(c->cfg, "save_dir", &dir);
  fsq_json_get_string(c->cfg, "checkpoint_suffix", &suffix);
  int is_last = strcmp(file, "checkpoint_last.fsq") == 0;
  if (is_last)
    snprintf(path, size, "%s/checkpoint_last%s.fsq", dir, suffix);
  else
    snprintf(path, size, "%s", file);
  return is_last;
}

/* fairseq's load_checkpoint: checkpoint_last in --save-dir unless another
 * --restore-file is given; on a first launch, --finetune-from-model. */
static fsq_status restore(fsq_trainer *t, const fsq_config *c) {
  const char *finetune = NULL;
  fsq_json_get_string(c->cfg, "finetune_from_model", &finetune);
  char path[4096];
  int is_last = restore_path(c, path, sizeof path);
  if (finetune != NULL && (cfg_flag(c, "reset_optimizer") || cfg_flag(c, "reset_lr_scheduler") ||
                           cfg_flag(c, "reset_meters") || cfg_flag(c, "reset_dataloader")))
    return fsq_error(FSQ_ERR_INVALID, "--finetune-from-model can not be set together with either "
                                      "--reset-optimizer or reset_lr_scheduler or reset_meters or "
                                      "reset_dataloader");
  if (finetune != NULL && !is_last)
    return fsq_error(FSQ_ERR_INVALID, "--finetune-from-model and --restore-file (non-default "
                                      "value) can not be specified together");
  if (access(path, F_OK) == 0) return restore_from(t, c, path, 0);
  if (!is_last) return fsq_error(FSQ_ERR_NOT_FOUND, "--restore-file %s: no such file", path);
  if (finetune == NULL) {
    fsq_log_info("fairseq.trainer", "No existing checkpoint found %s", path);
    return FSQ_OK;
  }
  if (access(finetune, F_OK) != 0)
    return fsq_error(FSQ_ERR_NOT_FOUND, "--finetune-from-model %s does not exist", finetune);
  fsq_log_info("fairseq.checkpoint_utils", "loading pretrained model from %s: optimizer, lr "
               "scheduler, meters, dataloader will be reset", finetune);
  return restore_from(t, c, finetune, 1);
}

/* A lost or hung rank (fsq_dist's helper thread, or a collective's
 * deadline): one line naming it, then the whole job ends. */
static void on_dist_failure(const char *message, void *ctx) {
  fsq_dist *dist = ctx;
  fprintf(stderr, "fairseq-train: error: rank %d: %s\n", fsq_dist_rank(dist), message);
  fflush(stderr);
  fflush(stdout);
  fsq_dist_abort(dist, 1);
}

/* The distributed flags against the job mpirun started. */
static fsq_status check_dist_flags(const fsq_config *c, fsq_dist *dist) {
  int64_t ws = 0, cap = 25;
  const char *backend = NULL, *ddp = "pytorch_ddp";
  fsq_json_get_string(c->cfg, "distributed_backend", &backend);
  fsq_json_get_string(c->cfg, "ddp_backend", &ddp);
  fsq_json_get_int64(c->cfg, "bucket_cap_mb", &cap);
  if (fsq_json_get_int64(c->cfg, "distributed_world_size", &ws) == FSQ_OK && ws != fsq_dist_size(dist))
    return fsq_error(FSQ_ERR_INVALID,
                     "--distributed-world-size %lld, but this job has %d rank(s): the ranks are "
                     "mpirun's (mpirun -np %lld fairseq-train ...), or leave the flag out",
                     (long long)ws, fsq_dist_size(dist), (long long)ws);
  if (backend != NULL && strcmp(backend, "nccl") == 0)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "--distributed-backend nccl: gradients are not reduced with NCCL yet (only "
                     "its bootstrap exists, see docs/distributed.md); use mpi or gloo (both: MPI "
                     "collectives on the CPU)");
  if (strcmp(ddp, "fully_sharded") == 0 || strcmp(ddp, "slowmo") == 0)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "--ddp-backend %s: not implemented; every rank keeps the whole model and "
                     "gradients are summed in buckets (use pytorch_ddp, c10d, legacy_ddp or "
                     "no_c10d)", ddp);
  if (cap < 1) return fsq_error(FSQ_ERR_INVALID, "--bucket-cap-mb %lld: must be >= 1", (long long)cap);
  /* every rank must train the same model on the same data */
  const char *text = json_object_to_json_string_ext(c->cfg, JSON_C_TO_STRING_PLAIN);
  return fsq_dist_check_same(dist, text, strlen(text), "the configuration (flags)");
}

/* --fp16 and --bf16 train a 16-bit model with f32 master weights (fairseq's
 * FP16Optimizer, with the loss scaler for f16). The loss scaler's flags are
 * checked first, whatever the precision, so a bad value is named now and
 * not on the first f16 run. */
static fsq_status check_precision_flags(const fsq_config *c, int world) {
  fsq_loss_scaler_options scaler;
  fsq_status s = fsq_loss_scaler_options_from_config(c->cfg, world, &scaler);
  if (s != FSQ_OK) return s;
  fsq_dtype dtype;
  return fsq_cli_precision(c->cfg, &dtype); /* both at once: refused */
}

/* fairseq applies --optimizer-overrides when it loads optimizer state, so
 * only when a checkpoint will be restored (checkpoint_last or
 * --restore-file; not --finetune-from-model, which resets the optimizer). */
static fsq_status optimizer_overrides(fsq_config *c) {
  const char *text = "{}";
  fsq_json_get_string(c->cfg, "optimizer_overrides", &text);
  char path[4096];
  restore_path(c, path, sizeof path);
  if (cfg_flag(c, "reset_optimizer") || access(path, F_OK) != 0) return FSQ_OK;
  return fsq_apply_optimizer_overrides(c->cfg, c->chosen[FSQ_KIND_OPTIMIZER]->component->name,
                                       text);
}

/* Rank 0's share of update time spent waiting for gradient reduction
 * (scripts/bench-distributed reads this line). */
static void log_comm_stats(const fsq_trainer *t) {
  fsq_trainer_comm_stats cs = fsq_trainer_get_comm_stats(t);
  double per = cs.synced_updates ? (double)cs.posted_during_backward / (double)cs.synced_updates : 0;
  fsq_log_info("fairseq.distributed.utils",
               "gradient sync: %d ranks, %llu updates, waited %.3f s of %.3f s in updates "
               "(%.1f%%); buckets posted during backward: %.1f of %zu per update",
               cs.world, (unsigned long long)cs.synced_updates, cs.comm_wait_s, cs.update_s,
               cs.update_s > 0 ? 100.0 * cs.comm_wait_s / cs.update_s : 0.0, per, cs.buckets);
}

static int train(fsq_config *c) {
  fsq_trainer_parts parts;
  fsq_trainer *t = NULL;
  fsq_dist *dist = NULL;
  fsq_dist_options dopts;
  fsq_dist_options_default(&dopts);
  fsq_json_get_double(c->cfg, "heartbeat_timeout", &dopts.heartbeat_timeout);
  fsq_status s = fsq_dist_init(&dopts, &dist);
  if (s != FSQ_OK) {
    fprintf(stderr, "fairseq-train: error: %s\n", fsq_error_message());
    return 1;
  }
  int world = fsq_dist_size(dist), rank = fsq_dist_rank(dist);
  /* only the master logs at INFO, as fairseq's distributed_utils sets up */
  if (rank != 0 && fsq_log_get_level() < FSQ_LOG_WARNING) fsq_log_set_level(FSQ_LOG_WARNING);
  fsq_dist_set_failure_handler(dist, on_dist_failure, dist);
  s = check_precision_flags(c, world);
  if (s == FSQ_OK) s = check_dist_flags(c, dist);
  if (s == FSQ_OK) s = collect_parts(c, &parts);
  if (s == FSQ_OK) s = optimizer_overrides(c);
  if (s == FSQ_OK) {
    fsq_log_info(LOGGER, "%s", json_object_to_json_string_ext(c->cfg, JSON_C_TO_STRING_PLAIN));
    s = fsq_trainer_create(c->cfg, &parts, &t);
  }
  if (s == FSQ_OK) {
    int64_t cap = 25;
    fsq_json_get_int64(c->cfg, "bucket_cap_mb", &cap);
    s = fsq_trainer_set_dist(t, dist, (size_t)cap << 20);
    if (s == FSQ_OK && world > 1)
      fsq_log_info("fairseq.distributed.utils",
                   "distributed init: %d ranks over MPI (thread level %d), --bucket-cap-mb %lld, "
                   "--heartbeat-timeout %g", world, fsq_dist_thread_level(dist), (long long)cap,
                   dopts.heartbeat_timeout);
  }
  if (s == FSQ_OK) {
    const char *mt = json_object_to_json_string(json_object_object_get(c->cfg, "max_tokens"));
    const char *bs = json_object_to_json_string(json_object_object_get(c->cfg, "batch_size"));
    fsq_log_info(LOGGER, "training on %d devices (GPUs/TPUs)", world);
    fsq_log_info(LOGGER, "max tokens per device = %s and max sentences per device = %s",
                 strcmp(mt, "null") ? mt : "None", strcmp(bs, "null") ? bs : "None");
    s = restore(t, c);
  }
  if (s == FSQ_OK) s = fsq_trainer_run(t);
  if (s == FSQ_OK && world > 1) log_comm_stats(t);
  fsq_trainer_destroy(t);
  if (s != FSQ_OK) {
    if (world > 1) {
      fprintf(stderr, "fairseq-train: error: rank %d: %s\n", rank, fsq_error_message());
      fflush(stderr);
      fflush(stdout);
      fsq_dist_abort(dist, 1); /* ends every rank */
    } else {
      fprintf(stderr, "fairseq-train: error: %s\n", fsq_error_message());
    }
    fsq_dist_finalize(dist);
    return 1;
  }
  if (fsq_dist_finalize(dist) != FSQ_OK) {
    fprintf(stderr, "fairseq-train: error: rank %d: %s\n", rank, fsq_error_message());
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  fsq_config c;
  int rc = fsq_cli_parse_data_args("fairseq-train", "DATA --arch ARCH --optimizer OPT [options]",
                                   train_options, selectors, argc, argv, &c);
  if (rc >= 0) return rc;
  json_object_object_add(c.cfg, "data", json_object_get(json_object_array_get_idx(c.positionals, 0)));
  rc = train(&c);
  fsq_config_free(&c);
  return rc;
}
