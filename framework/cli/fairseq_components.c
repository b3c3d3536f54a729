/* fairseq-components: lists every component the registry finds (kind, name,
 * version, path), or with --archs every named architecture and its model.
 * Exits 1 with one line per component file that could not be registered. */
#include "registry/fsq_registry.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fsq_option program_options[] = {
    {"archs", FSQ_OPT_BOOL, NULL, "list named architectures instead of components", NULL, NULL},
    {"user-dir", FSQ_OPT_STRING, NULL, "an extra component directory searched first", NULL, NULL},
    FSQ_OPTION_END};

static int compare_entries(const void *a, const void *b) {
  const fsq_registry_entry *x = *(const fsq_registry_entry *const *)a;
  const fsq_registry_entry *y = *(const fsq_registry_entry *const *)b;
  if (x->component->kind != y->component->kind)
    return (int)x->component->kind - (int)y->component->kind;
  int c = strcmp(x->component->name, y->component->name);
  return c != 0 ? c : fsq_semver_compare(x->version, y->version);
}

static void print_components(const fsq_registry_entry **sorted, size_t n) {
  printf("%-13s %-32s %-9s %s\n", "kind", "name", "version", "path");
  for (size_t i = 0; i < n; i++) {
    const fsq_component *c = sorted[i]->component;
    printf("%-13s %-32s %-9s %s\n", fsq_kind_name(c->kind), c->name, c->version,
           sorted[i]->path);
  }
}

static void print_archs(const fsq_registry_entry **sorted, size_t n) {
  printf("%-40s %-24s %s\n", "arch", "model", "version");
  for (size_t i = 0; i < n; i++) {
    const fsq_component *c = sorted[i]->component;
    for (const fsq_arch *a = c->archs; a != NULL && a->name != NULL; a++)
      printf("%-40s %-24s %s\n", a->name, c->name, c->version);
  }
}

int main(int argc, char **argv) {
  fsq_option_set *set = fsq_option_set_new();
  json_object *given = NULL;
  if (set == NULL || fsq_option_set_add(set, "fairseq-components", program_options) != FSQ_OK ||
      fsq_options_parse(set, argc, argv, &given, NULL) != FSQ_OK) {
    fprintf(stderr, "fairseq-components: error: %s\n", fsq_error_message());
    fsq_option_set_free(set);
    return 2;
  }
  int help = 0, archs = 0;
  const char *user_dir = NULL;
  fsq_json_get_bool(given, "help", &help);
  fsq_json_get_bool(given, "archs", &archs);
  fsq_json_get_string(given, "user_dir", &user_dir);
  if (help) {
    fsq_options_print_help(set, "fairseq-components [--archs] [--user-dir DIR]", stdout);
    json_object_put(given);
    fsq_option_set_free(set);
    return 0;
  }
  const char *extra[] = {user_dir, NULL};
  fsq_registry *reg = fsq_registry_open(user_dir != NULL ? extra : NULL);
  if (reg == NULL) {
    fprintf(stderr, "fairseq-components: error: %s\n", fsq_error_message());
    return 1;
  }
  size_t n = fsq_registry_count(reg);
  const fsq_registry_entry **sorted = calloc(n ? n : 1, sizeof *sorted);
  for (size_t i = 0; sorted != NULL && i < n; i++) sorted[i] = fsq_registry_at(reg, i);
  if (sorted != NULL) {
    qsort(sorted, n, sizeof *sorted, compare_entries);
    if (archs) print_archs(sorted, n);
    else print_components(sorted, n);
  }
  size_t problems = fsq_registry_problem_count(reg);
  for (size_t i = 0; i < problems; i++)
    fprintf(stderr, "fairseq-components: error: %s\n", fsq_registry_problem(reg, i));
  free(sorted);
  fsq_registry_close(reg);
  json_object_put(given);
  fsq_option_set_free(set);
  return problems > 0 || sorted == NULL ? 1 : 0;
}
