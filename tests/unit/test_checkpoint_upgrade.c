/* test_checkpoint_upgrade.c: the upgrade chain over the old checkpoint of the
 * test component renamer (1.0.0 "enc.w" -> 2.0.0 "encoder.weight"), refusals
 * of too-new and unreachable versions, and the format-step mechanism. */
#define _GNU_SOURCE
#include "fsq_test.h"
#include "upgrade/fsq_upgrade.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *built_so(const char *lib) {
  const char *build = getenv("FSQ_BUILD_DIR");
  char *path = NULL;
  CU_ASSERT_FATAL(asprintf(&path, "%s/tests/components/.libs/%s.so", build ? build : ".", lib) > 0);
  return path;
}

/* root/models/renamer/<version>/renamer.so -> the built test object. */
static void place_renamer(const char *root, const char *version, const char *lib) {
  char dir[1024], dst[1200];
  snprintf(dir, sizeof dir, "%s/models", root);
  mkdir(dir, 0755);
  snprintf(dir, sizeof dir, "%s/models/renamer", root);
  mkdir(dir, 0755);
  snprintf(dir, sizeof dir, "%s/models/renamer/%s", root, version);
  mkdir(dir, 0755);
  snprintf(dst, sizeof dst, "%s/renamer.so", dir);
  char *src = built_so(lib);
  CU_ASSERT_EQUAL_FATAL(access(src, R_OK), 0);
  CU_ASSERT_EQUAL(symlink(src, dst), 0);
  free(src);
}

static fsq_registry *open_root(const char *root) {
  const char *roots[] = {root, NULL};
  fsq_registry *reg = fsq_registry_open_dirs(roots);
  CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
  CU_ASSERT_EQUAL(fsq_registry_problem_count(reg), 0);
  return reg;
}

typedef struct step_log {
  char lines[8][256];
  int n;
} step_log;

static void remember(void *ctx, const char *subject, const char *from, const char *to,
                     const char *description) {
  step_log *l = ctx;
  if (l->n < 8)
    snprintf(l->lines[l->n++], sizeof l->lines[0], "%s %s -> %s: %s", subject, from, to, description);
}

static void assert_same_bytes(fsq_state *a, fsq_ckpt_group ga, const char *na, fsq_state *b,
                              fsq_ckpt_group gb, const char *nb) {
  fsq_ckpt_tensor *x = fsq_state_find(a, ga, na), *y = fsq_state_find(b, gb, nb);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(y);
  CU_ASSERT_EQUAL_FATAL(x->nbytes, y->nbytes);
  CU_ASSERT(memcmp(x->data, y->data, x->nbytes) == 0);
  CU_ASSERT_EQUAL(x->ndim, y->ndim);
}

static void test_upgrade_renames_old_renamer_checkpoint(void) {
  char *root = fsq_test_tempdir("upgrade-tree");
  place_renamer(root, "1.0.0", "renamer_v1");
  place_renamer(root, "2.0.0", "renamer_v2");
  fsq_registry *reg = open_root(root);
  char *fixture = fsq_test_source_path("tests/fixtures/checkpoint/old_renamer.fsq");
  fsq_state *plain = NULL, *st = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(fixture, NULL, &plain), FSQ_OK);
  step_log l = {0};
  fsq_upgrade_options opt = {.report = remember, .ctx = &l};
  size_t applied = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load_upgraded(fixture, NULL, reg, &opt, &st, &applied), FSQ_OK);
  CU_ASSERT_EQUAL(applied, 1);
  CU_ASSERT_EQUAL_FATAL(l.n, 1);
  CU_ASSERT_STRING_EQUAL(l.lines[0], "model renamer 1.0.0 -> 2.0.0: rename enc.w to encoder.weight");
  CU_ASSERT_PTR_NULL(fsq_state_find(st, FSQ_CKPT_MODEL, "enc.w"));
  assert_same_bytes(plain, FSQ_CKPT_MODEL, "enc.w", st, FSQ_CKPT_MODEL, "encoder.weight");
  assert_same_bytes(plain, FSQ_CKPT_MODEL, "dec.b", st, FSQ_CKPT_MODEL, "dec.b");
  assert_same_bytes(plain, FSQ_CKPT_OPTIMIZER, "enc.w.exp_avg", st, FSQ_CKPT_OPTIMIZER,
                    "encoder.weight.exp_avg");
  assert_same_bytes(plain, FSQ_CKPT_OPTIMIZER, "enc.w.exp_avg_sq", st, FSQ_CKPT_OPTIMIZER,
                    "encoder.weight.exp_avg_sq");
  const char *name, *version;
  CU_ASSERT_EQUAL(fsq_state_get_component(st, "model", &name, &version), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(version, "2.0.0");
  /* saved and loaded again: nothing left to do */
  char *out = NULL;
  CU_ASSERT_FATAL(asprintf(&out, "%s/new.fsq", root) > 0);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(st, out), FSQ_OK);
  fsq_state *again = NULL;
  l.n = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load_upgraded(out, NULL, reg, &opt, &again, &applied), FSQ_OK);
  CU_ASSERT_EQUAL(applied, 0);
  CU_ASSERT_EQUAL(l.n, 0);
  assert_same_bytes(plain, FSQ_CKPT_MODEL, "enc.w", again, FSQ_CKPT_MODEL, "encoder.weight");
  fsq_state_free(again);
  fsq_state_free(st);
  fsq_state_free(plain);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(out);
  free(fixture);
  free(root);
}

static void test_upgrade_dry_run_reports_without_changing(void) {
  char *root = fsq_test_tempdir("upgrade-dry");
  place_renamer(root, "2.0.0", "renamer_v2");
  fsq_registry *reg = open_root(root);
  char *fixture = fsq_test_source_path("tests/fixtures/checkpoint/old_renamer.fsq");
  fsq_state *st = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(fixture, NULL, &st), FSQ_OK);
  step_log l = {0};
  fsq_upgrade_options opt = {.dry_run = 1, .report = remember, .ctx = &l};
  size_t applied = 0;
  CU_ASSERT_EQUAL(fsq_upgrade_state(st, reg, &opt, &applied), FSQ_OK);
  CU_ASSERT_EQUAL(applied, 1);
  CU_ASSERT_EQUAL(l.n, 1);
  CU_ASSERT_PTR_NOT_NULL(fsq_state_find(st, FSQ_CKPT_MODEL, "enc.w"));
  const char *name, *version;
  fsq_state_get_component(st, "model", &name, &version);
  CU_ASSERT_STRING_EQUAL(version, "1.0.0");
  fsq_state_free(st);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(fixture);
  free(root);
}

/* A checkpoint recording renamer at `version`, upgraded against a tree with
 * only renamer 2.0.0 (or 1.0.0): refused with both versions named. */
static void refuse_recorded(const char *version, const char *installed, const char *lib,
                            const char *want) {
  char *root = fsq_test_tempdir("upgrade-refuse");
  place_renamer(root, installed, lib);
  fsq_registry *reg = open_root(root);
  fsq_state *st = fsq_state_new();
  float w[2] = {1, 2};
  int64_t shape[1] = {2};
  fsq_state_add(st, FSQ_CKPT_MODEL, "enc.w", FSQ_CKPT_F32, 1, shape, w, sizeof w, FSQ_CKPT_BORROW);
  fsq_state_set_component(st, "model", "renamer", version);
  char *path = NULL;
  CU_ASSERT_FATAL(asprintf(&path, "%s/c.fsq", root) > 0);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(st, path), FSQ_OK);
  fsq_state *back = (fsq_state *)1;
  size_t applied = 0;
  CU_ASSERT_NOT_EQUAL(fsq_checkpoint_load_upgraded(path, NULL, reg, NULL, &back, &applied), FSQ_OK);
  CU_ASSERT_PTR_NULL(back);
  const char *msg = fsq_error_message();
  if (strstr(msg, want) == NULL || strstr(msg, path) == NULL) {
    printf("\n  message: %s\n", msg);
    CU_FAIL("message lacks the checkpoint or the versions");
  }
  CU_ASSERT(strchr(msg, '\n') == NULL);
  fsq_state_free(st);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(path);
  free(root);
}

static void test_upgrade_refuses_component_newer_than_installed(void) {
  refuse_recorded("3.0.0", "2.0.0", "renamer_v2", "model renamer 3.0.0 is newer than the installed 2.0.0");
  refuse_recorded("2.0.0", "1.0.0", "renamer_v1", "model renamer 2.0.0 is newer than the installed 1.0.0");
  CU_ASSERT_EQUAL(fsq_error_code(), FSQ_ERR_VERSION);
}

static void test_upgrade_refuses_missing_step_path(void) {
  refuse_recorded("0.9.0", "2.0.0", "renamer_v2",
                  "no upgrade step from 0.9.0 toward the installed 2.0.0");
}

static void test_upgrade_refuses_component_not_installed(void) {
  char *root = fsq_test_tempdir("upgrade-ghost");
  place_renamer(root, "2.0.0", "renamer_v2");
  fsq_registry *reg = open_root(root);
  fsq_state *st = fsq_state_new();
  fsq_state_set_component(st, "optimizer", "ghost", "1.0.0");
  CU_ASSERT_NOT_EQUAL(fsq_upgrade_state(st, reg, NULL, NULL), FSQ_OK);
  CU_ASSERT(strstr(fsq_error_message(), "optimizer ghost 1.0.0 is recorded") != NULL);
  fsq_state_free(st);
  fsq_registry_close(reg);
  fsq_test_remove_tree(root);
  free(root);
}

/* Format steps: a made-up table 1 -> 2 -> 3 shows the mechanism. */
static fsq_status add_two(fsq_state *st) {
  json_object_object_add(fsq_state_meta(st), "step_two", json_object_new_boolean(1));
  return FSQ_OK;
}
static fsq_status add_three(fsq_state *st) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(fsq_state_meta(st), "step_two", &v))
    return fsq_error(FSQ_ERR_INTERNAL, "step 2 -> 3 ran before 1 -> 2");
  return fsq_state_rename(st, FSQ_CKPT_MODEL, "a", "b");
}

static void test_upgrade_runs_format_steps_in_order(void) {
  static const fsq_format_step steps[] = {
      {2, 3, "rename a to b", add_three}, {1, 2, "mark two", add_two}, {0, 0, NULL, NULL}};
  fsq_state *st = fsq_state_new();
  float x = 1;
  int64_t one[1] = {1};
  fsq_state_add(st, FSQ_CKPT_MODEL, "a", FSQ_CKPT_F32, 1, one, &x, sizeof x, FSQ_CKPT_BORROW);
  step_log l = {0};
  fsq_upgrade_options opt = {.report = remember, .ctx = &l};
  size_t applied = 0;
  CU_ASSERT_EQUAL(fsq_upgrade_format(st, steps, 3, &opt, &applied), FSQ_OK);
  CU_ASSERT_EQUAL(applied, 2);
  CU_ASSERT_EQUAL(fsq_state_format_version(st), 3);
  CU_ASSERT_STRING_EQUAL(l.lines[0], "format 1 -> 2: mark two");
  CU_ASSERT_STRING_EQUAL(l.lines[1], "format 2 -> 3: rename a to b");
  CU_ASSERT_PTR_NOT_NULL(fsq_state_find(st, FSQ_CKPT_MODEL, "b"));
  CU_ASSERT_NOT_EQUAL(fsq_upgrade_format(st, steps, 4, NULL, NULL), FSQ_OK);
  CU_ASSERT(strstr(fsq_error_message(), "no upgrade step from checkpoint format 3") != NULL);
  /* the real table: a current checkpoint needs nothing */
  fsq_state *cur = fsq_state_new();
  applied = 0;
  CU_ASSERT_EQUAL(fsq_upgrade_format(cur, fsq_format_steps, FSQ_CHECKPOINT_FORMAT, NULL, &applied),
                  FSQ_OK);
  CU_ASSERT_EQUAL(applied, 0);
  fsq_state_free(cur);
  fsq_state_free(st);
}

/* The committed fixture is what its generator writes today. */
static void test_old_renamer_fixture_is_reproducible(void) {
  char *dir = fsq_test_tempdir("upgrade-fixture");
  const char *build = getenv("FSQ_BUILD_DIR");
  char *cmd = NULL, *fresh = NULL;
  CU_ASSERT_FATAL(asprintf(&fresh, "%s/old.fsq", dir) > 0);
  CU_ASSERT_FATAL(asprintf(&cmd, "%s/tests/fixtures/checkpoint/make_old_renamer %s",
                           build ? build : ".", fresh) > 0);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  char *fixture = fsq_test_source_path("tests/fixtures/checkpoint/old_renamer.fsq");
  FILE *a = fopen(fixture, "rb"), *b = fopen(fresh, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b);
  int ca, cb, same = 1;
  do {
    ca = fgetc(a);
    cb = fgetc(b);
    if (ca != cb) same = 0;
  } while (same && ca != EOF);
  CU_ASSERT_TRUE(same);
  fclose(a);
  fclose(b);
  fsq_test_remove_tree(dir);
  free(fixture);
  free(fresh);
  free(cmd);
  free(dir);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_upgrade_renames_old_renamer_checkpoint),
      FSQ_TEST_CASE(test_upgrade_dry_run_reports_without_changing),
      FSQ_TEST_CASE(test_upgrade_refuses_component_newer_than_installed),
      FSQ_TEST_CASE(test_upgrade_refuses_missing_step_path),
      FSQ_TEST_CASE(test_upgrade_refuses_component_not_installed),
      FSQ_TEST_CASE(test_upgrade_runs_format_steps_in_order),
      FSQ_TEST_CASE(test_old_renamer_fixture_is_reproducible),
      FSQ_TEST_END};
  return fsq_test_main("checkpoint_upgrade", cases);
}
