/* fsq_test.h: the small harness every CUnit suite uses. A suite file lists
 * its cases in a table and calls fsq_test_main from main(). */
#ifndef FSQ_TEST_H
#define FSQ_TEST_H

#include <CUnit/CUnit.h>
#include <stddef.h>

#include "core/fsq_core.h"

typedef struct fsq_test_case {
  const char *name;
  CU_TestFunc fn;
} fsq_test_case;

#define FSQ_TEST_CASE(fn) {#fn, fn}
#define FSQ_TEST_END {NULL, NULL}

/* Runs the cases in CUnit's basic mode (verbose), prints CUnit's summary and
 * returns 0 when every assertion held, 1 otherwise. */
int fsq_test_main(const char *suite, const fsq_test_case *cases);

/* A fresh directory under $TMPDIR for the calling test; removed (with all
 * its contents) by fsq_test_remove_tree. The string is owned by the caller. */
char *fsq_test_tempdir(const char *tag);
int fsq_test_remove_tree(const char *path);
/* Writes text to path; CU_FAIL on error. */
void fsq_test_write_file(const char *path, const void *data, size_t size);
/* $FSQ_SOURCE_DIR/<rel> (or ./<rel> when unset), owned by the caller. */
char *fsq_test_source_path(const char *rel);

struct fsq_registry;
/* The registry along $FSQ_COMPONENT_PATH, or NULL after printing on stderr
 * why it failed or every problem it reported (a broken component file). */
struct fsq_registry *fsq_test_open_registry(void);

/* A command line for an option parser: argv[0] = program, then args split
 * at spaces into buf (size bytes; argv points into it). Returns argc, at
 * most max. */
int fsq_test_split_args(const char *program, const char *args, char *buf, size_t size,
                        char **argv, int max);
struct fsq_option;
struct fsq_config_selector;
struct fsq_config;
/* "--flag value ..." resolved as `program` would with its option table and
 * component selectors (fsq_config_resolve). */
fsq_status fsq_test_resolve(const char *program, const struct fsq_option *options,
                            const struct fsq_config_selector *selectors, const char *args,
                            struct fsq_config *out);

struct fsq_dictionary;
/* fairseq's specials, then the words w0 .. w{words-1} (count 1 each). */
struct fsq_dictionary *fsq_test_word_dict(int words);

#endif
