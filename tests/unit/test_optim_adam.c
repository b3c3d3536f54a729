/* test_optim_adam.c: the adam component against reference steps computed
 * with PyTorch by scripts/fixtures/make_optim_fixtures.py (fairseq's Adam
 * update, including a step where one parameter has no gradient). */
#include "fsq_test.h"
#include "registry/fsq_registry.h"
#include "train/fsq_optimizer.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fsq_registry *reg;

static const fsq_optimizer_ops *adam_ops(void) {
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_OPTIMIZER, "adam", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL_FATAL(e->component->ops_version, FSQ_OPTIMIZER_OPS_VERSION);
  return e->component->ops;
}

static json_object *adam_config(const char *betas, double eps, double wd) {
  json_object *cfg = json_object_new_object();
  json_object_object_add(cfg, "adam_betas", json_object_new_string(betas));
  json_object_object_add(cfg, "adam_eps", json_object_new_double(eps));
  json_object_object_add(cfg, "weight_decay", json_object_new_double(wd));
  return cfg;
}

static void read_floats(char *text, float *out, size_t n) {
  char *save = NULL;
  for (size_t i = 0; i < n; i++) {
    char *tok = strtok_r(i == 0 ? text : NULL, " \n", &save);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    out[i] = strtof(tok, NULL);
  }
}

static void test_adam_matches_pytorch_reference(void) {
  char *path = fsq_test_source_path("tests/fixtures/optim/adam_steps.txt");
  FILE *f = fopen(path, "r");
  free(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  float w[7], b[3], gw[7], gb[3], expect[7];
  fsq_opt_param params[2] = {{"w", w, gw, 7, NULL}, {"b", b, gb, 3, NULL}};
  const fsq_optimizer_ops *ops = adam_ops();
  fsq_optimizer *opt = NULL;
  double lr = 0;
  int nograd_b = 0, checked = 0;
  char line[4096], name[16];
  while (fgets(line, sizeof line, f) != NULL) {
    int off = 0;
    if (strncmp(line, "param ", 6) == 0) {
      size_t numel;
      sscanf(line, "param %15s %zu %n", name, &numel, &off);
      read_floats(line + off, name[0] == 'w' ? w : b, numel);
    } else if (strncmp(line, "step ", 5) == 0) {
      if (opt == NULL) {
        json_object *cfg = adam_config("(0.9, 0.98)", 1e-4, 0.1);
        CU_ASSERT_EQUAL_FATAL(ops->create(cfg, params, 2, &opt), FSQ_OK);
        json_object_put(cfg);
      }
      sscanf(line, "step %*d %lf", &lr);
      nograd_b = 0;
    } else if (strncmp(line, "grad ", 5) == 0) {
      sscanf(line, "grad %15s %n", name, &off);
      read_floats(line + off, name[0] == 'w' ? gw : gb, name[0] == 'w' ? 7 : 3);
    } else if (strncmp(line, "nograd b", 8) == 0) {
      nograd_b = 1;
    } else if (strncmp(line, "expect ", 7) == 0) {
      sscanf(line, "expect %15s %n", name, &off);
      if (name[0] == 'w') { /* first expect line of a step: take the step now */
        params[1].grad = nograd_b ? NULL : gb;
        CU_ASSERT_EQUAL_FATAL(ops->step(opt, params, 2, lr), FSQ_OK);
      }
      size_t n = name[0] == 'w' ? 7 : 3;
      const float *got = name[0] == 'w' ? w : b;
      read_floats(line + off, expect, n);
      /* error relative to the tensor's scale: an element that cancels to
         near zero keeps the absolute error of its operands */
      float scale = 0;
      for (size_t i = 0; i < n; i++) scale = fmaxf(scale, fabsf(expect[i]));
      for (size_t i = 0; i < n; i++) {
        CU_ASSERT(fabsf(got[i] - expect[i]) <= 1e-6f * scale);
        checked++;
      }
    }
  }
  fclose(f);
  CU_ASSERT_EQUAL(checked, 4 * 10);
  ops->destroy(opt);
}

static void test_adam_state_buffers_and_round_trip(void) {
  const fsq_optimizer_ops *ops = adam_ops();
  float w[5] = {1, 2, 3, 4, 5}, g[5] = {0.5f, -1, 0.25f, 2, -3};
  fsq_opt_param p = {"decoder.fc1.weight", w, g, 5, NULL};
  json_object *cfg = adam_config("(0.9,0.999)", 1e-8, 0);
  fsq_optimizer *a = NULL, *b = NULL;
  CU_ASSERT_EQUAL_FATAL(ops->create(cfg, &p, 1, &a), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(ops->create(cfg, &p, 1, &b), FSQ_OK);
  ops->step(a, &p, 1, 0.1);
  ops->step(a, &p, 1, 0.1);
  CU_ASSERT_EQUAL(ops->buffer_count(a), 2);
  fsq_opt_buffer m = ops->buffer_at(a, 0), v = ops->buffer_at(a, 1);
  CU_ASSERT_STRING_EQUAL(m.name, "exp_avg.decoder.fc1.weight");
  CU_ASSERT_STRING_EQUAL(v.name, "exp_avg_sq.decoder.fc1.weight");
  CU_ASSERT_EQUAL(m.numel, 5);
  /* copy a's state into b: buffers by name, scalars through json */
  for (size_t i = 0; i < 2; i++) {
    fsq_opt_buffer from = ops->buffer_at(a, i), to = ops->buffer_at(b, i);
    memcpy(to.data, from.data, from.numel * sizeof(float));
  }
  json_object *state = NULL;
  CU_ASSERT_EQUAL(ops->state_save(a, &state), FSQ_OK);
  CU_ASSERT_EQUAL(ops->state_load(b, state), FSQ_OK);
  float w2[5];
  memcpy(w2, w, sizeof w);
  fsq_opt_param p2 = {"decoder.fc1.weight", w2, g, 5, NULL};
  ops->step(a, &p, 1, 0.05);
  ops->step(b, &p2, 1, 0.05);
  CU_ASSERT_EQUAL(memcmp(w, w2, sizeof w), 0);
  json_object_put(state);
  json_object *bad = json_tokener_parse("{\"step\": [1, 2]}");
  CU_ASSERT_EQUAL(ops->state_load(b, bad), FSQ_ERR_FORMAT);
  json_object_put(bad);
  ops->destroy(a);
  ops->destroy(b);
  json_object_put(cfg);
  cfg = adam_config("(0.9)", 1e-8, 0);
  CU_ASSERT_EQUAL(ops->create(cfg, &p, 1, &a), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--adam-betas"));
  json_object_put(cfg);
}

int main(void) {
  reg = fsq_test_open_registry();
  if (reg == NULL) return 1;
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_adam_matches_pytorch_reference),
      FSQ_TEST_CASE(test_adam_state_buffers_and_round_trip),
      FSQ_TEST_END};
  int rc = fsq_test_main("optim_adam", cases);
  fsq_registry_close(reg);
  return rc;
}
