/* load.c: checkpoints for inference (fairseq's
 * checkpoint_utils.load_model_ensemble) and the generation options read
 * from a resolved configuration. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/fsq_checkpoint.h"
#include "generate/fsq_generate.h"
#include "generate/generate_internal.h"
#include "registry/fsq_registry.h"
#include "upgrade/fsq_upgrade.h"

/* ---- options from a configuration --------------------------------------------- */

static int has(json_object *cfg, const char *key, json_object **v) {
  return json_object_object_get_ex(cfg, key, v) && *v != NULL;
}

static void get_i64(json_object *cfg, const char *key, int64_t *out) {
  json_object *v;
  if (has(cfg, key, &v)) *out = json_object_get_int64(v);
}

static void get_f64(json_object *cfg, const char *key, double *out) {
  json_object *v;
  if (has(cfg, key, &v)) *out = json_object_get_double(v);
}

static void get_bool(json_object *cfg, const char *key, int *out) {
  json_object *v;
  if (has(cfg, key, &v)) *out = json_object_get_boolean(v) ? 1 : 0;
}

fsq_status fsq_gen_options_from_cfg(json_object *cfg, fsq_gen_options *o) {
  get_i64(cfg, "beam", &o->beam);
  get_i64(cfg, "nbest", &o->nbest);
  get_f64(cfg, "max_len_a", &o->max_len_a);
  get_i64(cfg, "max_len_b", &o->max_len_b);
  get_i64(cfg, "min_len", &o->min_len);
  int unnormalized = !o->normalize_scores;
  get_bool(cfg, "unnormalized", &unnormalized);
  o->normalize_scores = !unnormalized;
  get_f64(cfg, "lenpen", &o->lenpen);
  get_f64(cfg, "unkpen", &o->unkpen);
  get_f64(cfg, "temperature", &o->temperature);
  get_bool(cfg, "match_source_len", &o->match_source_len);
  get_i64(cfg, "no_repeat_ngram_size", &o->no_repeat_ngram_size);
  get_bool(cfg, "sampling", &o->sampling);
  get_i64(cfg, "sampling_topk", &o->sampling_topk);
  get_f64(cfg, "sampling_topp", &o->sampling_topp);
  get_i64(cfg, "diverse_beam_groups", &o->diverse_beam_groups);
  get_f64(cfg, "diverse_beam_strength", &o->diverse_beam_strength);
  get_f64(cfg, "diversity_rate", &o->diversity_rate);
  get_bool(cfg, "score_reference", &o->score_reference);
  int64_t seed = (int64_t)o->seed;
  get_i64(cfg, "seed", &seed);
  o->seed = (uint64_t)seed;
  return fsq_gen_options_check(o);
}

/* ---- loading --------------------------------------------------------------------- */

void fsq_loaded_models_free(fsq_loaded_models *lm) {
  if (lm == NULL) return;
  for (int i = 0; i < lm->n; i++) {
    if (lm->models != NULL && lm->models[i].model != NULL) lm->models[i].ops->destroy(lm->models[i].model);
    if (lm->params != NULL) fsq_params_destroy(lm->params[i]);
  }
  if (lm->task != NULL) lm->task_ops->destroy(lm->task);
  free(lm->models);
  free(lm->params);
  json_object_put(lm->cfg);
  memset(lm, 0, sizeof *lm);
}

/* The component of kind the checkpoint names, checked against this build's
 * ops layout. */
static fsq_status find_component(fsq_state *st, json_object *cfg, const fsq_registry *reg,
                                 fsq_component_kind kind, uint32_t ops_version,
                                 const void **ops) {
  const char *name = NULL, *version = NULL;
  fsq_state_get_component(st, fsq_kind_name(kind), &name, &version);
  if (name == NULL && kind == FSQ_KIND_TASK) fsq_json_get_string(cfg, "task", &name);
  if (name == NULL)
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint names no %s component", fsq_kind_name(kind));
  const fsq_registry_entry *e = fsq_registry_find(reg, kind, name, NULL);
  if (e == NULL) return fsq_error_code();
  if (e->component->ops == NULL || e->component->ops_version != ops_version)
    return fsq_error(FSQ_ERR_VERSION, "%s: %s ops version %u, this program needs %u", e->path,
                     fsq_kind_name(kind), e->component->ops_version, ops_version);
  *ops = e->component->ops;
  return FSQ_OK;
}

static fsq_status copy_params(fsq_params *params, fsq_state *st) {
  size_t n = fsq_params_count(params);
  if (fsq_state_count(st, FSQ_CKPT_MODEL) != n)
    return fsq_error(FSQ_ERR_FORMAT, "checkpoint has %zu model tensors, the model has %zu "
                                     "(another architecture?)",
                     fsq_state_count(st, FSQ_CKPT_MODEL), n);
  for (size_t i = 0; i < n; i++) {
    fsq_tensor *p = fsq_params_at(params, i);
    fsq_ckpt_tensor *r = fsq_state_find(st, FSQ_CKPT_MODEL, p->name);
    size_t nbytes = (size_t)fsq_numel(p) * sizeof(float);
    if (r == NULL)
      return fsq_error(FSQ_ERR_FORMAT, "checkpoint has no model tensor '%s' (another architecture?)",
                       p->name);
    if (p->dtype != FSQ_F32 || r->dtype != FSQ_CKPT_F32 || r->nbytes != nbytes)
      return fsq_error(FSQ_ERR_FORMAT,
                       "checkpoint tensor '%s' is %s of %zu bytes, the model needs f32 of %zu",
                       p->name, fsq_ckpt_dtype_name(r->dtype), r->nbytes, nbytes);
    fsq_status s = fsq_upload(p, r->data); /* a memcpy on the host */
    if (s != FSQ_OK) return s;
  }
  return FSQ_OK;
}

/* One checkpoint: the configuration, (first only) the task, the model. */
static fsq_status load_one(const char *path, const char *data_dir, json_object *overrides,
                           const fsq_registry *reg, fsq_loaded_models *lm) {
  fsq_state *st = NULL;
  fsq_ckpt_load_options load = {NULL, NULL, 1};
  fsq_upgrade_options up = {0, NULL, NULL, path};
  fsq_status s = fsq_checkpoint_load_upgraded(path, &load, reg, &up, &st, NULL);
  json_object *cfg = NULL, *saved;
  if (s == FSQ_OK && (!json_object_object_get_ex(fsq_state_meta(st), "cfg", &saved) ||
                      !json_object_is_type(saved, json_type_object)))
    s = fsq_error(FSQ_ERR_FORMAT, "checkpoint has no cfg");
  if (s == FSQ_OK && json_object_deep_copy(saved, &cfg, NULL) != 0)
    s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
  if (s == FSQ_OK) {
    json_object_object_add(cfg, "data", json_object_new_string(data_dir));
    if (overrides != NULL) {
      json_object_object_foreach(overrides, key, val) {
        json_object_object_add(cfg, key, json_object_get(val));
      }
    }
  }
  if (s == FSQ_OK && lm->task == NULL) {
    const void *ops = NULL;
    s = find_component(st, cfg, reg, FSQ_KIND_TASK, FSQ_TASK_OPS_VERSION, &ops);
    if (s == FSQ_OK) {
      lm->task_ops = ops;
      s = lm->task_ops->create(cfg, &lm->task);
    }
  }
  const fsq_model_ops *mops = NULL;
  if (s == FSQ_OK) s = find_component(st, cfg, reg, FSQ_KIND_MODEL, FSQ_MODEL_OPS_VERSION, (const void **)&mops);
  if (s == FSQ_OK) {
    int i = lm->n;
    int64_t seed = 1;
    fsq_json_get_int64(cfg, "seed", &seed);
    fsq_task_env env = {lm->task_ops->source_dictionary(lm->task),
                        lm->task_ops->target_dictionary(lm->task), (uint64_t)seed};
    lm->params[i] = fsq_params_create_on(lm->backend);
    if (lm->params[i] == NULL) s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
    lm->models[i].ops = mops;
    lm->n++;
    if (s == FSQ_OK) s = mops->build(cfg, &env, lm->params[i], &lm->models[i].model);
    if (s == FSQ_OK) s = copy_params(lm->params[i], st);
    if (s == FSQ_OK && lm->dtype != FSQ_F32) s = fsq_params_convert(lm->params[i], lm->dtype);
  }
  if (s == FSQ_OK && lm->cfg == NULL) {
    lm->cfg = cfg;
    cfg = NULL;
  }
  json_object_put(cfg);
  fsq_state_free(st);
  return s == FSQ_OK ? s : fsq_error_wrap(s, "%s", path);
}

fsq_status fsq_generate_load_models(const char *paths, const char *data_dir,
                                    json_object *overrides, const fsq_registry *reg,
                                    fsq_loaded_models *out) {
  return fsq_generate_load_models_on(fsq_kernels_cpu(), FSQ_F32, paths, data_dir, overrides, reg,
                                     out);
}

fsq_status fsq_generate_load_models_on(const fsq_kernels *k, fsq_dtype dtype, const char *paths,
                                       const char *data_dir, json_object *overrides,
                                       const fsq_registry *reg, fsq_loaded_models *out) {
  memset(out, 0, sizeof *out);
  if (k == NULL) return fsq_error(FSQ_ERR_INVALID, "loading models: no backend");
  if (dtype != FSQ_F32 && dtype != FSQ_F16 && dtype != FSQ_BF16)
    return fsq_error(FSQ_ERR_INVALID, "loading models: cannot compute in %s (f32, f16 or bf16)",
                     fsq_dtype_name(dtype));
  out->backend = k;
  out->dtype = dtype;
  if (paths == NULL || *paths == '\0') return fsq_error(FSQ_ERR_INVALID, "--path: no checkpoint given");
  int n = 1;
  for (const char *p = paths; *p; p++) n += *p == ':';
  char *copy = strdup(paths);
  out->models = calloc((size_t)n, sizeof *out->models);
  out->params = calloc((size_t)n, sizeof *out->params);
  fsq_status s = FSQ_OK;
  if (copy == NULL || out->models == NULL || out->params == NULL)
    s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
  char *save = NULL;
  for (char *tok = s == FSQ_OK ? strtok_r(copy, ":", &save) : NULL; tok != NULL && s == FSQ_OK;
       tok = strtok_r(NULL, ":", &save))
    s = load_one(tok, data_dir, overrides, reg, out);
  if (s == FSQ_OK && out->n == 0) s = fsq_error(FSQ_ERR_INVALID, "--path %s: no checkpoint given", paths);
  free(copy);
  if (s != FSQ_OK) fsq_loaded_models_free(out);
  return s;
}
