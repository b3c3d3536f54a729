/* arch.c: applying a named architecture's presets to a configuration, as
 * fairseq's architecture functions do with getattr(args, name, default). */
#include "registry/fsq_registry.h"

#include <json-c/json.h>
#include <string.h>

/* The value an "@ref" preset copies: cfg's, else the option's default. */
static fsq_status reference_value(const fsq_option_set *set, json_object *cfg, const char *ref,
                                  json_object **out) {
  char key[128];
  fsq_option_key(ref, key, sizeof key);
  json_object *v;
  if (json_object_object_get_ex(cfg, key, &v)) {
    *out = json_object_get(v);
    return FSQ_OK;
  }
  const fsq_option *opt = fsq_option_set_find(set, ref);
  if (opt == NULL) return fsq_error(FSQ_ERR_INTERNAL, "preset refers to unknown option --%s", ref);
  return fsq_option_value(opt, opt->default_value, out);
}

static fsq_status apply_presets(const fsq_arch *arch, const fsq_option_set *set,
                                json_object *cfg) {
  for (const fsq_arch_preset *p = arch->presets; p != NULL && p->option != NULL; p++) {
    char key[128];
    fsq_option_key(p->option, key, sizeof key);
    if (json_object_object_get_ex(cfg, key, NULL)) continue; /* the user's value wins */
    const fsq_option *opt = fsq_option_set_find(set, p->option);
    if (opt == NULL)
      return fsq_error(FSQ_ERR_INTERNAL, "architecture %s presets unknown option --%s",
                       arch->name, p->option);
    json_object *v = NULL;
    fsq_status st = p->value != NULL && p->value[0] == '@'
                        ? reference_value(set, cfg, p->value + 1, &v)
                        : fsq_option_value(opt, p->value, &v);
    if (st != FSQ_OK)
      return fsq_error_wrap(FSQ_ERR_INTERNAL, "architecture %s, preset --%s", arch->name,
                            p->option);
    json_object_object_add(cfg, key, v);
  }
  return FSQ_OK;
}

fsq_status fsq_arch_apply(const fsq_registry_entry *model, const fsq_arch *arch,
                          const fsq_option_set *set, json_object *cfg) {
  const fsq_arch *a = arch;
  for (int depth = 0; a != NULL; depth++) {
    if (depth == 16)
      return fsq_error(FSQ_ERR_INTERNAL, "architecture %s: base chain too long", arch->name);
    fsq_status st = apply_presets(a, set, cfg);
    if (st != FSQ_OK) return st;
    if (a->base == NULL) break;
    const fsq_arch *base = NULL;
    for (const fsq_arch *b = model->component->archs; b != NULL && b->name != NULL; b++)
      if (strcmp(b->name, a->base) == 0) base = b;
    if (base == NULL)
      return fsq_error(FSQ_ERR_INTERNAL, "architecture %s: unknown base %s", a->name, a->base);
    a = base;
  }
  return FSQ_OK;
}
