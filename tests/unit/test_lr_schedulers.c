/* test_lr_schedulers.c: the inverse_sqrt and fixed components, loaded
 * through the registry from the staged build tree, follow fairseq's
 * formulas (expected values computed by hand from those formulas). */
#include "fsq_test.h"
#include "registry/fsq_registry.h"
#include "train/fsq_lr_scheduler.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

static fsq_registry *reg;

/* Resolves the scheduler's options (user values from args) and creates it. */
static const fsq_lr_scheduler_ops *make(const char *name, const char *args, fsq_lr_scheduler **s) {
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_LR_SCHEDULER, name, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL_FATAL(e->component->ops_version, FSQ_LR_SCHEDULER_OPS_VERSION);
  static const fsq_option lr_option[] = {{"lr", FSQ_OPT_STRING, "0.25", "", NULL, NULL},
                                         FSQ_OPTION_END};
  fsq_option_set *set = fsq_option_set_new();
  fsq_option_set_add(set, "optimization", lr_option);
  fsq_option_set_add(set, name, e->component->options);
  char buf[256], *argv[16];
  int argc = 0;
  snprintf(buf, sizeof buf, "prog %s", args);
  for (char *tok = strtok(buf, " "); tok != NULL && argc < 16; tok = strtok(NULL, " "))
    argv[argc++] = tok;
  json_object *cfg = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_options_parse(set, argc, argv, &cfg, NULL), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_options_fill_defaults(set, cfg), FSQ_OK);
  const fsq_lr_scheduler_ops *ops = e->component->ops;
  CU_ASSERT_EQUAL_FATAL(ops->create(cfg, s), FSQ_OK);
  json_object_put(cfg);
  fsq_option_set_free(set);
  return ops;
}

static void test_inverse_sqrt_warms_up_then_decays(void) {
  fsq_lr_scheduler *s;
  const fsq_lr_scheduler_ops *ops = make("inverse_sqrt", "--lr 5e-4 --warmup-updates 4000", &s);
  CU_ASSERT_DOUBLE_EQUAL(ops->get_lr(s), 0.0, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 1), 5e-4 / 4000, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 2000), 2.5e-4, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 4000), 5e-4, 1e-15);
  /* 5e-4 * sqrt(4000) / sqrt(16000) = 2.5e-4 */
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 16000), 2.5e-4, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step(s, 1, 1, 3.5), 2.5e-4, 1e-15);
  ops->destroy(s);
  make("inverse_sqrt", "--lr 1e-3 --warmup-updates 10 --warmup-init-lr 1e-7", &s);
  CU_ASSERT_DOUBLE_EQUAL(ops->get_lr(s), 1e-7, 1e-18);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 5), 1e-7 + 5 * (1e-3 - 1e-7) / 10, 1e-15);
  ops->destroy(s);
}

static void test_inverse_sqrt_refuses_lr_list(void) {
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_LR_SCHEDULER, "inverse_sqrt", NULL);
  const fsq_lr_scheduler_ops *ops = e->component->ops;
  json_object *cfg = json_object_new_object();
  json_object_object_add(cfg, "lr", json_object_new_string("0.1,0.2"));
  json_object_object_add(cfg, "warmup_updates", json_object_new_int64(10));
  json_object_object_add(cfg, "warmup_init_lr", json_object_new_double(-1));
  fsq_lr_scheduler *s = NULL;
  CU_ASSERT_EQUAL(ops->create(cfg, &s), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--lr-scheduler=fixed"));
  json_object_put(cfg);
}

static void test_fixed_follows_epochs_and_anneals(void) {
  fsq_lr_scheduler *s;
  const fsq_lr_scheduler_ops *ops =
      make("fixed", "--lr 0.5,0.25,0.125 --force-anneal 5 --lr-shrink 0.5", &s);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 1), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 10), 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 2), 0.25, 0);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 4), 0.125, 0);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 5), 0.125 * 0.5, 0);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 7), 0.125 * 0.125, 0);
  ops->destroy(s);
}

static void test_fixed_warmup_and_state_round_trip(void) {
  fsq_lr_scheduler *s;
  const fsq_lr_scheduler_ops *ops = make("fixed", "--lr 0.1 --warmup-updates 4", &s);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_begin_epoch(s, 1), 0.1 / 4, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 1), 0.1 * 2 / 4, 1e-15);
  CU_ASSERT_DOUBLE_EQUAL(ops->step_update(s, 4), 0.1, 1e-15);
  ops->step(s, 1, 1, 2.0);
  ops->step(s, 2, 1, 1.5);
  ops->step(s, 3, 1, 1.7);
  json_object *state = NULL;
  CU_ASSERT_EQUAL_FATAL(ops->state_save(s, &state), FSQ_OK);
  double best = 0;
  CU_ASSERT_EQUAL(fsq_json_get_double(state, "best", &best), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(best, 1.5, 0);
  fsq_lr_scheduler *t;
  make("fixed", "--lr 0.3", &t);
  CU_ASSERT_EQUAL(ops->state_load(t, state), FSQ_OK);
  json_object *again = NULL;
  ops->state_save(t, &again);
  CU_ASSERT_STRING_EQUAL(json_object_to_json_string(again), json_object_to_json_string(state));
  json_object_put(state);
  json_object_put(again);
  ops->destroy(s);
  ops->destroy(t);
}

int main(void) {
  reg = fsq_test_open_registry();
  if (reg == NULL) return 1;
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_inverse_sqrt_warms_up_then_decays),
      FSQ_TEST_CASE(test_inverse_sqrt_refuses_lr_list),
      FSQ_TEST_CASE(test_fixed_follows_epochs_and_anneals),
      FSQ_TEST_CASE(test_fixed_warmup_and_state_round_trip),
      FSQ_TEST_END};
  int rc = fsq_test_main("lr_schedulers", cases);
  fsq_registry_close(reg);
  return rc;
}
