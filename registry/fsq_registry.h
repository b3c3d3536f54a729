/* fsq_registry.h: finds, loads, checks and lists components, and resolves a
 * program's configuration from the chosen components' option tables. */
#ifndef FSQ_REGISTRY_H
#define FSQ_REGISTRY_H

#include <stdio.h>

#include "registry/fsq_component.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* ---- semantic versions -------------------------------------------------- */
typedef struct fsq_semver {
  unsigned major, minor, patch;
} fsq_semver;

fsq_status fsq_semver_parse(const char *text, fsq_semver *out);
int fsq_semver_compare(fsq_semver a, fsq_semver b); /* <0, 0, >0 */
/* A pin is "1", "1.2" or "1.2.3"; a version matches when the given parts agree. */
int fsq_semver_matches_pin(fsq_semver v, const char *pin);

/* ---- the registry -------------------------------------------------------- */
typedef struct fsq_registry fsq_registry;

typedef struct fsq_registry_entry {
  const fsq_component *component;
  const char *path; /* the .so it came from */
  fsq_semver version;
} fsq_registry_entry;

/* Search order: extra_dirs (e.g. fairseq's --user-dir, NULL-terminated list
 * or NULL), then each directory of $FSQ_COMPONENT_PATH, then the installed
 * directory. Each root holds <kind>/<name>/<version>/<name>.so. Files that
 * fail the checks are not loaded; each gives one line in the problem list.
 * Returns NULL only when out of memory. */
fsq_registry *fsq_registry_open(const char *const *extra_dirs);
/* The same over exactly these roots (tests). */
fsq_registry *fsq_registry_open_dirs(const char *const *roots);
void fsq_registry_close(fsq_registry *reg);

size_t fsq_registry_count(const fsq_registry *reg);
const fsq_registry_entry *fsq_registry_at(const fsq_registry *reg, size_t i);
size_t fsq_registry_problem_count(const fsq_registry *reg);
const char *fsq_registry_problem(const fsq_registry *reg, size_t i);

/* The newest version of kind/name, or the newest matching `pin` (NULL for
 * none). NULL with fsq_error set naming what is missing and what exists. */
const fsq_registry_entry *fsq_registry_find(const fsq_registry *reg, fsq_component_kind kind,
                                            const char *name, const char *pin);
/* "name" or "name@pin" in one string. */
const fsq_registry_entry *fsq_registry_find_spec(const fsq_registry *reg,
                                                 fsq_component_kind kind, const char *spec);
/* A named architecture ("transformer_iwslt_de_en" or "...@1.0"): the model
 * component that registers it (newest, or matching the pin) and the arch. */
fsq_status fsq_registry_find_arch(const fsq_registry *reg, const char *spec,
                                  const fsq_registry_entry **model, const fsq_arch **arch);

/* ---- configuration --------------------------------------------------------
 * Fills cfg (holding the user's values) from the architecture's presets,
 * then its base's, only where cfg has no value; references "@opt" read cfg or
 * the option's default in set. */
fsq_status fsq_arch_apply(const fsq_registry_entry *model, const fsq_arch *arch,
                          const fsq_option_set *set, struct json_object *cfg);

/* ---- a program's resolved configuration ----------------------------------
 * A selector is an option of the program whose value names a component:
 * {"arch", FSQ_KIND_MODEL} (a named architecture), {"task", FSQ_KIND_TASK},
 * {"optimizer", ...}. Resolution reads --user-dir and the selectors first,
 * loads the chosen components, adds their option tables, parses argv
 * strictly (an unknown flag is refused by name), applies the architecture's
 * presets under the user's values and fills defaults. */
typedef struct fsq_config_selector {
  const char *option;
  fsq_component_kind kind;
} fsq_config_selector;

#define FSQ_SELECTOR_END {NULL, FSQ_KIND_COUNT}

typedef struct fsq_config {
  fsq_registry *registry;       /* owned */
  fsq_option_set *options;      /* owned: the program's and the components' */
  struct json_object *cfg;      /* owned: every option, keyed like fairseq's args,
                                   plus "_components": {kind: {name, version, path}} */
  struct json_object *positionals; /* owned: array of strings */
  const fsq_registry_entry *chosen[FSQ_KIND_COUNT]; /* NULL where not selected */
  const fsq_arch *arch;         /* NULL unless a model was selected */
  int help;                     /* --help was given: print, do nothing else */
} fsq_config;

fsq_status fsq_config_resolve(const char *program, const fsq_option *program_options,
                              const fsq_config_selector *selectors, int argc, char **argv,
                              fsq_config *out);
void fsq_config_free(fsq_config *config);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_REGISTRY_H */
