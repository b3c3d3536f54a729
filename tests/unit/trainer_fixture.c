/* trainer_fixture.c: the trainer tests' shared setup (trainer_fixture.h). */
#include "trainer_fixture.h"
#include "fsq_test.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The corpus: FIXTURE_N pairs; the first half short, the second long, so that the
 * two halves have different token counts (a per-sub-batch normalization
 * would weight them differently).
 *   source i: 2 + i % 4 (+ 4 in the second half) words, then </s>
 *   target i: 1 + i % 3 (+ 3 in the second half) words, then </s> */
#define WORDS 10

static int64_t src_len(size_t i) { return 2 + (int64_t)(i % 4) + (i >= FIXTURE_N / 2 ? 4 : 0) + 1; }
static int64_t tgt_len(size_t i) { return 1 + (int64_t)(i % 3) + (i >= FIXTURE_N / 2 ? 3 : 0) + 1; }

static void write_dict(const char *dir, const char *lang) {
  fsq_dictionary *d = fsq_dictionary_new();
  char path[512], w[16];
  for (int k = 0; k < WORDS; k++) {
    snprintf(w, sizeof w, "%s%d", lang, k);
    fsq_dictionary_add(d, w, strlen(w), 100 - k, 0);
  }
  snprintf(path, sizeof path, "%s/dict.%s.txt", dir, lang);
  CU_ASSERT_EQUAL_FATAL(fsq_dictionary_save(d, path), FSQ_OK);
  fsq_dictionary_free(d);
}

static void write_side(const char *dir, const char *split, const char *lang, int source) {
  char bin[512], idx[512];
  snprintf(bin, sizeof bin, "%s/%s.de-en.%s.bin", dir, split, lang);
  snprintf(idx, sizeof idx, "%s/%s.de-en.%s.idx", dir, split, lang);
  fsq_indexed_writer *w = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_open(bin, FSQ_IDX_UINT16, &w), FSQ_OK);
  for (size_t i = 0; i < FIXTURE_N; i++) {
    int32_t ids[16];
    int64_t len = source ? src_len(i) : tgt_len(i);
    for (int64_t k = 0; k < len - 1; k++)
      ids[k] = 4 + (int32_t)((i * 7 + (size_t)k * (source ? 3 : 5)) % WORDS);
    ids[len - 1] = FSQ_DICT_EOS;
    CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_add(w, ids, (size_t)len), FSQ_OK);
  }
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_finish(w, idx), FSQ_OK);
}

char *fixture_data_dir(const char *tag, const char *split) {
  char *dir = fsq_test_tempdir(tag);
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  write_dict(dir, "de");
  write_dict(dir, "en");
  write_side(dir, split, "de", 1);
  write_side(dir, split, "en", 0);
  return dir;
}

void fixture_data_dir_free(char *dir) {
  fsq_test_remove_tree(dir);
  free(dir);
}

/* The options of fairseq-train that the trainer reads. */
static const fsq_option program_options[] = {
    {"seed", FSQ_OPT_INT, "1", "seed", NULL, NULL},
    {"log-format", FSQ_OPT_STRING, "none", "log format", NULL, NULL},
    {"task", FSQ_OPT_STRING, "translation", "task", NULL, NULL},
    {"arch", FSQ_OPT_STRING, NULL, "model architecture", NULL, "a"},
    {"criterion", FSQ_OPT_STRING, "label_smoothed_cross_entropy", "criterion", NULL, NULL},
    {"optimizer", FSQ_OPT_STRING, "adam", "optimizer", NULL, NULL},
    {"lr-scheduler", FSQ_OPT_STRING, "fixed", "learning rate scheduler", NULL, NULL},
    {"max-tokens", FSQ_OPT_INT, NULL, "max tokens", NULL, NULL},
    {"batch-size", FSQ_OPT_INT, NULL, "batch size", NULL, NULL},
    {"required-batch-size-multiple", FSQ_OPT_INT, "1", "multiple", NULL, NULL},
    {"train-subset", FSQ_OPT_STRING, "train", "training split", NULL, NULL},
    {"update-freq", FSQ_OPT_INT, "1", "update every FIXTURE_N batches", NULL, NULL},
    {"clip-norm", FSQ_OPT_FLOAT, "0.0", "clip threshold of gradients", NULL, NULL},
    {"lr", FSQ_OPT_STRING, "0.25", "learning rate", NULL, NULL},
    {"fp16", FSQ_OPT_BOOL, NULL, "use FP16", NULL, NULL},
    {"bf16", FSQ_OPT_BOOL, NULL, "use bfloat16", NULL, NULL},
    {"fp16-init-scale", FSQ_OPT_INT, "128", "initial loss scale", NULL, NULL},
    {"fp16-scale-window", FSQ_OPT_INT, NULL, "scale window", NULL, NULL},
    {"fp16-scale-tolerance", FSQ_OPT_FLOAT, "0.0", "scale tolerance", NULL, NULL},
    {"min-loss-scale", FSQ_OPT_FLOAT, "1e-4", "minimum loss scale", NULL, NULL},
    {"threshold-loss-scale", FSQ_OPT_FLOAT, NULL, "threshold loss scale", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_config_selector selectors[] = {
    {"task", FSQ_KIND_TASK},           {"arch", FSQ_KIND_MODEL},
    {"criterion", FSQ_KIND_CRITERION}, {"optimizer", FSQ_KIND_OPTIMIZER},
    {"lr-scheduler", FSQ_KIND_LR_SCHEDULER}, FSQ_SELECTOR_END};

/* Resolves "--flag value ..." as fairseq-train would, with data dir data,
 * and builds the trainer. */
void fixture_start_on(const char *data, const char *args, const fsq_kernels *backend, run *r) {
  memset(r, 0, sizeof *r);
  CU_ASSERT_EQUAL_FATAL(fsq_test_resolve("fairseq-train", program_options, selectors, args,
                                         &r->config), FSQ_OK);
  json_object_object_add(r->config.cfg, "data", json_object_new_string(data));
  fsq_trainer_parts parts = {
      r->config.chosen[FSQ_KIND_TASK]->component->ops,
      r->config.chosen[FSQ_KIND_MODEL]->component->ops,
      r->config.chosen[FSQ_KIND_CRITERION]->component->ops,
      r->config.chosen[FSQ_KIND_OPTIMIZER]->component->ops,
      r->config.chosen[FSQ_KIND_LR_SCHEDULER]->component->ops, backend};
  fsq_status st = fsq_trainer_create(r->config.cfg, &parts, &r->trainer);
  if (st != FSQ_OK) fprintf(stderr, "fsq_trainer_create: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
}

void fixture_start(const char *data, const char *args, run *r) { fixture_start_on(data, args, NULL, r); }

void fixture_finish(run *r) {
  fsq_trainer_destroy(r->trainer);
  fsq_config_free(&r->config);
}

/* An iterator over the training split's sentences in order (shuffle off),
 * cut into `parts` batches of equal size, of which the first `taken` make
 * the epoch. The task opens the split first (collate reads a loaded split). */
fsq_epoch_iter *fixture_in_order(run *r, size_t parts, size_t taken) {
  fsq_trainer *t = r->trainer;
  fsq_epoch_iter *task_iter = NULL;
  fsq_batch_spec spec = {.max_sentences = FIXTURE_N, .required_batch_size_multiple = 1, .seed = 1,
                         .num_shards = 1};
  const char *split = fsq_cfg_string(t->cfg, "train_subset", "train");
  CU_ASSERT_EQUAL_FATAL(t->parts.task->get_batch_iterator(t->task, split, &spec, &task_iter), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(t->parts.task->dataset_size(t->task, split), FIXTURE_N);
  CU_ASSERT_FATAL(parts >= 1 && parts <= 2 && taken >= 1 && taken <= parts);
  uint32_t indices[FIXTURE_N];
  for (uint32_t i = 0; i < FIXTURE_N; i++) indices[i] = i;
  size_t offsets[3] = {0, FIXTURE_N / parts, FIXTURE_N};
  fsq_batches b = {indices, offsets, taken};
  fsq_epoch_iter *it = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 1, 0, 1, 0, &it), FSQ_OK);
  return it;
}

/* One update of r from it (the batches of update number `update`); it must
 * take place. */
void fixture_update_once(run *r, fsq_epoch_iter *it, int64_t update, fsq_criterion_log *log,
                        double *gnorm) {
  int updated = 0, end = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_begin(it, update), FSQ_OK);
  fsq_status st = fsq_trainer_update(r->trainer, it, log, gnorm, &updated, &end);
  if (st != FSQ_OK) fprintf(stderr, "update %lld: %s\n", (long long)update, fsq_error_message());
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  CU_ASSERT_EQUAL(updated, FSQ_UPDATE_APPLIED);
}

/* How many parameters of the device run dev differ in any bit from the CPU
 * run's (read back through the backend). */
size_t fixture_params_differing(const run *cpu, const run *dev) {
  const fsq_params *pc = cpu->trainer->params, *pd = dev->trainer->params;
  CU_ASSERT_EQUAL_FATAL(fsq_params_count(pc), fsq_params_count(pd));
  size_t differ = 0;
  for (size_t i = 0; i < fsq_params_count(pc); i++) {
    const fsq_tensor *a = fsq_params_at(pc, i), *b = fsq_params_at(pd, i);
    size_t bytes = (size_t)fsq_numel(a) * fsq_dtype_size(a->dtype);
    float *host = malloc(bytes);
    CU_ASSERT_EQUAL(fsq_download(dev->trainer->ctx, b, host), FSQ_OK);
    differ += memcmp(a->data, host, bytes) != 0;
    free(host);
  }
  return differ;
}

