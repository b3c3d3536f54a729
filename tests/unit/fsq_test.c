/* fsq_test.c: CUnit runner and temporary-file helpers for the unit suites. */
#define _GNU_SOURCE
#include "fsq_test.h"
#include "data/fsq_data.h"
#include "registry/fsq_registry.h"

#include <CUnit/Basic.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int fsq_test_main(const char *suite_name, const fsq_test_case *cases) {
  if (CU_initialize_registry() != CUE_SUCCESS) return 2;
  CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
  if (suite == NULL) goto fail;
  for (const fsq_test_case *c = cases; c->name != NULL; c++)
    if (CU_add_test(suite, c->name, c->fn) == NULL) goto fail;
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  unsigned run = CU_get_number_of_tests_run();
  CU_cleanup_registry();
  if (run == 0) {
    fprintf(stderr, "%s: no test ran\n", suite_name);
    return 1;
  }
  return failed == 0 ? 0 : 1;
fail:
  fprintf(stderr, "%s: CUnit error: %s\n", suite_name, CU_get_error_msg());
  CU_cleanup_registry();
  return 2;
}

char *fsq_test_tempdir(const char *tag) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || *base == '\0') base = "/tmp";
  char *path = NULL;
  if (asprintf(&path, "%s/fsq-test-%s-XXXXXX", base, tag) < 0) return NULL;
  if (mkdtemp(path) == NULL) {
    free(path);
    return NULL;
  }
  return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(path);
}

int fsq_test_remove_tree(const char *path) {
  return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void fsq_test_write_file(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(data, 1, size, f), size);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

char *fsq_test_source_path(const char *rel) {
  const char *src = getenv("FSQ_SOURCE_DIR");
  char *path = NULL;
  if (asprintf(&path, "%s/%s", src != NULL ? src : ".", rel) < 0) return NULL;
  return path;
}

struct fsq_registry *fsq_test_open_registry(void) {
  fsq_registry *reg = fsq_registry_open(NULL);
  if (reg == NULL) {
    fprintf(stderr, "registry: %s\n", fsq_error_message());
    return NULL;
  }
  size_t problems = fsq_registry_problem_count(reg);
  for (size_t i = 0; i < problems; i++)
    fprintf(stderr, "registry problem: %s\n", fsq_registry_problem(reg, i));
  if (problems == 0) return reg;
  fsq_registry_close(reg);
  return NULL;
}

int fsq_test_split_args(const char *program, const char *args, char *buf, size_t size,
                        char **argv, int max) {
  char *save = NULL;
  int argc = 1;
  argv[0] = (char *)program;
  snprintf(buf, size, "%s", args);
  for (char *w = strtok_r(buf, " ", &save); w != NULL && argc < max; w = strtok_r(NULL, " ", &save))
    argv[argc++] = w;
  return argc;
}

fsq_status fsq_test_resolve(const char *program, const fsq_option *options,
                            const fsq_config_selector *selectors, const char *args,
                            fsq_config *out) {
  char buf[1024], *argv[64];
  int argc = fsq_test_split_args(program, args, buf, sizeof buf, argv, 64);
  return fsq_config_resolve(program, options, selectors, argc, argv, out);
}

fsq_dictionary *fsq_test_word_dict(int words) {
  fsq_dictionary *d = fsq_dictionary_new();
  char w[32];
  for (int i = 0; d != NULL && i < words; i++) {
    int n = snprintf(w, sizeof w, "w%d", i);
    fsq_dictionary_add(d, w, (size_t)n, 1, 0);
  }
  return d;
}
