/* config.c: from argv to one resolved json-c configuration, loading the
 * components the command line chooses (see fsq_registry.h). */
#define _GNU_SOURCE
#include "registry/fsq_registry.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The selector's value: the user's, else the program's default, else NULL. */
static const char *selector_value(const fsq_option_set *set, json_object *given,
                                  const char *option) {
  char key[128];
  fsq_option_key(option, key, sizeof key);
  json_object *v;
  if (json_object_object_get_ex(given, key, &v) && v != NULL) return json_object_get_string(v);
  const fsq_option *opt = fsq_option_set_find(set, option);
  return opt != NULL ? opt->default_value : NULL;
}

static fsq_status open_registry(json_object *given, fsq_config *c) {
  json_object *dir_value = NULL;
  const char *user_dir = NULL;
  if (json_object_object_get_ex(given, "user_dir", &dir_value) && dir_value != NULL) {
    user_dir = json_object_get_string(dir_value);
    struct stat st;
    if (stat(user_dir, &st) != 0 || !S_ISDIR(st.st_mode))
      return fsq_error(FSQ_ERR_NOT_FOUND, "--user-dir %s: not a directory", user_dir);
  }
  const char *extra[] = {user_dir, NULL};
  c->registry = fsq_registry_open(user_dir != NULL ? extra : NULL);
  if (c->registry == NULL) return fsq_error_code();
  for (size_t i = 0; i < fsq_registry_problem_count(c->registry); i++)
    fsq_log_warning("fairseq.registry", "%s", fsq_registry_problem(c->registry, i));
  return FSQ_OK;
}

/* Finds each selected component and adds its options to the set. */
static fsq_status choose_components(const fsq_config_selector *selectors, json_object *given,
                                    fsq_config *c) {
  for (const fsq_config_selector *s = selectors; s != NULL && s->option != NULL; s++) {
    const char *value = selector_value(c->options, given, s->option);
    if (value == NULL) continue;
    const fsq_registry_entry *e = NULL;
    if (s->kind == FSQ_KIND_MODEL) {
      if (fsq_registry_find_arch(c->registry, value, &e, &c->arch) != FSQ_OK)
        return fsq_error_wrap(FSQ_ERR_NOT_FOUND, "--%s", s->option);
    } else if ((e = fsq_registry_find_spec(c->registry, s->kind, value)) == NULL) {
      return fsq_error_wrap(FSQ_ERR_NOT_FOUND, "--%s", s->option);
    }
    c->chosen[s->kind] = e;
    if (e->component->options == NULL) continue;
    char *group = NULL;
    if (asprintf(&group, "%s %s %s", fsq_kind_name(s->kind), e->component->name,
                 e->component->version) < 0)
      return fsq_error(FSQ_ERR_NOMEM, "out of memory");
    fsq_status st = fsq_option_set_add(c->options, group, e->component->options);
    free(group);
    if (st != FSQ_OK) return st;
  }
  return FSQ_OK;
}

static void record_components(fsq_config *c) {
  json_object *all = json_object_new_object();
  for (int k = 0; k < FSQ_KIND_COUNT; k++) {
    const fsq_registry_entry *e = c->chosen[k];
    if (e == NULL) continue;
    json_object *one = json_object_new_object();
    json_object_object_add(one, "name", json_object_new_string(e->component->name));
    json_object_object_add(one, "version", json_object_new_string(e->component->version));
    json_object_object_add(one, "path", json_object_new_string(e->path));
    json_object_object_add(all, fsq_kind_name((fsq_component_kind)k), one);
  }
  json_object_object_add(c->cfg, "_components", all);
}

static fsq_status resolve(const char *program, const fsq_option *program_options,
                          const fsq_config_selector *selectors, int argc, char **argv,
                          fsq_config *c) {
  c->options = fsq_option_set_new();
  if (c->options == NULL) return fsq_error_code();
  fsq_status st = fsq_option_set_add(c->options, program, program_options);
  json_object *known = NULL;
  if (st == FSQ_OK) st = fsq_options_parse_known(c->options, argc, argv, &known);
  if (st == FSQ_OK) st = open_registry(known, c);
  if (st == FSQ_OK) st = choose_components(selectors, known, c);
  json_object_put(known);
  if (st == FSQ_OK) st = fsq_options_parse(c->options, argc, argv, &c->cfg, &c->positionals);
  if (st != FSQ_OK) return st;
  json_object *help = NULL;
  if (json_object_object_get_ex(c->cfg, "help", &help)) {
    c->help = 1;
    json_object_object_del(c->cfg, "help");
    return FSQ_OK;
  }
  if (c->arch != NULL)
    st = fsq_arch_apply(c->chosen[FSQ_KIND_MODEL], c->arch, c->options, c->cfg);
  if (st == FSQ_OK) st = fsq_options_fill_defaults(c->options, c->cfg);
  if (st == FSQ_OK) record_components(c);
  return st;
}

fsq_status fsq_config_resolve(const char *program, const fsq_option *program_options,
                              const fsq_config_selector *selectors, int argc, char **argv,
                              fsq_config *out) {
  memset(out, 0, sizeof *out);
  fsq_status st = resolve(program, program_options, selectors, argc, argv, out);
  if (st != FSQ_OK) fsq_config_free(out);
  return st;
}

void fsq_config_free(fsq_config *c) {
  json_object_put(c->cfg);
  json_object_put(c->positionals);
  fsq_option_set_free(c->options);
  fsq_registry_close(c->registry);
  memset(c, 0, sizeof *c);
}
