/* test_trainer_mixed.c: --fp16 and --bf16 training (trainer_mixed.c,
 * fairseq's FP16Optimizer) with real components on the CPU backend's 16-bit
 * kernels (f32 arithmetic on 16-bit storage, as the GPU's):
 *   - a 16-bit run follows the f32 run of the same seed: the same initial
 *     master weights, losses and gradient norms within the 16-bit rounding,
 *     updates in the same direction, and the model always the masters
 *     rounded;
 *   - --fp16 skips an update whose scaled gradients overflow, halving the
 *     scale, and stops at --min-loss-scale naming the update;
 *   - behind the test memory fence (a device the host cannot touch) the
 *     same bits as on the CPU, checkpoints with the f32 masters and the
 *     loss scale, restored exactly. */
#include "fenced_backend.h"
#include "fsq_test.h"
#include "trainer_fixture.h"
#include "checkpoint/fsq_checkpoint.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIXED_ARGS                                                                          \
  "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "             \
  "--decoder-embed-dim 16 --decoder-ffn-embed-dim 32 --dropout 0 --label-smoothing 0.1 "   \
  "--batch-size 16 --lr 0.001 --adam-betas (0.9,0.98) --clip-norm 1.0 --seed 3 "

static float round_to(fsq_dtype t, float v) {
  return t == FSQ_F16 ? fsq_f16_to_f32(fsq_f32_to_f16(v)) : fsq_bf16_to_f32(fsq_f32_to_bf16(v));
}

/* The flat f32 values of a run: its masters, or an f32 run's parameters. */
static float *values_of(const run *r, size_t *n) {
  const fsq_trainer *t = r->trainer;
  size_t total = 0;
  for (size_t i = 0; i < t->n_params; i++) total += t->oparams[i].numel;
  float *v = malloc(total * sizeof *v), *at = v;
  for (size_t i = 0; i < t->n_params; i++) {
    memcpy(at, t->oparams[i].value, t->oparams[i].numel * sizeof *v);
    at += t->oparams[i].numel;
  }
  *n = total;
  return v;
}

/* Every parameter of a 16-bit run is its master rounded. */
static size_t params_not_rounded_masters(const run *r) {
  const fsq_trainer *t = r->trainer;
  size_t bad = 0;
  for (size_t i = 0; i < t->n_params; i++) {
    const fsq_tensor *p = fsq_params_at(t->params, i);
    CU_ASSERT_EQUAL_FATAL(p->dtype, t->precision);
    for (int64_t k = 0; k < fsq_numel(p); k++)
      bad += (float)fsq_get(p, k) != round_to(p->dtype, t->oparams[i].value[k]);
  }
  return bad;
}

/* cos(a - a0, b - b0): whether two runs moved their weights alike. */
static double update_cosine(const float *a0, const float *a, const float *b0, const float *b,
                            size_t n) {
  double dot = 0, na = 0, nb = 0;
  for (size_t k = 0; k < n; k++) {
    double u = (double)a[k] - a0[k], v = (double)b[k] - b0[k];
    dot += u * v;
    na += u * u;
    nb += v * v;
  }
  return na > 0 && nb > 0 ? dot / sqrt(na * nb) : 0;
}

static void follows_f32(const char *flag) {
  char *dir = fixture_data_dir("mixed-follow", "train");
  char args[1024];
  snprintf(args, sizeof args, MIXED_ARGS "%s", flag);
  run f32, half;
  fixture_start(dir, MIXED_ARGS, &f32);
  fixture_start(dir, args, &half);
  size_t n, n2;
  float *f32_0 = values_of(&f32, &n), *half_0 = values_of(&half, &n2);
  CU_ASSERT_EQUAL_FATAL(n, n2);
  CU_ASSERT_EQUAL(memcmp(f32_0, half_0, n * sizeof *f32_0), 0); /* masters: the f32 init */
  CU_ASSERT_EQUAL(params_not_rounded_masters(&half), 0);
  fsq_epoch_iter *it_f32 = fixture_in_order(&f32, 1, 1);
  fsq_epoch_iter *it_half = fixture_in_order(&half, 1, 1);
  for (int64_t update = 1; update <= 3; update++) {
    fsq_criterion_log log_f32, log_half;
    double gnorm_f32 = 0, gnorm_half = 0;
    fixture_update_once(&f32, it_f32, update, &log_f32, &gnorm_f32);
    fixture_update_once(&half, it_half, update, &log_half, &gnorm_half);
    fprintf(stderr, "%s update %lld: loss %.6f vs f32 %.6f, gnorm %.6f vs %.6f\n", flag,
            (long long)update, log_half.loss, log_f32.loss, gnorm_half, gnorm_f32);
    CU_ASSERT_EQUAL(half.trainer->num_updates, update);
    CU_ASSERT_EQUAL(log_half.sample_size, log_f32.sample_size);
    CU_ASSERT_DOUBLE_EQUAL(log_half.loss, log_f32.loss, 1e-2 * log_f32.loss);
    CU_ASSERT_DOUBLE_EQUAL(gnorm_half, gnorm_f32, 3e-2 * gnorm_f32);
  }
  float *f32_3 = values_of(&f32, &n), *half_3 = values_of(&half, &n2);
  double cosine = update_cosine(f32_0, f32_3, half_0, half_3, n);
  fprintf(stderr, "%s: cos(update, f32 update) = %.5f\n", flag, cosine);
  CU_ASSERT(cosine > 0.98);
  CU_ASSERT_EQUAL(params_not_rounded_masters(&half), 0);
  free(f32_0);
  free(half_0);
  free(f32_3);
  free(half_3);
  fsq_epoch_iter_free(it_f32);
  fsq_epoch_iter_free(it_half);
  fixture_finish(&f32);
  fixture_finish(&half);
  fixture_data_dir_free(dir);
}

static void test_bf16_follows_f32(void) { follows_f32("--bf16"); }
static void test_fp16_follows_f32(void) { follows_f32("--fp16"); }

/* One attempt at an update: FSQ_UPDATE_APPLIED or _SKIPPED. */
static int attempt(run *r, fsq_epoch_iter *it, int64_t epoch, fsq_status *st) {
  fsq_criterion_log log;
  double gnorm = 0;
  int updated = 0, end = 0;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_begin(it, epoch), FSQ_OK);
  *st = fsq_trainer_update(r->trainer, it, &log, &gnorm, &updated, &end);
  return updated;
}

/* A loss scale of 2^30 overflows the f16 gradients: the update is skipped
 * (no update counted, the masters untouched) and the scale halved, again
 * and again, until the scaled gradients fit and the update is applied. */
static void test_fp16_overflow_skips_the_update_and_halves_the_scale(void) {
  char *dir = fixture_data_dir("mixed-overflow", "train");
  run r;
  fixture_start(dir, MIXED_ARGS "--fp16 --fp16-init-scale 1073741824", &r);
  fsq_epoch_iter *it = fixture_in_order(&r, 1, 1);
  size_t n;
  float *initial = values_of(&r, &n);
  fsq_status st;
  CU_ASSERT_EQUAL(attempt(&r, it, 1, &st), FSQ_UPDATE_SKIPPED);
  CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
  CU_ASSERT_EQUAL(r.trainer->num_updates, 0);
  CU_ASSERT_EQUAL(r.trainer->scaler.loss_scale, 536870912.0);
  float *after = values_of(&r, &n);
  CU_ASSERT_EQUAL(memcmp(initial, after, n * sizeof *after), 0);
  int skips = 1, applied = 0;
  for (int64_t e = 2; e <= 40 && !applied; e++) {
    applied = attempt(&r, it, e, &st) == FSQ_UPDATE_APPLIED;
    CU_ASSERT_EQUAL_FATAL(st, FSQ_OK);
    skips += !applied;
  }
  fprintf(stderr, "applied after %d skipped updates, at loss scale %g\n", skips,
          r.trainer->scaler.loss_scale);
  CU_ASSERT(applied);
  /* the target's logit gradient is about -0.85 x the scale: scales 2^30 to
   * 2^17 overflow f16 (max 65504) */
  CU_ASSERT(skips >= 14);
  CU_ASSERT_EQUAL(r.trainer->num_updates, 1);
  CU_ASSERT_EQUAL(r.trainer->scaler.loss_scale, ldexp(1.0, 30 - skips));
  CU_ASSERT_EQUAL(params_not_rounded_masters(&r), 0);
  free(initial);
  free(after);
  fsq_epoch_iter_free(it);
  fixture_finish(&r);
  fixture_data_dir_free(dir);
}

/* An overflow that would take the scale to --min-loss-scale stops training
 * with fairseq's message, naming the update; the scale is kept. */
static void test_fp16_stops_at_the_minimum_loss_scale(void) {
  char *dir = fixture_data_dir("mixed-minimum", "train");
  run r;
  fixture_start(dir, MIXED_ARGS "--fp16 --fp16-init-scale 1048576 --min-loss-scale 600000", &r);
  fsq_epoch_iter *it = fixture_in_order(&r, 1, 1);
  fsq_status st;
  attempt(&r, it, 1, &st);
  CU_ASSERT_NOT_EQUAL(st, FSQ_OK);
  fprintf(stderr, "%s\n", fsq_error_message());
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "Minimum loss scale reached (600000)"));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "at update 1"));
  CU_ASSERT_EQUAL(r.trainer->scaler.loss_scale, 1048576.0);
  CU_ASSERT_EQUAL(r.trainer->num_updates, 0);
  fsq_epoch_iter_free(it);
  fixture_finish(&r);
  fixture_data_dir_free(dir);
}

/* The device run's masters, brought to the host, equal the CPU run's. */
static int masters_equal(const run *cpu, const run *dev) {
  const fsq_trainer *a = cpu->trainer, *b = dev->trainer;
  int same = a->n_params == b->n_params;
  for (size_t i = 0; same && i < a->n_params; i++) {
    size_t bytes = a->oparams[i].numel * sizeof(float);
    float *host = malloc(bytes);
    b->k->mem_download(host, b->oparams[i].value, bytes);
    same = memcmp(a->oparams[i].value, host, bytes) == 0;
    free(host);
  }
  return same;
}

static fsq_state *save_and_load(run *r, const char *dir, const char *sub) {
  char path[700], save_dir[600];
  snprintf(save_dir, sizeof save_dir, "%s/%s", dir, sub);
  json_object_object_add(r->config.cfg, "save_dir", json_object_new_string(save_dir));
  json_object_object_add(r->config.cfg, "no_epoch_checkpoints", json_object_new_boolean(1));
  CU_ASSERT_EQUAL_FATAL(fsq_trainer_save(r->trainer, 1, 0, 0.0), FSQ_OK);
  snprintf(path, sizeof path, "%s/checkpoint_last.fsq", save_dir);
  fsq_state *st = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, NULL, &st), FSQ_OK);
  return st;
}

/* The checkpoint's model records are the f32 masters; an --fp16 one keeps
 * the scale in last_optimizer_state, as fairseq's. */
static void check_checkpoint(const run *r, fsq_state *st) {
  const fsq_trainer *t = r->trainer;
  CU_ASSERT_EQUAL_FATAL(fsq_state_count(st, FSQ_CKPT_MODEL), t->n_params);
  for (size_t i = 0; i < t->n_params; i++) {
    const fsq_ckpt_tensor *rec = fsq_state_at(st, FSQ_CKPT_MODEL, i);
    CU_ASSERT_EQUAL(rec->dtype, FSQ_CKPT_F32);
    CU_ASSERT_EQUAL_FATAL(rec->nbytes, t->oparams[i].numel * sizeof(float));
    CU_ASSERT_EQUAL(memcmp(rec->data, t->oparams[i].value, rec->nbytes), 0);
  }
  json_object *opt = NULL, *scale = NULL;
  CU_ASSERT(json_object_object_get_ex(fsq_state_meta(st), "last_optimizer_state", &opt));
  int has = json_object_object_get_ex(opt, "loss_scale", &scale);
  CU_ASSERT_EQUAL(has, t->has_scaler);
  if (has) CU_ASSERT_EQUAL(json_object_get_double(scale), t->scaler.loss_scale);
}

/* Three updates of --update-freq 2 with dropout on the CPU and behind the
 * memory fence: the same logs, norms, masters and 16-bit parameters bit for
 * bit; checkpoints hold the masters and restore them exactly, and no device
 * memory is left. */
static void on_a_fenced_device(const char *flag) {
  const fsq_kernels *dev = fsq_test_fenced_kernels();
  CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
  size_t live = fsq_test_fenced_live();
  char *dir = fixture_data_dir("mixed-fenced", "train"), args[1024];
  snprintf(args, sizeof args,
           "--arch transformer_tiny --encoder-embed-dim 16 --encoder-ffn-embed-dim 32 "
           "--decoder-embed-dim 16 --decoder-ffn-embed-dim 32 --dropout 0.1 "
           "--label-smoothing 0.1 --report-accuracy --batch-size 16 --lr 0.001 "
           "--adam-betas (0.9,0.98) --clip-norm 0.5 --seed 3 --update-freq 2 %s", flag);
  run cpu, fenced, again;
  fixture_start_on(dir, args, NULL, &cpu);
  fixture_start_on(dir, args, dev, &fenced);
  fsq_epoch_iter *it_cpu = fixture_in_order(&cpu, 2, 2);
  fsq_epoch_iter *it_dev = fixture_in_order(&fenced, 2, 2);
  for (int64_t update = 1; update <= 3; update++) {
    fsq_criterion_log log_cpu, log_dev;
    double gnorm_cpu = 0, gnorm_dev = 0;
    fixture_update_once(&cpu, it_cpu, update, &log_cpu, &gnorm_cpu);
    fixture_update_once(&fenced, it_dev, update, &log_dev, &gnorm_dev);
    CU_ASSERT(log_cpu.total > 0 && log_cpu.loss > 0);
    CU_ASSERT_EQUAL(memcmp(&log_cpu, &log_dev, sizeof log_cpu), 0);
    CU_ASSERT_EQUAL(memcmp(&gnorm_cpu, &gnorm_dev, sizeof gnorm_cpu), 0);
  }
  CU_ASSERT(masters_equal(&cpu, &fenced));
  CU_ASSERT_EQUAL(fixture_params_differing(&cpu, &fenced), 0);
  cpu.trainer->train_iter = it_cpu; /* the position saved with the progress */
  fenced.trainer->train_iter = it_dev;
  fsq_state *saved_cpu = save_and_load(&cpu, dir, "cpu");
  fsq_state *saved_dev = save_and_load(&fenced, dir, "dev");
  check_checkpoint(&cpu, saved_cpu);
  check_checkpoint(&cpu, saved_dev);
  fixture_start_on(dir, args, dev, &again);
  CU_ASSERT_EQUAL_FATAL(fsq_trainer_restore(again.trainer, saved_dev), FSQ_OK);
  CU_ASSERT_EQUAL(again.trainer->num_updates, 3);
  CU_ASSERT(masters_equal(&cpu, &again));
  CU_ASSERT_EQUAL(fixture_params_differing(&cpu, &again), 0);
  if (cpu.trainer->has_scaler)
    CU_ASSERT_EQUAL(again.trainer->scaler.loss_scale, cpu.trainer->scaler.loss_scale);
  fixture_finish(&again);
  fsq_state_free(saved_cpu);
  fsq_state_free(saved_dev);
  fsq_epoch_iter_free(it_cpu);
  fsq_epoch_iter_free(it_dev);
  fixture_finish(&cpu);
  fixture_finish(&fenced);
  CU_ASSERT_EQUAL(fsq_test_fenced_live(), live);
  fixture_data_dir_free(dir);
}

static void test_bf16_on_a_fenced_device_equals_the_cpu(void) { on_a_fenced_device("--bf16"); }
static void test_fp16_on_a_fenced_device_equals_the_cpu(void) { on_a_fenced_device("--fp16"); }

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_bf16_follows_f32),
      FSQ_TEST_CASE(test_fp16_follows_f32),
      FSQ_TEST_CASE(test_fp16_overflow_skips_the_update_and_halves_the_scale),
      FSQ_TEST_CASE(test_fp16_stops_at_the_minimum_loss_scale),
      FSQ_TEST_CASE(test_bf16_on_a_fenced_device_equals_the_cpu),
      FSQ_TEST_CASE(test_fp16_on_a_fenced_device_equals_the_cpu),
      FSQ_TEST_END};
  return fsq_test_main("trainer_mixed", cases);
}
