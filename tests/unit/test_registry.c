/* test_registry.c: discovery, version choice and pinning, refusal of broken
 * component files, named architectures applied under the user's values. */
#define _GNU_SOURCE
#include "fsq_test.h"
#include "registry/fsq_registry.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Absolute path of a test shared object built by tests/components/local.mk. */
static char *built_so(const char *lib) {
  const char *build = getenv("FSQ_BUILD_DIR");
  char *path = NULL;
  if (asprintf(&path, "%s/tests/components/.libs/%s.so", build ? build : ".", lib) < 0)
    return NULL;
  return path;
}

static void mkdirs(const char *path) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    mkdir(buf, 0755);
    *p = '/';
  }
  mkdir(buf, 0755);
}

/* Places lib (a built test object) at root/kind/name/version/file. */
static void place(const char *root, const char *kind, const char *name, const char *version,
                  const char *file, const char *lib) {
  char dir[1024], dst[1200];
  snprintf(dir, sizeof dir, "%s/%s/%s/%s", root, kind, name, version);
  mkdirs(dir);
  snprintf(dst, sizeof dst, "%s/%s", dir, file);
  char *src = built_so(lib);
  CU_ASSERT_EQUAL_FATAL(access(src, R_OK), 0);
  CU_ASSERT_EQUAL(symlink(src, dst), 0);
  free(src);
}

static fsq_registry *open_root(const char *root) {
  const char *roots[] = {root, NULL};
  fsq_registry *reg = fsq_registry_open_dirs(roots);
  CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
  return reg;
}

static int has_problem(const fsq_registry *reg, const char *a, const char *b) {
  for (size_t i = 0; i < fsq_registry_problem_count(reg); i++) {
    const char *p = fsq_registry_problem(reg, i);
    if (strstr(p, a) != NULL && (b == NULL || strstr(p, b) != NULL)) return 1;
  }
  return 0;
}

static void test_registry_discovers_versioned_layout(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  place(root, "models", "toy", "1.2.0", "toy.so", "toy_v2");
  fsq_registry *reg = open_root(root);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 2);
  CU_ASSERT_EQUAL(fsq_registry_problem_count(reg), 0);
  const fsq_registry_entry *e = fsq_registry_at(reg, 0);
  CU_ASSERT_STRING_EQUAL(e->component->name, "toy");
  CU_ASSERT_EQUAL(e->component->kind, FSQ_KIND_MODEL);
  CU_ASSERT_PTR_NOT_NULL(strstr(e->path, "/models/toy/1.0.0/toy.so"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_registry_chooses_newest_and_honours_pin(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  place(root, "models", "toy", "1.2.0", "toy.so", "toy_v2");
  fsq_registry *reg = open_root(root);
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_MODEL, "toy", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_STRING_EQUAL(e->component->version, "1.2.0");
  e = fsq_registry_find_spec(reg, FSQ_KIND_MODEL, "toy@1.0.0");
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_STRING_EQUAL(e->component->version, "1.0.0");
  e = fsq_registry_find_spec(reg, FSQ_KIND_MODEL, "toy@1");
  CU_ASSERT_STRING_EQUAL(e->component->version, "1.2.0");
  CU_ASSERT_PTR_NULL(fsq_registry_find_spec(reg, FSQ_KIND_MODEL, "toy@2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "no version matching 2 (found 1.0.0, 1.2.0)"));
  CU_ASSERT_PTR_NULL(fsq_registry_find(reg, FSQ_KIND_MODEL, "lstm", NULL));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "unknown model 'lstm' (available: toy)"));
  CU_ASSERT_PTR_NULL(fsq_registry_find(reg, FSQ_KIND_TASK, "toy", NULL));
  const fsq_registry_entry *model;
  const fsq_arch *arch;
  CU_ASSERT_EQUAL(fsq_registry_find_arch(reg, "toy_small@1.0", &model, &arch), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(model->component->version, "1.0.0");
  CU_ASSERT_STRING_EQUAL(arch->name, "toy_small");
  CU_ASSERT_EQUAL(fsq_registry_find_arch(reg, "toy_huge", &model, &arch), FSQ_ERR_NOT_FOUND);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_registry_refuses_wrong_abi(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_abi99");
  fsq_registry *reg = open_root(root);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 0);
  CU_ASSERT_TRUE(has_problem(reg, "models/toy/1.0.0/toy.so",
                             "built for component ABI 99.0, this fairseq-c provides 1.0"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_registry_refuses_name_or_version_unlike_directory(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "2.0.0", "toy.so", "toy_v1");      /* declares 1.0.0 */
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_misnamed"); /* declares "other" */
  place(root, "models", "toy", "1.1.0", "wrong.so", "toy_v1");     /* file name */
  place(root, "models", "toy", "latest", "toy.so", "toy_v1");      /* not a version */
  place(root, "tasks", "toy", "1.0.0", "toy.so", "toy_v1");        /* a model among tasks */
  fsq_registry *reg = open_root(root);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 0);
  CU_ASSERT_EQUAL(fsq_registry_problem_count(reg), 5);
  CU_ASSERT_TRUE(has_problem(reg, "toy/2.0.0/toy.so", "declares version 1.0.0 but its directory is 2.0.0"));
  CU_ASSERT_TRUE(has_problem(reg, "toy/1.0.0/toy.so", "declares name 'other' but its directory is 'toy'"));
  CU_ASSERT_TRUE(has_problem(reg, "toy/1.1.0/wrong.so", "file name disagrees with its directory 'toy'"));
  CU_ASSERT_TRUE(has_problem(reg, "toy/latest/toy.so", "directory 'latest' is not a version"));
  CU_ASSERT_TRUE(has_problem(reg, "tasks/toy/1.0.0/toy.so", "is a model but sits in the tasks directory"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_registry_refuses_duplicate(void) {
  char *a = fsq_test_tempdir("reg-a");
  char *b = fsq_test_tempdir("reg-b");
  place(a, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  place(b, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  const char *roots[] = {a, b, NULL};
  fsq_registry *reg = fsq_registry_open_dirs(roots);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 1);
  CU_ASSERT_STRING_EQUAL(fsq_registry_at(reg, 0)->path + strlen(a), "/models/toy/1.0.0/toy.so");
  CU_ASSERT_TRUE(has_problem(reg, b, "duplicate of model toy 1.0.0 already loaded from"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(a);
  fsq_test_remove_tree(b);
  free(a);
  free(b);
}

static void test_registry_refuses_missing_entry_symbol(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_noentry");
  fsq_registry *reg = open_root(root);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 0);
  CU_ASSERT_TRUE(has_problem(reg, "toy/1.0.0/toy.so", "no fsq_component_entry symbol"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_registry_refuses_unreadable_or_non_elf_file(void) {
  char *root = fsq_test_tempdir("reg");
  char dir[1024], path[1100];
  snprintf(dir, sizeof dir, "%s/models/toy/1.0.0", root);
  mkdirs(dir);
  snprintf(path, sizeof path, "%s/toy.so", dir);
  fsq_test_write_file(path, "#!/bin/sh\necho not a library\n", 29);
  snprintf(dir, sizeof dir, "%s/models/lstm/1.0.0", root);
  mkdirs(dir);
  snprintf(path, sizeof path, "%s/lstm.so", dir);
  CU_ASSERT_EQUAL(symlink("/nonexistent/lstm.so", path), 0); /* dangling: unreadable */
  fsq_registry *reg = open_root(root);
  CU_ASSERT_EQUAL(fsq_registry_count(reg), 0);
  CU_ASSERT_TRUE(has_problem(reg, "toy/1.0.0/toy.so", "not an ELF shared object"));
  CU_ASSERT_TRUE(has_problem(reg, "lstm/1.0.0/lstm.so", "cannot read"));
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_arch_presets_never_override_user_values(void) {
  char *root = fsq_test_tempdir("reg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  fsq_registry *reg = open_root(root);
  const fsq_registry_entry *model;
  const fsq_arch *arch;
  CU_ASSERT_EQUAL_FATAL(fsq_registry_find_arch(reg, "toy_small", &model, &arch), FSQ_OK);
  fsq_option_set *set = fsq_option_set_new();
  fsq_option_set_add(set, "model", model->component->options);
  char *argv[] = {"prog", "--encoder-layers", "4"};
  json_object *cfg = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_options_parse(set, 3, argv, &cfg, NULL), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_arch_apply(model, arch, set, cfg), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_options_fill_defaults(set, cfg), FSQ_OK);
  int64_t v;
  double d;
  fsq_json_get_int64(cfg, "encoder_layers", &v);
  CU_ASSERT_EQUAL(v, 4); /* user's, not toy_small's 2 nor toy_base's 6 */
  fsq_json_get_int64(cfg, "encoder_embed_dim", &v);
  CU_ASSERT_EQUAL(v, 64); /* toy_small's, not toy_base's 512 */
  fsq_json_get_int64(cfg, "decoder_embed_dim", &v);
  CU_ASSERT_EQUAL(v, 64); /* toy_base's "@encoder-embed-dim" follows the resolved value */
  fsq_json_get_double(cfg, "dropout", &d);
  CU_ASSERT_DOUBLE_EQUAL(d, 0.3, 0);
  json_object_put(cfg);
  fsq_option_set_free(set);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_semver_parse_and_pins(void) {
  fsq_semver v;
  CU_ASSERT_EQUAL(fsq_semver_parse("1.10.3", &v), FSQ_OK);
  CU_ASSERT_EQUAL(v.minor, 10);
  CU_ASSERT_EQUAL(fsq_semver_parse("1.2", &v), FSQ_ERR_FORMAT);
  CU_ASSERT_EQUAL(fsq_semver_parse("1.2.3-rc1", &v), FSQ_ERR_FORMAT);
  CU_ASSERT_EQUAL(fsq_semver_parse("", &v), FSQ_ERR_FORMAT);
  fsq_semver a = {1, 10, 0}, b = {1, 9, 7};
  CU_ASSERT(fsq_semver_compare(a, b) > 0);
  CU_ASSERT_TRUE(fsq_semver_matches_pin(a, "1"));
  CU_ASSERT_TRUE(fsq_semver_matches_pin(a, "1.10"));
  CU_ASSERT_FALSE(fsq_semver_matches_pin(a, "1.1"));
  CU_ASSERT_FALSE(fsq_semver_matches_pin(a, "1.10.0.1"));
  CU_ASSERT_FALSE(fsq_semver_matches_pin(a, "x"));
}

static const fsq_option train_options[] = {
    {"user-dir", FSQ_OPT_STRING, NULL, "extra component directory", NULL, NULL},
    {"arch", FSQ_OPT_STRING, NULL, "model architecture", NULL, "a"},
    {"lr-scheduler", FSQ_OPT_STRING, "fixed", "learning rate scheduler", NULL, NULL},
    {"lr", FSQ_OPT_STRING, "0.25", "learning rate", NULL, NULL},
    FSQ_OPTION_END};
static const fsq_config_selector train_selectors[] = {
    {"arch", FSQ_KIND_MODEL}, {"lr-scheduler", FSQ_KIND_LR_SCHEDULER}, FSQ_SELECTOR_END};

static fsq_status resolve_args(const char *root, const char *args, fsq_config *c) {
  char buf[512], *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "fairseq-train --user-dir %s %s", root, args);
  for (char *t = strtok(buf, " "); t != NULL && argc < 32; t = strtok(NULL, " ")) argv[argc++] = t;
  return fsq_config_resolve("fairseq-train", train_options, train_selectors, argc, argv, c);
}

static void test_config_resolves_chosen_components_under_user_values(void) {
  char *root = fsq_test_tempdir("cfg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  place(root, "models", "toy", "1.2.0", "toy.so", "toy_v2");
  fsq_config c;
  CU_ASSERT_EQUAL_FATAL(resolve_args(root, "data-bin/x --arch toy_small --encoder-layers 4 "
                                           "--lr-scheduler inverse_sqrt --warmup-updates 10", &c),
                        FSQ_OK);
  int64_t v;
  double d;
  const char *s;
  fsq_json_get_int64(c.cfg, "encoder_layers", &v);
  CU_ASSERT_EQUAL(v, 4);
  fsq_json_get_int64(c.cfg, "decoder_embed_dim", &v);
  CU_ASSERT_EQUAL(v, 64);
  fsq_json_get_int64(c.cfg, "warmup_updates", &v);
  CU_ASSERT_EQUAL(v, 10);
  fsq_json_get_double(c.cfg, "warmup_init_lr", &d);
  CU_ASSERT_DOUBLE_EQUAL(d, -1, 0);
  CU_ASSERT_EQUAL(fsq_json_get_string(c.cfg, "arch", &s), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(s, "toy_small");
  json_object *comps, *model;
  CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(c.cfg, "_components", &comps));
  CU_ASSERT_TRUE_FATAL(json_object_object_get_ex(comps, "model", &model));
  fsq_json_get_string(model, "version", &s);
  CU_ASSERT_STRING_EQUAL(s, "1.2.0");
  CU_ASSERT_STRING_EQUAL(c.chosen[FSQ_KIND_LR_SCHEDULER]->component->name, "inverse_sqrt");
  CU_ASSERT_EQUAL(json_object_array_length(c.positionals), 1);
  fsq_config_free(&c);
  CU_ASSERT_EQUAL_FATAL(resolve_args(root, "--arch toy_base@1.0", &c), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(c.chosen[FSQ_KIND_MODEL]->component->version, "1.0.0");
  CU_ASSERT_STRING_EQUAL(c.chosen[FSQ_KIND_LR_SCHEDULER]->component->name, "fixed");
  fsq_json_get_int64(c.cfg, "decoder_embed_dim", &v);
  CU_ASSERT_EQUAL(v, 512);
  fsq_config_free(&c);
  fsq_test_remove_tree(root);
  free(root);
}

static void test_config_refuses_flags_of_components_not_chosen(void) {
  char *root = fsq_test_tempdir("cfg");
  place(root, "models", "toy", "1.0.0", "toy.so", "toy_v1");
  fsq_config c;
  CU_ASSERT_EQUAL(resolve_args(root, "--arch toy_base --lr-scheduler inverse_sqrt --lr-shrink 0.5", &c),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "unrecognized arguments: --lr-shrink"));
  CU_ASSERT_EQUAL(resolve_args(root, "--arch toy_giant", &c), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--arch: unknown architecture 'toy_giant'"));
  CU_ASSERT_EQUAL(resolve_args(root, "--arch toy_base --lr-scheduler cosine", &c), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--lr-scheduler: unknown lr_scheduler 'cosine'"));
  CU_ASSERT_EQUAL(resolve_args("/nonexistent/dir", "--arch toy_base", &c), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--user-dir /nonexistent/dir: not a directory"));
  CU_ASSERT_EQUAL_FATAL(resolve_args(root, "--arch toy_base --help", &c), FSQ_OK);
  CU_ASSERT_TRUE(c.help);
  CU_ASSERT_PTR_NOT_NULL(fsq_option_set_find(c.options, "encoder-embed-dim"));
  CU_ASSERT_PTR_NOT_NULL(fsq_option_set_find(c.options, "force-anneal"));
  fsq_config_free(&c);
  fsq_test_remove_tree(root);
  free(root);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_registry_discovers_versioned_layout),
      FSQ_TEST_CASE(test_registry_chooses_newest_and_honours_pin),
      FSQ_TEST_CASE(test_registry_refuses_wrong_abi),
      FSQ_TEST_CASE(test_registry_refuses_name_or_version_unlike_directory),
      FSQ_TEST_CASE(test_registry_refuses_duplicate),
      FSQ_TEST_CASE(test_registry_refuses_missing_entry_symbol),
      FSQ_TEST_CASE(test_registry_refuses_unreadable_or_non_elf_file),
      FSQ_TEST_CASE(test_arch_presets_never_override_user_values),
      FSQ_TEST_CASE(test_semver_parse_and_pins),
      FSQ_TEST_CASE(test_config_resolves_chosen_components_under_user_values),
      FSQ_TEST_CASE(test_config_refuses_flags_of_components_not_chosen),
      FSQ_TEST_END};
  return fsq_test_main("registry", cases);
}
