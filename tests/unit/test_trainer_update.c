/* test_trainer_update.c: the trainer's update step (fsq_trainer_update,
 * fairseq's Trainer.train_step) with real components: the translation task
 * on a tiny data directory, transformer_tiny without dropout,
 * label_smoothed_cross_entropy, adam and the fixed scheduler.
 *
 * fairseq sums the loss and sample_size over the --update-freq sub-batches
 * and divides the accumulated gradient once, so one update over the halves
 * of a batch with --update-freq 2 is the update over the whole batch with
 * --update-freq 1 (up to float rounding). */
#include "fenced_backend.h"
#include "fsq_test.h"
#include "trainer_fixture.h"
#include "checkpoint/fsq_checkpoint.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The attention key biases (k_proj.bias) get a gradient that is zero in
 * exact arithmetic: adding a constant to every key adds q.b to every score
 * of a query, which softmax ignores. What backward computes for them is
 * rounding noise, which Adam normalizes to steps of about lr (fairseq and
 * PyTorch do the same), so two batch shapes cannot agree on them; they are
 * only held to that noise band. */
static int is_key_bias(const char *name) {
  size_t n = strlen(name);
  return n > 11 && strcmp(name + n - 11, "k_proj.bias") == 0;
}

/* How far two runs' parameters are apart (key biases aside):
 *   model:  max |a - b| / max |a| over all parameters (fairseq-wide 1e-6);
 *   tensor: the same within each tensor, the largest (a zero-initialized
 *           bias has a scale of a few lr, and Adam turns the rounding of a
 *           near-zero gradient into a step of up to lr: looser);
 *   key_bias: max |a - b| of the key biases;
 *   moved:  the largest change of a tensor since initial, relative to it. */
typedef struct comparison {
  double model, tensor, key_bias, moved;
} comparison;

static comparison compare_params(const run *a, const run *b, const float *const *initial,
                                  int report) {
  const fsq_params *pa = a->trainer->params, *pb = b->trainer->params;
  comparison c = {0, 0, 0, 0};
  double model_scale = 0, model_diff = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_params_count(pa), fsq_params_count(pb));
  for (size_t i = 0; i < fsq_params_count(pa); i++) {
    const fsq_tensor *x = fsq_params_at(pa, i), *y = fsq_params_at(pb, i);
    CU_ASSERT_STRING_EQUAL_FATAL(x->name, y->name);
    CU_ASSERT_EQUAL_FATAL(fsq_numel(x), fsq_numel(y));
    double scale = 0, diff = 0, change = 0;
    for (int64_t k = 0; k < fsq_numel(x); k++) {
      double u = fsq_get(x, k), v = fsq_get(y, k);
      scale = fmax(scale, fabs(u));
      diff = fmax(diff, fabs(u - v));
      change = fmax(change, fabs(u - initial[i][k]));
    }
    if (is_key_bias(x->name)) {
      c.key_bias = fmax(c.key_bias, diff);
      continue;
    }
    model_scale = fmax(model_scale, scale);
    model_diff = fmax(model_diff, diff);
    if (scale > 0) {
      c.tensor = fmax(c.tensor, diff / scale);
      c.moved = fmax(c.moved, change / scale);
    }
    if (report && scale > 0 && diff / scale > 1e-6)
      fprintf(stderr, "%s: differs by %g of its largest element\n", x->name, diff / scale);
  }
  c.model = model_scale > 0 ? model_diff / model_scale : model_diff;
  return c;
}

static float **copy_params(const fsq_params *p) {
  float **out = calloc(fsq_params_count(p), sizeof *out);
  for (size_t i = 0; i < fsq_params_count(p); i++) {
    const fsq_tensor *t = fsq_params_at(p, i);
    out[i] = malloc((size_t)fsq_numel(t) * sizeof(float));
    memcpy(out[i], t->data, (size_t)fsq_numel(t) * sizeof(float));
  }
  return out;
}

static void free_copy(float **copy, size_t n) {
  for (size_t i = 0; i < n; i++) free(copy[i]);
  free(copy);
}

#define LR 0.001
#define FSQ_STR_(x) #x
#define FSQ_STR(x) FSQ_STR_(x)
#define MODEL_ARGS                                                                              \
  "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "                 \
  "--decoder-embed-dim 16 --decoder-ffn-embed-dim 32 --dropout 0 --label-smoothing 0.1 "       \
  "--batch-size 16 --lr " FSQ_STR(LR) " --adam-betas (0.9,0.98) --clip-norm 1.0 --seed 3 "

/* The done-when: --update-freq 2 over the two halves equals
 * --update-freq 1 over the whole batch after 3 updates: every parameter to
 * 1e-6 of the model's largest parameter, to 1e-5 of its own tensor's
 * largest element (see compare_params), key biases within their noise band;
 * the summed logs and the gradient norm to 1e-5. */
static void test_update_freq_2_over_halves_equals_one_full_batch(void) {
  char *dir = fixture_data_dir("upd-freq", "train");
  run full, halves;
  fixture_start(dir, MODEL_ARGS "--update-freq 1", &full);
  fixture_start(dir, MODEL_ARGS "--update-freq 2", &halves);
  CU_ASSERT_EQUAL(full.trainer->update_freq, 1);
  CU_ASSERT_EQUAL(halves.trainer->update_freq, 2);
  /* the same seed builds the same initial parameters */
  float **initial = copy_params(full.trainer->params);
  size_t n_params = fsq_params_count(full.trainer->params);
  comparison c = compare_params(&full, &halves, (const float *const *)initial, 1);
  CU_ASSERT_EQUAL(c.model, 0);
  CU_ASSERT_EQUAL(c.key_bias, 0);
  fsq_epoch_iter *it_full = fixture_in_order(&full, 1, 1);
  fsq_epoch_iter *it_halves = fixture_in_order(&halves, 2, 2);
  for (int64_t update = 1; update <= 3; update++) {
    fsq_criterion_log log_full, log_halves;
    double gnorm_full = 0, gnorm_halves = 0;
    fixture_update_once(&full, it_full, update, &log_full, &gnorm_full);
    fixture_update_once(&halves, it_halves, update, &log_halves, &gnorm_halves);
    CU_ASSERT_EQUAL(full.trainer->num_updates, update);
    CU_ASSERT_EQUAL(halves.trainer->num_updates, update);
    /* the logs are summed over the sub-batches */
    CU_ASSERT_EQUAL(log_halves.sample_size, log_full.sample_size);
    CU_ASSERT_EQUAL(log_halves.ntokens, log_full.ntokens);
    CU_ASSERT_EQUAL(log_halves.nsentences, FIXTURE_N);
    CU_ASSERT_DOUBLE_EQUAL(log_halves.loss, log_full.loss, 1e-5 * log_full.loss);
    CU_ASSERT_DOUBLE_EQUAL(log_halves.nll_loss, log_full.nll_loss, 1e-5 * log_full.nll_loss);
    CU_ASSERT_DOUBLE_EQUAL(gnorm_halves, gnorm_full, 1e-5 * gnorm_full);
  }
  c = compare_params(&full, &halves, (const float *const *)initial, 1);
  fprintf(stderr, "after 3 updates: tensors moved by up to %g; the runs differ by %g of the "
          "model's largest parameter, %g within a tensor, key biases by %g\n", c.moved, c.model,
          c.tensor, c.key_bias);
  CU_ASSERT(c.model <= 1e-6);
  CU_ASSERT(c.tensor <= 1e-5);
  CU_ASSERT(c.key_bias <= 2 * 3 * LR * 1.01); /* each run: 3 steps of at most ~lr */
  CU_ASSERT(c.moved > 1e-2);                  /* the updates changed the model */
  free_copy(initial, n_params);
  fsq_epoch_iter_free(it_full);
  fsq_epoch_iter_free(it_halves);
  fixture_finish(&full);
  fixture_finish(&halves);
  fixture_data_dir_free(dir);
}

/* The halves do differ: their token counts (what a per-sub-batch
 * normalization would weight them by) are not equal, and an update over
 * one half alone goes elsewhere. */
static void test_halves_alone_give_another_update(void) {
  char *dir = fixture_data_dir("upd-half", "train");
  run full, half;
  fixture_start(dir, MODEL_ARGS "--update-freq 1", &full);
  fixture_start(dir, MODEL_ARGS "--update-freq 1", &half);
  fsq_epoch_iter *it_full = fixture_in_order(&full, 1, 1);
  fsq_epoch_iter *it_half = fixture_in_order(&half, 2, 1);
  fsq_criterion_log log_full, log_half;
  double gnorm = 0;
  int updated = 0, end = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_begin(it_full, 1), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_trainer_update(full.trainer, it_full, &log_full, &gnorm, &updated, &end),
                        FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_begin(it_half, 1), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_trainer_update(half.trainer, it_half, &log_half, &gnorm, &updated, &end),
                        FSQ_OK);
  CU_ASSERT(log_half.sample_size < 0.5 * log_full.sample_size); /* the short half */
  float **initial = copy_params(half.trainer->params); /* (moved is not used here) */
  comparison c = compare_params(&full, &half, (const float *const *)initial, 0);
  CU_ASSERT(c.model > 1e-4);
  free_copy(initial, fsq_params_count(half.trainer->params));
  fsq_epoch_iter_free(it_full);
  fsq_epoch_iter_free(it_half);
  fixture_finish(&full);
  fixture_finish(&half);
  fixture_data_dir_free(dir);
}

/* --train-subset: the update collates from the split the batches are of. */
static void test_update_reads_the_train_subset(void) {
  char *dir = fixture_data_dir("upd-subset", "train2");
  run r;
  fixture_start(dir, MODEL_ARGS "--train-subset train2", &r);
  fsq_epoch_iter *it = fixture_in_order(&r, 1, 1);
  fsq_criterion_log log;
  double gnorm = 0;
  int updated = 0, end = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_begin(it, 1), FSQ_OK);
  fsq_status st = fsq_trainer_update(r.trainer, it, &log, &gnorm, &updated, &end);
  if (st != FSQ_OK) fprintf(stderr, "fsq_trainer_update: %s\n", fsq_error_message());
  CU_ASSERT_EQUAL(st, FSQ_OK);
  CU_ASSERT_EQUAL(updated, FSQ_UPDATE_APPLIED);
  CU_ASSERT_EQUAL(log.nsentences, FIXTURE_N);
  fsq_epoch_iter_free(it);
  fixture_finish(&r);
  fixture_data_dir_free(dir);
}

/* Three updates of --update-freq 2 with dropout, clipping and
 * --report-accuracy, trained once on the CPU and once on a device the host
 * cannot touch (the CPU kernels behind a memory fence: fenced_backend.h):
 * the same logs, gradient norms and parameters bit for bit, and no device
 * memory left when the trainer is gone. What the CPU can check of training
 * on a GPU: that the trainer, optimizer and criterion reach device memory
 * only through the backend table. */
static void test_training_on_a_fenced_device_equals_the_cpu(void) {
  const fsq_kernels *dev = fsq_test_fenced_kernels();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
  size_t live = fsq_test_fenced_live();
  char *dir = fixture_data_dir("fenced", "train");
  static const char *const args =
      "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "
      "--decoder-embed-dim 16 --decoder-ffn-embed-dim 32 --dropout 0.1 --label-smoothing 0.1 "
      "--report-accuracy --batch-size 16 --lr 0.001 --adam-betas (0.9,0.98) --clip-norm 0.5 "
      "--seed 3 --update-freq 2";
  run cpu, fenced;
  fixture_start_on(dir, args, NULL, &cpu);
  fixture_start_on(dir, args, dev, &fenced);
  fsq_epoch_iter *it_cpu = fixture_in_order(&cpu, 2, 2);
  fsq_epoch_iter *it_dev = fixture_in_order(&fenced, 2, 2);
  for (int64_t update = 1; update <= 3; update++) {
    fsq_criterion_log log_cpu, log_dev;
    double gnorm_cpu = 0, gnorm_dev = 0;
    fixture_update_once(&cpu, it_cpu, update, &log_cpu, &gnorm_cpu);
    fixture_update_once(&fenced, it_dev, update, &log_dev, &gnorm_dev);
    CU_ASSERT(log_cpu.total > 0 && log_cpu.loss > 0 && gnorm_cpu > 0.5); /* clipped */
    CU_ASSERT_EQUAL(memcmp(&log_cpu, &log_dev, sizeof log_cpu), 0);
    CU_ASSERT_EQUAL(memcmp(&gnorm_cpu, &gnorm_dev, sizeof gnorm_cpu), 0);
  }
  CU_ASSERT_EQUAL(fixture_params_differing(&cpu, &fenced), 0);
  /* checkpoints: the device's (host copies of its parameters and Adam
   * state) equal the CPU's record for record, and restore onto a fresh
   * device trainer */
  fsq_state *saved[2] = {NULL, NULL};
  run *runs[2] = {&cpu, &fenced};
  cpu.trainer->train_iter = it_cpu; /* the position saved with the progress */
  fenced.trainer->train_iter = it_dev;
  for (int r = 0; r < 2; r++) {
    char sub[600], path[700];
    snprintf(sub, sizeof sub, "%s/save%d", dir, r);
    json_object_object_add(runs[r]->config.cfg, "save_dir", json_object_new_string(sub));
    json_object_object_add(runs[r]->config.cfg, "no_epoch_checkpoints", json_object_new_boolean(1));
    CU_ASSERT_EQUAL_FATAL(fsq_trainer_save(runs[r]->trainer, 1, 0, 0.0), FSQ_OK);
    snprintf(path, sizeof path, "%s/checkpoint_last.fsq", sub);
    CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, NULL, &saved[r]), FSQ_OK);
  }
  for (int g = FSQ_CKPT_MODEL; g <= FSQ_CKPT_OPTIMIZER; g++) {
    size_t n = fsq_state_count(saved[0], (fsq_ckpt_group)g);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL_FATAL(fsq_state_count(saved[1], (fsq_ckpt_group)g), n);
    for (size_t i = 0; i < n; i++) {
      const fsq_ckpt_tensor *a = fsq_state_at(saved[0], (fsq_ckpt_group)g, i);
      const fsq_ckpt_tensor *b = fsq_state_at(saved[1], (fsq_ckpt_group)g, i);
      CU_ASSERT_EQUAL_FATAL(a->nbytes, b->nbytes);
      CU_ASSERT_EQUAL(memcmp(a->data, b->data, a->nbytes), 0);
    }
  }
  run again;
  fixture_start_on(dir, args, dev, &again);
  CU_ASSERT_EQUAL_FATAL(fsq_trainer_restore(again.trainer, saved[1]), FSQ_OK);
  CU_ASSERT_EQUAL(again.trainer->num_updates, 3);
  CU_ASSERT_EQUAL(fixture_params_differing(&cpu, &again), 0);
  fixture_finish(&again);
  fsq_state_free(saved[0]);
  fsq_state_free(saved[1]);
  fsq_epoch_iter_free(it_cpu);
  fsq_epoch_iter_free(it_dev);
  fixture_finish(&cpu);
  fixture_finish(&fenced);
  CU_ASSERT_EQUAL(fsq_test_fenced_live(), live); /* parameters, state, arenas: all freed */
  fixture_data_dir_free(dir);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_update_freq_2_over_halves_equals_one_full_batch),
      FSQ_TEST_CASE(test_halves_alone_give_another_update),
      FSQ_TEST_CASE(test_update_reads_the_train_subset),
      FSQ_TEST_CASE(test_training_on_a_fenced_device_equals_the_cpu),
      FSQ_TEST_END};
  return fsq_test_main("trainer_update", cases);
}
