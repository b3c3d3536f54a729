/* fairseq-validate: the loss of a trained model on one or more subsets
 * (fairseq_cli/validate.py): the model (the first of --path), its task and
 * the criterion it was trained with, one "valid on 'SUBSET' subset" line per
 * subset with loss, nll_loss, ppl, wps, wpb and bsz as fairseq prints them. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_text.h"
#include "generate/fsq_generate.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "registry/fsq_registry.h"
#include "train/fsq_meters.h"

#define LOGGER "fairseq_cli.validate"
#define MAX_STATS 32

static const char *const log_formats[] = {"json", "none", "simple", "tqdm", NULL};

static const fsq_option validate_options[] = {
    {"user-dir", FSQ_OPT_STRING, NULL, "path to a python module containing custom extensions (a component directory)", NULL, NULL},
    {"seed", FSQ_OPT_INT, "1", "pseudo random number generator seed", NULL, NULL},
    {"cpu", FSQ_OPT_BOOL, NULL, "use CPU instead of CUDA", NULL, NULL},
    {"device", FSQ_OPT_CHOICE, NULL, "where to compute: cpu, or cuda (the first GPU); default: cuda when a GPU is present, as fairseq does, unless --cpu", fsq_cli_device_choices, NULL},
    FSQ_CLI_PRECISION_OPTIONS,
    {"log-format", FSQ_OPT_CHOICE, NULL, "log format to use", log_formats, NULL},
    {"log-interval", FSQ_OPT_INT, "100", "log progress every N batches (when progress bar is disabled)", NULL, NULL},
    {"task", FSQ_OPT_STRING, "translation", "task (its options may override the checkpoint's)", NULL, NULL},
    {"path", FSQ_OPT_STRING, NULL, "path(s) to model file(s), colon separated", NULL, NULL},
    {"valid-subset", FSQ_OPT_STRING, "valid", "comma separated list of data subsets to use for validation", NULL, NULL},
    {"max-tokens", FSQ_OPT_INT, NULL, "maximum number of tokens in a batch", NULL, NULL},
    {"batch-size", FSQ_OPT_INT, NULL, "number of examples in a batch", NULL, NULL},
    {"required-batch-size-multiple", FSQ_OPT_INT, "8", "batch size will be a multiplier of this value", NULL, NULL},
    {"skip-invalid-size-inputs-valid-test", FSQ_OPT_BOOL, NULL, "ignore too long or too short lines in valid and test set", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_config_selector selectors[] = {{"task", FSQ_KIND_TASK}, FSQ_SELECTOR_END};

typedef struct validate_run {
  fsq_config *c;
  fsq_loaded_models lm;
  const fsq_criterion_ops *crit_ops;
  fsq_criterion *crit;
  fsq_ctx *ctx;
} validate_run;

/* The criterion the checkpoint was trained with, from its configuration. */
static fsq_status create_criterion(validate_run *r) {
  json_object *comps, *crit;
  const char *name = NULL;
  if (!json_object_object_get_ex(r->lm.cfg, "_components", &comps) ||
      !json_object_object_get_ex(comps, "criterion", &crit) ||
      fsq_json_get_string(crit, "name", &name) != FSQ_OK || name == NULL)
    return fsq_error(FSQ_ERR_FORMAT, "the checkpoint's configuration names no criterion");
  const fsq_registry_entry *e = fsq_registry_find(r->c->registry, FSQ_KIND_CRITERION, name, NULL);
  if (e == NULL) return fsq_error_code();
  if (e->component->ops == NULL || e->component->ops_version != FSQ_CRITERION_OPS_VERSION)
    return fsq_error(FSQ_ERR_VERSION, "%s: criterion ops version %u, fairseq-validate needs %u",
                     e->path, e->component->ops_version, FSQ_CRITERION_OPS_VERSION);
  r->crit_ops = e->component->ops;
  fsq_task_env env = {r->lm.task_ops->source_dictionary(r->lm.task),
                      r->lm.task_ops->target_dictionary(r->lm.task), 1};
  return r->crit_ops->create(r->lm.cfg, &env, &r->crit);
}

static fsq_batch_spec batch_spec(validate_run *r) {
  json_object *cfg = r->c->cfg;
  fsq_batch_spec spec = {0};
  int64_t seed = 1;
  fsq_json_get_int64(cfg, "max_tokens", &spec.max_tokens);
  fsq_json_get_int64(cfg, "batch_size", &spec.max_sentences);
  spec.required_batch_size_multiple = 8;
  fsq_json_get_int64(cfg, "required_batch_size_multiple", &spec.required_batch_size_multiple);
  fsq_json_get_bool(cfg, "skip_invalid_size_inputs_valid_test", &spec.ignore_invalid_inputs);
  fsq_json_get_int64(cfg, "seed", &seed);
  spec.seed = (uint64_t)seed;
  spec.num_shards = 1;
  const fsq_gen_model *m = &r->lm.models[0];
  m->ops->max_positions(m->model, &spec.max_source_positions, &spec.max_target_positions);
  return spec;
}

/* One batch through the criterion, without gradients or dropout. */
static fsq_status valid_batch(validate_run *r, const char *subset, const uint32_t *indices,
                              size_t count, fsq_meters *m) {
  fsq_ctx_reset(r->ctx);
  fsq_sample sample;
  fsq_criterion_log log;
  memset(&log, 0, sizeof log);
  fsq_status s = r->lm.task_ops->collate(r->lm.task, subset, indices, count, r->ctx, &sample);
  if (s != FSQ_OK) return s;
  const fsq_gen_model *model = &r->lm.models[0];
  if (r->crit_ops->forward(r->crit, r->ctx, model->ops, model->model, &sample, &log) == NULL)
    return fsq_ctx_status(r->ctx) != FSQ_OK ? fsq_ctx_status(r->ctx) : fsq_error_code();
  /* a device's failed kernels (or the CPU's 16-bit scratch) report here:
   * the batch's figures are not to be printed then */
  if ((s = fsq_ctx_kernels(r->ctx)->status()) != FSQ_OK) return s;
  /* fairseq's task.reduce_metrics, then the criterion's */
  fsq_meters_log_speed(m, "wps", log.ntokens, 90, 1);
  fsq_meters_log_scalar(m, "wpb", log.ntokens, 1, 180, 1);
  fsq_meters_log_scalar(m, "bsz", log.nsentences, 1, 190, 1);
  return r->crit_ops->reduce_metrics(r->crit, &log, m);
}

static fsq_status validate_subset(validate_run *r, const char *subset, fsq_log_format format) {
  fsq_batch_spec spec = batch_spec(r);
  fsq_epoch_iter *it = NULL;
  fsq_status s = r->lm.task_ops->get_batch_iterator(r->lm.task, subset, &spec, &it);
  if (s == FSQ_OK) s = fsq_epoch_iter_begin(it, 1);
  fsq_meters *m = s == FSQ_OK ? fsq_meters_new() : NULL;
  if (s == FSQ_OK && m == NULL) s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
  const uint32_t *indices;
  size_t count;
  while (s == FSQ_OK && fsq_epoch_iter_next(it, &indices, &count))
    if (count > 0) s = valid_batch(r, subset, indices, count, m);
  if (s == FSQ_OK) {
    fsq_stat stats[MAX_STATS];
    size_t n = fsq_meters_smoothed(m, stats, MAX_STATS);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "valid on '%s' subset", subset);
    fsq_progress p;
    fsq_progress_init(&p, format, 0, 0, prefix, 0);
    fsq_progress_print(&p, stats, n, subset);
  }
  fsq_meters_free(m);
  return s;
}

static fsq_status run(validate_run *r, int argc, char **argv) {
  json_object *cfg = r->c->cfg;
  const char *path = NULL, *subsets = "valid", *format_name = NULL;
  const char *data = json_object_get_string(json_object_array_get_idx(r->c->positionals, 0));
  if (fsq_json_get_string(cfg, "path", &path) != FSQ_OK || path == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--path is required");
  int64_t max_tokens = 0, batch_size = 0;
  fsq_json_get_int64(cfg, "max_tokens", &max_tokens);
  fsq_json_get_int64(cfg, "batch_size", &batch_size);
  if (max_tokens <= 0 && batch_size <= 0)
    return fsq_error(FSQ_ERR_INVALID, "Must specify batch size either with --max-tokens or --batch-size");
  fsq_json_get_string(cfg, "valid_subset", &subsets);
  fsq_json_get_string(cfg, "log_format", &format_name);
  int format = fsq_log_format_parse(format_name, 0);
  fsq_log_info(LOGGER, "%s", json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
  fsq_log_info(LOGGER, "loading model(s) from %s", path);
  const fsq_kernels *k = NULL;
  fsq_dtype dtype = FSQ_F32;
  fsq_status s = fsq_cli_precision(cfg, &dtype);
  if (s == FSQ_OK) s = fsq_cli_device(cfg, &k);
  if (s != FSQ_OK) return s;
  json_object *over = fsq_cli_task_overrides(r->c, argc, argv);
  s = fsq_generate_load_models_on(k, dtype, path, data, over, r->c->registry, &r->lm);
  json_object_put(over);
  if (s == FSQ_OK) s = create_criterion(r);
  /* the batches are collated where the model computes */
  if (s == FSQ_OK && (r->ctx = fsq_ctx_create_on(r->lm.backend, 0)) == NULL) s = fsq_error_code();
  if (s != FSQ_OK) return s;
  fsq_ctx_set_training(r->ctx, 0);
  fsq_ctx_set_grad(r->ctx, 0);
  char list[1024];
  snprintf(list, sizeof list, "%s", subsets);
  char *save = NULL;
  for (char *subset = strtok_r(list, ",", &save); subset != NULL && s == FSQ_OK;
       subset = strtok_r(NULL, ",", &save))
    s = validate_subset(r, subset, (fsq_log_format)format);
  return s;
}

int main(int argc, char **argv) {
  fsq_config c;
  int rc = fsq_cli_parse_data_args("fairseq-validate", "DATA --path PATH [options]",
                                   validate_options, selectors, argc, argv, &c);
  if (rc >= 0) return rc;
  validate_run r;
  memset(&r, 0, sizeof r);
  r.c = &c;
  fsq_status s = run(&r, argc, argv);
  if (s != FSQ_OK) {
    fflush(stdout);
    fprintf(stderr, "fairseq-validate: error: %s\n", fsq_error_message());
  }
  if (r.crit != NULL) r.crit_ops->destroy(r.crit);
  fsq_ctx_destroy(r.ctx);
  fsq_loaded_models_free(&r.lm);
  fsq_config_free(&c);
  return s == FSQ_OK ? 0 : 1;
}
