/* test_task_translation.c: the translation task component on a tiny data
 * directory written with framework/data's writer: dictionaries, batches of
 * an epoch, collated tensors of known examples, and its refusals.
 *
 * The corpus (N = 20 pairs, direction de-en):
 *   source i: (i % 5) + 1 words 4 + (i + k) % 6, then </s>  (2..6 tokens)
 *   target i: (i % 3) + 1 words 4 + (i + k) % 5, then </s>  (2..4 tokens)
 * with dict.de.txt holding 6 words (10 types) and dict.en.txt 5 (9 types). */
#include "fsq_test.h"
#include "registry/fsq_registry.h"
#include "train/fsq_model.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 20

static fsq_registry *reg;

static const fsq_component *task_component(void) {
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_TASK, "translation", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL_FATAL(e->component->ops_version, FSQ_TASK_OPS_VERSION);
  return e->component;
}

static const fsq_task_ops *task_ops(void) { return task_component()->ops; }

static int64_t src_len(size_t i) { return (int64_t)(i % 5) + 2; }
static int64_t tgt_len(size_t i) { return (int64_t)(i % 3) + 2; }

static void write_dict(const char *dir, const char *lang, int words) {
  fsq_dictionary *d = fsq_dictionary_new();
  char path[512], w[8];
  for (int k = 0; k < words; k++) {
    snprintf(w, sizeof w, "%s%d", lang, k);
    fsq_dictionary_add(d, w, strlen(w), 100 - k, 0);
  }
  snprintf(path, sizeof path, "%s/dict.%s.txt", dir, lang);
  CU_ASSERT_EQUAL_FATAL(fsq_dictionary_save(d, path), FSQ_OK);
  fsq_dictionary_free(d);
}

/* <dir>/<split>.<pair>.<lang>.bin/.idx with n items: the source or target
 * formula above (modulus 6 or 5). */
static void write_side(const char *dir, const char *split, const char *pair, const char *lang,
                       int source, size_t n) {
  char bin[512], idx[512];
  snprintf(bin, sizeof bin, "%s/%s.%s.%s.bin", dir, split, pair, lang);
  snprintf(idx, sizeof idx, "%s/%s.%s.%s.idx", dir, split, pair, lang);
  fsq_indexed_writer *w = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_open(bin, FSQ_IDX_UINT16, &w), FSQ_OK);
  for (size_t i = 0; i < n; i++) {
    int32_t ids[8];
    int64_t len = source ? src_len(i) : tgt_len(i);
    for (int64_t k = 0; k < len - 1; k++) ids[k] = 4 + (int32_t)((i + (size_t)k) % (source ? 6 : 5));
    ids[len - 1] = FSQ_DICT_EOS;
    CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_add(w, ids, (size_t)len), FSQ_OK);
  }
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_finish(w, idx), FSQ_OK);
}

static char *make_data_dir(const char *tag) {
  char *dir = fsq_test_tempdir(tag);
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  write_dict(dir, "de", 6);
  write_dict(dir, "en", 5);
  write_side(dir, "train", "de-en", "de", 1, N);
  write_side(dir, "train", "de-en", "en", 0, N);
  return dir;
}

/* The task's configuration as the CLI resolves it: its option table parsed
 * from argv (argv[0] is skipped), defaults filled, then the data dir. */
static json_object *task_config(const char *data, int argc, char **argv) {
  fsq_option_set *set = fsq_option_set_new();
  CU_ASSERT_EQUAL_FATAL(fsq_option_set_add(set, "task: translation", task_component()->options),
                        FSQ_OK);
  json_object *cfg = NULL, *pos = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_options_parse(set, argc, argv, &cfg, &pos), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_options_fill_defaults(set, cfg), FSQ_OK);
  json_object_object_add(cfg, "data", json_object_new_string(data));
  json_object_put(pos);
  fsq_option_set_free(set);
  return cfg;
}

static fsq_status create_task(const char *data, int argc, char **argv, fsq_task **out) {
  json_object *cfg = task_config(data, argc, argv);
  fsq_status st = task_ops()->create(cfg, out);
  json_object_put(cfg);
  return st;
}

static fsq_batch_spec spec_of(int64_t max_tokens) {
  fsq_batch_spec s = {.max_tokens = max_tokens, .required_batch_size_multiple = 1,
                      .seed = 3, .shuffle = 1, .num_shards = 1, .shard_id = 0};
  return s;
}

/* Runs an epoch; counts how often each index comes, checks max_tokens. */
static size_t run_epoch(fsq_epoch_iter *it, int64_t epoch, int64_t max_tokens, int *seen) {
  CU_ASSERT_EQUAL(fsq_epoch_iter_begin(it, epoch), FSQ_OK);
  const uint32_t *idx;
  size_t count, batches = 0;
  while (fsq_epoch_iter_next(it, &idx, &count)) {
    int64_t longest = 0;
    for (size_t r = 0; r < count; r++) {
      CU_ASSERT_FATAL(idx[r] < N);
      seen[idx[r]]++;
      int64_t tokens = src_len(idx[r]) > tgt_len(idx[r]) ? src_len(idx[r]) : tgt_len(idx[r]);
      if (tokens > longest) longest = tokens;
    }
    CU_ASSERT(count > 0);
    CU_ASSERT((int64_t)count * longest <= max_tokens);
    batches++;
  }
  return batches;
}

static char *read_log(FILE *f) {
  fflush(f);
  long size = ftell(f);
  char *text = calloc(1, (size_t)size + 1);
  rewind(f);
  CU_ASSERT_EQUAL(fread(text, 1, (size_t)size, f), (size_t)size);
  return text;
}

static void test_translation_loads_dictionaries_and_logs_them(void) {
  char *dir = make_data_dir("tt-dict");
  FILE *log = tmpfile();
  fsq_log_set_stream(log);
  fsq_task *t = NULL;
  char *argv[] = {"x", "-s", "de", "-t", "en"};
  fsq_status st = create_task(dir, 5, argv, &t);
  fsq_log_set_stream(stdout);
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(task_ops()->source_dictionary(t)), 10);
  CU_ASSERT_EQUAL(fsq_dictionary_size(task_ops()->target_dictionary(t)), 9);
  CU_ASSERT_EQUAL(fsq_dictionary_find(task_ops()->target_dictionary(t), "en3", 3), 7);
  char *text = read_log(log);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "| INFO | fairseq.tasks.translation | [de] dictionary: 10 types\n"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "| INFO | fairseq.tasks.translation | [en] dictionary: 9 types\n"));
  free(text);
  fclose(log);
  task_ops()->destroy(t);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_translation_infers_language_pair_from_file_names(void) {
  char *dir = make_data_dir("tt-infer");
  fsq_task *t = NULL;
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 1, (char *[]){"x"}, &t), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(task_ops()->source_dictionary(t)), 10); /* de */
  task_ops()->destroy(t);
  /* -t de alone: the reverse direction, reading train.de-en.* */
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 3, (char *[]){"x", "-t", "de"}, &t), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(task_ops()->source_dictionary(t)), 9); /* en */
  fsq_epoch_iter *it = NULL;
  fsq_batch_spec spec = spec_of(100);
  CU_ASSERT_EQUAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  CU_ASSERT_EQUAL(task_ops()->dataset_size(t, "train"), N);
  task_ops()->destroy(t);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_translation_batches_cover_each_example_once_per_epoch(void) {
  char *dir = make_data_dir("tt-epoch");
  fsq_task *t = NULL;
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 5, (char *[]){"x", "-s", "de", "-t", "en"}, &t), FSQ_OK);
  CU_ASSERT_EQUAL(task_ops()->dataset_size(t, "train"), 0); /* not loaded yet */
  fsq_epoch_iter *it = NULL;
  fsq_batch_spec spec = spec_of(12);
  CU_ASSERT_EQUAL_FATAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  CU_ASSERT_EQUAL(task_ops()->dataset_size(t, "train"), N);
  for (int64_t epoch = 1; epoch <= 2; epoch++) {
    int seen[N] = {0};
    size_t batches = run_epoch(it, epoch, spec.max_tokens, seen);
    CU_ASSERT_EQUAL(batches, fsq_epoch_iter_len(it));
    CU_ASSERT(batches >= 20 * 2 / 12); /* at least the tokens / max_tokens */
    for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(seen[i], 1);
  }
  /* a second call with another spec replaces the iterator, same dataset */
  spec.max_sentences = 1;
  CU_ASSERT_EQUAL_FATAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  int seen[N] = {0};
  CU_ASSERT_EQUAL(run_epoch(it, 1, 12, seen), N); /* --batch-size 1: one pair per batch */
  task_ops()->destroy(t);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_translation_skips_or_refuses_too_long_examples(void) {
  char *dir = make_data_dir("tt-filter");
  fsq_task *t = NULL;
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 3, (char *[]){"x", "--max-source-positions", "5"}, &t),
                        FSQ_OK);
  fsq_epoch_iter *it = NULL;
  fsq_batch_spec spec = spec_of(100);
  CU_ASSERT_EQUAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--skip-invalid-size-inputs-valid-test"));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "'train'"));
  spec.ignore_invalid_inputs = 1;
  FILE *log = tmpfile();
  fsq_log_set_stream(log);
  fsq_status st = task_ops()->get_batch_iterator(t, "train", &spec, &it);
  fsq_log_set_stream(stdout);
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  char *text = read_log(log);
  /* sources of 6 tokens: i % 5 == 4, i.e. 4, 9, 14, 19 */
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "| WARNING | fairseq.tasks.fairseq_task | 4 samples have "
                                      "invalid sizes and will be skipped, max_positions=(5, 1024)"));
  free(text);
  fclose(log);
  int seen[N] = {0};
  run_epoch(it, 1, 100, seen);
  for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(seen[i], i % 5 == 4 ? 0 : 1);
  /* the caller's limit (a model's) applies too: the smaller one wins */
  spec.max_target_positions = 3;
  CU_ASSERT_EQUAL_FATAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  memset(seen, 0, sizeof seen);
  run_epoch(it, 1, 100, seen);
  for (int i = 0; i < N; i++) CU_ASSERT_EQUAL(seen[i], i % 5 == 4 || i % 3 == 2 ? 0 : 1);
  task_ops()->destroy(t);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void expect_row(const fsq_tensor *x, int64_t row, const int64_t *want, int64_t n) {
  CU_ASSERT_EQUAL_FATAL(x->shape[1], n);
  for (int64_t k = 0; k < n; k++) CU_ASSERT_EQUAL(fsq_get(x, row * n + k), (double)want[k]);
}

/* Examples 1 and 3: source 1 = [5 6 </s>], source 3 = [7 8 9 4 </s>],
 * target 1 = [5 6 </s>], target 3 = [7 </s>]. The collater puts the longer
 * source first. */
static void test_translation_collates_known_examples(void) {
  char *dir = make_data_dir("tt-collate");
  fsq_task *t = NULL;
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 1, (char *[]){"x"}, &t), FSQ_OK);
  fsq_epoch_iter *it = NULL;
  fsq_batch_spec spec = spec_of(100);
  CU_ASSERT_EQUAL_FATAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  fsq_ctx *ctx = fsq_ctx_create(1 << 16);
  fsq_sample s;
  const uint32_t idx[2] = {1, 3};
  CU_ASSERT_EQUAL_FATAL(task_ops()->collate(t, "train", idx, 2, ctx, &s), FSQ_OK);
  CU_ASSERT_EQUAL(s.bsz, 2);
  CU_ASSERT_EQUAL(s.ntokens, 5);
  CU_ASSERT_EQUAL(s.id->dtype, FSQ_I64);
  CU_ASSERT_EQUAL(fsq_get(s.id, 0), 3);
  CU_ASSERT_EQUAL(fsq_get(s.id, 1), 1);
  CU_ASSERT_EQUAL(fsq_get(s.src_lengths, 0), 5);
  CU_ASSERT_EQUAL(fsq_get(s.src_lengths, 1), 3);
  expect_row(s.src_tokens, 0, (int64_t[]){7, 8, 9, 4, 2}, 5);
  expect_row(s.src_tokens, 1, (int64_t[]){1, 1, 5, 6, 2}, 5); /* left-padded */
  expect_row(s.target, 0, (int64_t[]){7, 2, 1}, 3);
  expect_row(s.target, 1, (int64_t[]){5, 6, 2}, 3);
  expect_row(s.prev_output_tokens, 0, (int64_t[]){2, 7, 1}, 3); /* </s> first */
  expect_row(s.prev_output_tokens, 1, (int64_t[]){2, 5, 6}, 3);
  fsq_ctx_reset(ctx);
  const uint32_t bad[1] = {N};
  CU_ASSERT_EQUAL(task_ops()->collate(t, "train", bad, 1, ctx, &s), FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(task_ops()->collate(t, "valid", idx, 2, ctx, &s), FSQ_ERR_INVALID);
  task_ops()->destroy(t);
  /* --left-pad-source False, as fairseq spells it */
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 3, (char *[]){"x", "--left-pad-source", "False"}, &t),
                        FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(task_ops()->get_batch_iterator(t, "train", &spec, &it), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(task_ops()->collate(t, "train", idx, 2, ctx, &s), FSQ_OK);
  expect_row(s.src_tokens, 1, (int64_t[]){5, 6, 2, 1, 1}, 5);
  task_ops()->destroy(t);
  fsq_ctx_destroy(ctx);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_translation_refuses_missing_data_and_bad_options(void) {
  char *dir = make_data_dir("tt-refuse");
  char missing[600];
  snprintf(missing, sizeof missing, "%s/nowhere", dir);
  fsq_task *t = NULL;
  char *argv[] = {"x", "-s", "de", "-t", "en"};
  CU_ASSERT_EQUAL(create_task(missing, 5, argv, &t), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), missing));
  CU_ASSERT_PTR_NULL(t);
  char shards[1300];
  snprintf(shards, sizeof shards, "%s:%s", dir, dir);
  CU_ASSERT_EQUAL(create_task(shards, 5, argv, &t), FSQ_ERR_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "several data directories"));
  CU_ASSERT_EQUAL(create_task(dir, 3, (char *[]){"x", "--upsample-primary", "2"}, &t),
                  FSQ_ERR_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--upsample-primary"));
  CU_ASSERT_EQUAL(create_task(dir, 3, (char *[]){"x", "--left-pad-source", "maybe"}, &t),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "maybe"));
  CU_ASSERT_EQUAL(create_task(dir, 5, (char *[]){"x", "-s", "fr", "-t", "en"}, &t),
                  FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "dict.fr.txt"));
  /* a split that is not there */
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 5, argv, &t), FSQ_OK);
  fsq_epoch_iter *it = NULL;
  fsq_batch_spec spec = spec_of(100);
  CU_ASSERT_EQUAL(task_ops()->get_batch_iterator(t, "valid", &spec, &it), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "valid.de-en.de"));
  CU_ASSERT_PTR_NULL(it);
  CU_ASSERT_EQUAL(task_ops()->dataset_size(t, "valid"), 0);
  task_ops()->destroy(t);
  /* two language pairs and no -s/-t: ambiguous */
  write_dict(dir, "fr", 4);
  write_side(dir, "train", "fr-en", "fr", 1, 3);
  write_side(dir, "train", "fr-en", "en", 0, 3);
  CU_ASSERT_EQUAL(create_task(dir, 1, (char *[]){"x"}, &t), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "cannot infer the language pair"));
  /* -s settles it */
  CU_ASSERT_EQUAL_FATAL(create_task(dir, 3, (char *[]){"x", "-s", "fr"}, &t), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(task_ops()->source_dictionary(t)), 8);
  task_ops()->destroy(t);
  fsq_test_remove_tree(dir);
  free(dir);
}

int main(void) {
  reg = fsq_test_open_registry();
  if (reg == NULL) return 1;
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_translation_loads_dictionaries_and_logs_them),
      FSQ_TEST_CASE(test_translation_infers_language_pair_from_file_names),
      FSQ_TEST_CASE(test_translation_batches_cover_each_example_once_per_epoch),
      FSQ_TEST_CASE(test_translation_skips_or_refuses_too_long_examples),
      FSQ_TEST_CASE(test_translation_collates_known_examples),
      FSQ_TEST_CASE(test_translation_refuses_missing_data_and_bad_options),
      FSQ_TEST_END};
  int rc = fsq_test_main("task_translation", cases);
  fsq_registry_close(reg);
  return rc;
}
