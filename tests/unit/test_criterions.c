/* test_criterions.c: the cross_entropy and label_smoothed_cross_entropy
 * components loaded through the registry, run on a fake model whose forward
 * returns fixed logits (a leaf requiring grad), against reference values
 * computed with PyTorch by scripts/fixtures/make_criterion_fixtures.py:
 * summed loss and nll_loss, the gradient wrt the logits, sample_size
 * (--sentence-avg), n_correct / total (--report-accuracy),
 * --ignore-prefix-size, and what reduce_metrics writes to the meters. */
#include "fsq_test.h"
#include "registry/fsq_registry.h"
#include "train/fsq_meters.h"
#include "train/fsq_model.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fsq_registry *reg;

static const fsq_component *criterion_component(const char *name) {
  const fsq_registry_entry *e = fsq_registry_find(reg, FSQ_KIND_CRITERION, name, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e);
  CU_ASSERT_EQUAL_FATAL(e->component->ops_version, FSQ_CRITERION_OPS_VERSION);
  return e->component;
}

/* The criterion's configuration as the CLI resolves it: its option table
 * parsed from args (space separated flags), defaults filled. */
static json_object *criterion_config(const char *name, const char *args) {
  char buf[256], *argv[16];
  int argc = fsq_test_split_args("fairseq-train", args, buf, sizeof buf, argv, 16);
  fsq_option_set *set = fsq_option_set_new();
  CU_ASSERT_EQUAL_FATAL(fsq_option_set_add(set, name, criterion_component(name)->options), FSQ_OK);
  json_object *cfg = NULL, *pos = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_options_parse(set, argc, argv, &cfg, &pos), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_options_fill_defaults(set, cfg), FSQ_OK);
  json_object_put(pos);
  fsq_option_set_free(set);
  return cfg;
}

static fsq_status create_criterion(const char *name, const char *args, fsq_criterion **out) {
  json_object *cfg = criterion_config(name, args);
  fsq_task_env env = {NULL, NULL, 1};
  const fsq_criterion_ops *ops = criterion_component(name)->ops;
  fsq_status st = ops->create(cfg, &env, out);
  json_object_put(cfg);
  return st;
}

/* ---- a fake model: forward returns the fixture's logits ---------------------- */
#define MAX_B 4
#define MAX_T 8
#define MAX_V 16

struct fsq_model {
  int64_t b, t, v;
  float logits[MAX_B * MAX_T * MAX_V]; /* [b, t, v] */
  fsq_tensor *last;                    /* the leaf of the latest forward */
  int calls;
};

static fsq_tensor *fake_forward(fsq_model *m, fsq_ctx *ctx, const fsq_sample *sample) {
  (void)sample;
  m->calls++;
  m->last = fsq_from_data(ctx, FSQ_F32, 3, (int64_t[]){m->b, m->t, m->v}, m->logits);
  if (m->last != NULL) fsq_requires_grad(m->last);
  return m->last;
}

static const fsq_model_ops fake_model_ops = {.forward = fake_forward};

/* ---- the fixture --------------------------------------------------------------- */
typedef struct fixture {
  fsq_model model;
  int64_t target[MAX_B * MAX_T]; /* [b, t] */
  int64_t ntokens;
  FILE *f;
} fixture;

static void read_doubles(char *text, double *out, size_t n) {
  char *save = NULL;
  for (size_t i = 0; i < n; i++) {
    char *tok = strtok_r(i == 0 ? text : NULL, " \n", &save);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    out[i] = strtod(tok, NULL);
  }
}

/* Reads the header (shape, logits, target, ntokens) and leaves f at the first case. */
static void open_fixture(fixture *fx) {
  memset(fx, 0, sizeof *fx);
  char *path = fsq_test_source_path("tests/fixtures/criterions/criterion_cases.txt");
  fx->f = fopen(path, "r");
  free(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(fx->f);
  static char line[1 << 16];
  static double values[MAX_B * MAX_T * MAX_V];
  int have = 0;
  while (have < 4 && fgets(line, sizeof line, fx->f) != NULL) {
    fsq_model *m = &fx->model;
    if (sscanf(line, "shape %" SCNd64 " %" SCNd64 " %" SCNd64, &m->b, &m->t, &m->v) == 3) {
      CU_ASSERT_FATAL(m->b <= MAX_B && m->t <= MAX_T && m->v <= MAX_V);
      have++;
    } else if (strncmp(line, "logits ", 7) == 0) {
      size_t n = (size_t)(m->b * m->t * m->v);
      read_doubles(line + 7, values, n);
      for (size_t i = 0; i < n; i++) m->logits[i] = (float)values[i];
      have++;
    } else if (strncmp(line, "target ", 7) == 0) {
      size_t n = (size_t)(m->b * m->t);
      read_doubles(line + 7, values, n);
      for (size_t i = 0; i < n; i++) fx->target[i] = (int64_t)values[i];
      have++;
    } else if (sscanf(line, "ntokens %" SCNd64, &fx->ntokens) == 1) {
      have++;
    }
  }
  CU_ASSERT_EQUAL_FATAL(have, 4);
}

/* The sample the collater would give for the fixture's target (only the
 * target and the counts matter to a criterion over a fake model). */
static void fixture_sample(fixture *fx, fsq_ctx *ctx, fsq_sample *s) {
  memset(s, 0, sizeof *s);
  s->bsz = fx->model.b;
  s->ntokens = fx->ntokens;
  s->target = fsq_from_data(ctx, FSQ_I64, 2, (int64_t[]){fx->model.b, fx->model.t}, fx->target);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s->target);
}

/* One case of the fixture: what it ran and what PyTorch got. */
typedef struct ref_case {
  char name[64], criterion[64];
  double eps;
  int prefix, sentence_avg, report_accuracy;
  double loss, nll_loss, sample_size, ntokens, nsentences, n_correct, total;
  double grad[MAX_B * MAX_T * MAX_V];
  double meter_loss, meter_nll_loss, meter_ppl, meter_accuracy; /* NAN: absent */
} ref_case;

static int next_case(fixture *fx, ref_case *rc) {
  static char line[1 << 16];
  int in_case = 0;
  memset(rc, 0, sizeof *rc); /* nothing carries over from the previous case */
  while (fgets(line, sizeof line, fx->f) != NULL) {
    char key[32], value[64];
    double v;
    if (sscanf(line, "case %63s %63s %lf %d %d %d", rc->name, rc->criterion, &rc->eps,
               &rc->prefix, &rc->sentence_avg, &rc->report_accuracy) == 6) {
      in_case = 1;
    } else if (!in_case) {
      continue;
    } else if (strncmp(line, "grad ", 5) == 0) {
      read_doubles(line + 5, rc->grad, (size_t)(fx->model.b * fx->model.t * fx->model.v));
    } else if (sscanf(line, "log %31s %lf", key, &v) == 2) {
      if (strcmp(key, "loss") == 0) rc->loss = v;
      if (strcmp(key, "nll_loss") == 0) rc->nll_loss = v;
      if (strcmp(key, "sample_size") == 0) rc->sample_size = v;
      if (strcmp(key, "ntokens") == 0) rc->ntokens = v;
      if (strcmp(key, "nsentences") == 0) rc->nsentences = v;
      if (strcmp(key, "n_correct") == 0) rc->n_correct = v;
      if (strcmp(key, "total") == 0) rc->total = v;
    } else if (sscanf(line, "meter %31s %63s", key, value) == 2) {
      v = strcmp(value, "absent") == 0 ? NAN : strtod(value, NULL);
      if (strcmp(key, "loss") == 0) rc->meter_loss = v;
      if (strcmp(key, "nll_loss") == 0) rc->meter_nll_loss = v;
      if (strcmp(key, "ppl") == 0) rc->meter_ppl = v;
      if (strcmp(key, "accuracy") == 0) rc->meter_accuracy = v;
    } else if (strncmp(line, "end", 3) == 0) {
      return 1;
    }
  }
  return 0;
}

static int close_rel(double got, double want, double tol) {
  return fabs(got - want) <= tol * fmax(1.0, fabs(want));
}

/* The smoothed (rounded) value of a meter as progress lines print it. */
static double smoothed(const fsq_meters *m, const char *key) {
  fsq_stat stats[32];
  size_t n = fsq_meters_smoothed(m, stats, 32);
  for (size_t i = 0; i < n; i++)
    if (strcmp(stats[i].key, key) == 0) return stats[i].value;
  return NAN;
}

static void check_case(fixture *fx, const ref_case *rc) {
  char args[128];
  snprintf(args, sizeof args, "%s", rc->sentence_avg ? "--sentence-avg" : "");
  if (strcmp(rc->criterion, "label_smoothed_cross_entropy") == 0)
    snprintf(args + strlen(args), sizeof args - strlen(args),
             " --label-smoothing %.17g --ignore-prefix-size %d%s", rc->eps, rc->prefix,
             rc->report_accuracy ? " --report-accuracy" : "");
  fsq_criterion *c = NULL;
  CU_ASSERT_EQUAL_FATAL(create_criterion(rc->criterion, args, &c), FSQ_OK);
  const fsq_criterion_ops *ops = criterion_component(rc->criterion)->ops;
  fsq_ctx *ctx = fsq_ctx_create(1 << 20);
  fsq_sample s;
  fixture_sample(fx, ctx, &s);
  fsq_criterion_log log;
  memset(&log, 0x7f, sizeof log); /* forward must fill every field */
  fx->model.calls = 0;
  fsq_tensor *loss = ops->forward(c, ctx, &fake_model_ops, &fx->model, &s, &log);
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  CU_ASSERT_EQUAL(fx->model.calls, 1);
  CU_ASSERT_EQUAL(fsq_numel(loss), 1);
  int ok = close_rel(fsq_get(loss, 0), rc->loss, 1e-5) && close_rel(log.loss, rc->loss, 1e-5) &&
           close_rel(log.nll_loss, rc->nll_loss, 1e-5);
  if (!ok)
    fprintf(stderr, "%s: loss %.9g nll_loss %.9g, PyTorch %.9g %.9g\n", rc->name, log.loss,
            log.nll_loss, rc->loss, rc->nll_loss);
  CU_ASSERT_TRUE(ok);
  CU_ASSERT_EQUAL(log.sample_size, rc->sample_size);
  CU_ASSERT_EQUAL(log.ntokens, rc->ntokens);
  CU_ASSERT_EQUAL(log.nsentences, rc->nsentences);
  CU_ASSERT_EQUAL(log.n_correct, rc->n_correct);
  CU_ASSERT_EQUAL(log.total, rc->total);
  /* d loss / d logits, relative to the largest element */
  CU_ASSERT_EQUAL_FATAL(fsq_backward(ctx, loss), FSQ_OK);
  fsq_tensor *g = fx->model.last->grad;
  CU_ASSERT_PTR_NOT_NULL_FATAL(g);
  int64_t n = fsq_numel(g);
  double scale = 0, worst = 0;
  for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(rc->grad[i]));
  for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(fsq_get(g, i) - rc->grad[i]));
  if (!(worst <= 1e-5 * scale)) fprintf(stderr, "%s: gradient off by %g\n", rc->name, worst);
  CU_ASSERT(scale > 0 && worst <= 1e-5 * scale);
  /* reduce_metrics: base 2, ppl and accuracy derived */
  fsq_meters *m = fsq_meters_new();
  CU_ASSERT_EQUAL_FATAL(ops->reduce_metrics(c, &log, m), FSQ_OK);
  CU_ASSERT(close_rel(fsq_meters_avg(m, "loss"), rc->meter_loss, 1e-5));
  if (isnan(rc->meter_nll_loss)) {
    CU_ASSERT_TRUE(isnan(fsq_meters_avg(m, "nll_loss")));
  } else {
    CU_ASSERT(close_rel(fsq_meters_avg(m, "nll_loss"), rc->meter_nll_loss, 1e-5));
  }
  CU_ASSERT_DOUBLE_EQUAL(smoothed(m, "ppl"), rc->meter_ppl, 1e-9);
  if (isnan(rc->meter_accuracy)) {
    CU_ASSERT_TRUE(isnan(smoothed(m, "accuracy")));
  } else {
    CU_ASSERT_DOUBLE_EQUAL(smoothed(m, "accuracy"), rc->meter_accuracy, 1e-9);
  }
  fsq_meters_free(m);
  fsq_ctx_destroy(ctx);
  ops->destroy(c);
}

static void test_criterions_match_pytorch_reference(void) {
  fixture fx;
  open_fixture(&fx);
  static ref_case rc;
  int cases = 0;
  while (next_case(&fx, &rc)) {
    check_case(&fx, &rc);
    cases++;
  }
  fclose(fx.f);
  CU_ASSERT_EQUAL(cases, 5);
}

/* reduce_metrics takes logs summed over sub-batches: two halves logged as
 * their sum give the meters of the whole. */
static void test_reduce_metrics_of_summed_logs(void) {
  fsq_criterion *c = NULL;
  CU_ASSERT_EQUAL_FATAL(create_criterion("label_smoothed_cross_entropy",
                                         "--label-smoothing 0.1 --report-accuracy", &c), FSQ_OK);
  const fsq_criterion_ops *ops = criterion_component("label_smoothed_cross_entropy")->ops;
  fsq_criterion_log sum = {.loss = 30.0, .nll_loss = 20.0, .ntokens = 10, .nsentences = 2,
                           .sample_size = 10, .n_correct = 3, .total = 10};
  fsq_meters *m = fsq_meters_new();
  CU_ASSERT_EQUAL_FATAL(ops->reduce_metrics(c, &sum, m), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(fsq_meters_avg(m, "loss"), 3.0 / M_LN2, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(fsq_meters_avg(m, "nll_loss"), 2.0 / M_LN2, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(smoothed(m, "ppl"), round(pow(2.0, 2.0 / M_LN2) * 100) / 100, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(smoothed(m, "accuracy"), 30.0, 1e-9);
  /* a second batch: the meters average weighted by sample_size / ntokens */
  fsq_criterion_log more = {.loss = 10.0, .nll_loss = 10.0, .ntokens = 30, .nsentences = 4,
                            .sample_size = 30, .n_correct = 27, .total = 30};
  CU_ASSERT_EQUAL_FATAL(ops->reduce_metrics(c, &more, m), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(fsq_meters_avg(m, "loss"), 40.0 / 40.0 / M_LN2, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(fsq_meters_avg(m, "nll_loss"), 30.0 / 40.0 / M_LN2, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(smoothed(m, "accuracy"), 75.0, 1e-9);
  fsq_meters_free(m);
  ops->destroy(c);
}

static void test_label_smoothing_outside_unit_interval_is_refused(void) {
  fsq_criterion *c = NULL;
  static const char *const bad[] = {"--label-smoothing -0.1", "--label-smoothing 1.5"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    c = (fsq_criterion *)&c; /* create must clear it */
    CU_ASSERT_EQUAL(create_criterion("label_smoothed_cross_entropy", bad[i], &c), FSQ_ERR_INVALID);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--label-smoothing"));
  }
  /* NaN: the command line refuses it, a configuration read from elsewhere may not */
  const fsq_criterion_ops *ops = criterion_component("label_smoothed_cross_entropy")->ops;
  json_object *cfg = criterion_config("label_smoothed_cross_entropy", "");
  json_object_object_add(cfg, "label_smoothing", json_object_new_double(NAN));
  fsq_task_env env = {NULL, NULL, 1};
  CU_ASSERT_EQUAL(ops->create(cfg, &env, &c), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--label-smoothing"));
  json_object_put(cfg);
  CU_ASSERT_EQUAL(create_criterion("label_smoothed_cross_entropy", "--ignore-prefix-size -1", &c),
                  FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--ignore-prefix-size"));
  /* the bounds themselves are allowed */
  CU_ASSERT_EQUAL(create_criterion("label_smoothed_cross_entropy", "--label-smoothing 0", &c), FSQ_OK);
  ops->destroy(c);
  CU_ASSERT_EQUAL(create_criterion("label_smoothed_cross_entropy", "--label-smoothing 1", &c), FSQ_OK);
  ops->destroy(c);
}

static void test_sample_without_target_is_refused(void) {
  static const char *const names[] = {"cross_entropy", "label_smoothed_cross_entropy"};
  fixture fx;
  open_fixture(&fx);
  fclose(fx.f);
  for (size_t i = 0; i < 2; i++) {
    fsq_criterion *c = NULL;
    CU_ASSERT_EQUAL_FATAL(create_criterion(names[i], "", &c), FSQ_OK);
    const fsq_criterion_ops *ops = criterion_component(names[i])->ops;
    fsq_ctx *ctx = fsq_ctx_create(1 << 20);
    fsq_sample s;
    fixture_sample(&fx, ctx, &s);
    s.target = NULL;
    fsq_criterion_log log;
    fx.model.calls = 0;
    CU_ASSERT_PTR_NULL(ops->forward(c, ctx, &fake_model_ops, &fx.model, &s, &log));
    CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "no target"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), names[i]));
    CU_ASSERT_EQUAL(fx.model.calls, 0); /* refused before running the model */
    fsq_ctx_destroy(ctx);
    ops->destroy(c);
  }
}

int main(void) {
  reg = fsq_registry_open(NULL);
  if (reg == NULL || fsq_registry_problem_count(reg) != 0) return 1;
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_criterions_match_pytorch_reference),
      FSQ_TEST_CASE(test_reduce_metrics_of_summed_logs),
      FSQ_TEST_CASE(test_label_smoothing_outside_unit_interval_is_refused),
      FSQ_TEST_CASE(test_sample_without_target_is_refused),
      FSQ_TEST_END};
  int rc = fsq_test_main("criterions", cases);
  fsq_registry_close(reg);
  return rc;
}
