/* chain.c: plans and runs the upgrade chain over a loaded checkpoint. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "upgrade/fsq_upgrade.h"

static const fsq_upgrade_options no_options = {0};

static const char *label(const fsq_upgrade_options *opt) {
  return opt->label != NULL ? opt->label : "checkpoint";
}

static void tell(const fsq_upgrade_options *opt, const char *subject, const char *from,
                 const char *to, const char *description) {
  if (opt->report != NULL) opt->report(opt->ctx, subject, from, to, description ? description : "");
}

fsq_status fsq_upgrade_format(fsq_state *st, const fsq_format_step *steps, int64_t target,
                              const fsq_upgrade_options *opt, size_t *applied) {
  if (opt == NULL) opt = &no_options;
  int64_t format = fsq_state_format_version(st);
  while (format < target) {
    const fsq_format_step *s = steps;
    while (s->apply != NULL && s->from_format != format) s++;
    if (s->apply == NULL)
      return fsq_error(FSQ_ERR_VERSION, "%s: no upgrade step from checkpoint format %lld",
                       label(opt), (long long)format);
    if (s->to_format != format + 1)
      return fsq_error(FSQ_ERR_INTERNAL, "format step %lld -> %lld: steps go one format at a time",
                       (long long)s->from_format, (long long)s->to_format);
    char from[24], to[24];
    snprintf(from, sizeof from, "%lld", (long long)s->from_format);
    snprintf(to, sizeof to, "%lld", (long long)s->to_format);
    tell(opt, "format", from, to, s->description);
    if (applied != NULL) (*applied)++;
    if (!opt->dry_run) {
      fsq_status r = s->apply(st);
      if (r != FSQ_OK) return fsq_error_wrap(r, "%s: format step %s -> %s", label(opt), from, to);
      json_object_object_add(fsq_state_meta(st), "format_version", json_object_new_int64(s->to_format));
    }
    format = s->to_format;
  }
  return FSQ_OK;
}

/* The next step from v toward `installed`: from <= v < to <= installed,
 * smallest to. NULL when none. A table with a bad version is a bug in the
 * component: *bad is set. */
static const fsq_upgrade_step *next_step(const fsq_component *c, fsq_semver v,
                                         fsq_semver installed, fsq_semver *to_out, int *bad) {
  const fsq_upgrade_step *best = NULL;
  fsq_semver best_to = {0, 0, 0};
  for (const fsq_upgrade_step *s = c->upgrades; s != NULL && s->apply != NULL; s++) {
    fsq_semver from, to;
    if (fsq_semver_parse(s->from_version, &from) != FSQ_OK ||
        fsq_semver_parse(s->to_version, &to) != FSQ_OK || fsq_semver_compare(from, to) >= 0) {
      *bad = 1;
      return s;
    }
    if (fsq_semver_compare(from, v) > 0 || fsq_semver_compare(v, to) >= 0 ||
        fsq_semver_compare(to, installed) > 0)
      continue;
    if (best == NULL || fsq_semver_compare(to, best_to) < 0) {
      best = s;
      best_to = to;
    }
  }
  *to_out = best_to;
  return best;
}

static fsq_status upgrade_one(fsq_state *st, const fsq_registry *reg, const char *kind_name,
                              const fsq_upgrade_options *opt, size_t *applied) {
  const char *name = NULL, *version = NULL;
  fsq_status s = fsq_state_get_component(st, kind_name, &name, &version);
  if (s != FSQ_OK) return fsq_error_wrap(s, "%s", label(opt));
  int kind = fsq_kind_parse(kind_name);
  if (kind < 0)
    return fsq_error(FSQ_ERR_FORMAT, "%s: meta.json records an unknown component kind '%s'",
                     label(opt), kind_name);
  fsq_semver v;
  if (fsq_semver_parse(version, &v) != FSQ_OK)
    return fsq_error(FSQ_ERR_FORMAT, "%s: %s %s: recorded version '%s' is not MAJOR.MINOR.PATCH",
                     label(opt), kind_name, name, version);
  const fsq_registry_entry *e = fsq_registry_find(reg, (fsq_component_kind)kind, name, NULL);
  if (e == NULL)
    return fsq_error_wrap(FSQ_ERR_NOT_FOUND, "%s: %s %s %s is recorded", label(opt), kind_name,
                          name, version);
  char own_name[128], own_version[32];
  snprintf(own_name, sizeof own_name, "%s", name);
  snprintf(own_version, sizeof own_version, "%s", version);
  name = own_name; /* steps may rewrite meta.json */
  version = own_version;
  char subject[160];
  snprintf(subject, sizeof subject, "%.31s %.120s", kind_name, name);
  if (fsq_semver_compare(v, e->version) > 0)
    return fsq_error(FSQ_ERR_VERSION,
                     "%s: %s %s is newer than the installed %s (%s): install %s %s or newer",
                     label(opt), subject, version, e->component->version, e->path, name, version);
  char current[32];
  snprintf(current, sizeof current, "%s", version);
  while (fsq_semver_compare(v, e->version) < 0) {
    fsq_semver to;
    int bad = 0;
    const fsq_upgrade_step *step = next_step(e->component, v, e->version, &to, &bad);
    if (bad)
      return fsq_error(FSQ_ERR_INTERNAL, "%s (%s): upgrade step '%s' -> '%s' has bad versions",
                       subject, e->path, step->from_version, step->to_version);
    if (step == NULL) {
      if (v.major == e->version.major) break; /* same MAJOR: compatible state */
      return fsq_error(FSQ_ERR_VERSION,
                       "%s: %s %s: no upgrade step from %s toward the installed %s (%s)",
                       label(opt), subject, version, current, e->component->version, e->path);
    }
    tell(opt, subject, current, step->to_version, step->description);
    if (applied != NULL) (*applied)++;
    if (!opt->dry_run && (s = step->apply(st)) != FSQ_OK)
      return fsq_error_wrap(s, "%s: %s step %s -> %s", label(opt), subject, current,
                            step->to_version);
    v = to;
    snprintf(current, sizeof current, "%s", step->to_version);
  }
  if (!opt->dry_run && strcmp(version, e->component->version) != 0)
    return fsq_state_set_component(st, kind_name, name, e->component->version);
  return FSQ_OK;
}

fsq_status fsq_upgrade_components(fsq_state *st, const fsq_registry *reg,
                                  const fsq_upgrade_options *opt, size_t *applied) {
  if (opt == NULL) opt = &no_options;
  json_object *comps = NULL;
  if (!json_object_object_get_ex(fsq_state_meta(st), "components", &comps)) return FSQ_OK;
  if (!json_object_is_type(comps, json_type_object))
    return fsq_error(FSQ_ERR_FORMAT, "%s: meta.json: \"components\" is not an object", label(opt));
  /* Kinds first, then steps: set_component replaces entries while we walk. */
  const char *kinds[32];
  size_t n = 0;
  json_object_object_foreach(comps, kind, val) {
    (void)val;
    if (n < 32) kinds[n++] = kind;
  }
  char copies[32][32];
  for (size_t i = 0; i < n; i++) snprintf(copies[i], sizeof copies[i], "%s", kinds[i]);
  for (size_t i = 0; i < n; i++) {
    fsq_status s = upgrade_one(st, reg, copies[i], opt, applied);
    if (s != FSQ_OK) return s;
  }
  return FSQ_OK;
}

fsq_status fsq_upgrade_state(fsq_state *st, const fsq_registry *reg,
                             const fsq_upgrade_options *opt, size_t *applied) {
  if (applied != NULL) *applied = 0;
  fsq_status s = fsq_upgrade_format(st, fsq_format_steps, FSQ_CHECKPOINT_FORMAT, opt, applied);
  return s != FSQ_OK ? s : fsq_upgrade_components(st, reg, opt, applied);
}

fsq_status fsq_checkpoint_load_upgraded(const char *path, const fsq_ckpt_load_options *load,
                                        const fsq_registry *reg, const fsq_upgrade_options *opt,
                                        fsq_state **out, size_t *applied) {
  fsq_upgrade_options run = opt != NULL ? *opt : no_options;
  run.dry_run = 0;
  if (run.label == NULL) run.label = path;
  fsq_status s = fsq_checkpoint_load(path, load, out);
  if (s != FSQ_OK) return s;
  s = fsq_upgrade_state(*out, reg, &run, applied);
  if (s != FSQ_OK) {
    fsq_state_free(*out);
    *out = NULL;
  }
  return s;
}
