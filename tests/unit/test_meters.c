/* test_meters.c: fairseq's meters and progress lines. Expected strings are
 * what Python prints for the same values: round() ties to even on the exact
 * binary value, "{:g}" keeps 6 significant digits, and the line layouts of
 * fairseq/logging/progress_bar.py (SimpleProgressBar, JsonProgressBar). */
#include "fsq_test.h"
#include "train/fsq_meters.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>

static void test_round_matches_python(void) {
  CU_ASSERT_EQUAL(fsq_round_digits(2.675, 2), 2.67);  /* 2.675 is 2.67499999... */
  CU_ASSERT_EQUAL(fsq_round_digits(0.125, 2), 0.12);  /* exact tie: to even */
  CU_ASSERT_EQUAL(fsq_round_digits(0.375, 2), 0.38);
  CU_ASSERT_EQUAL(fsq_round_digits(9.12345, 3), 9.123);
  CU_ASSERT_EQUAL(fsq_round_digits(-1.5, 0), -2.0);
}

static void expect_g(double x, const char *want) {
  char buf[64];
  fsq_format_g(x, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, want);
}

static void test_format_g_matches_python(void) {
  expect_g(3456.7, "3456.7");
  expect_g(0.0005, "0.0005");
  expect_g(1.25e-05, "1.25e-05");
  expect_g(1234567, "1.23457e+06");
  expect_g(100, "100");
  expect_g(9.123, "9.123");
  expect_g(INFINITY, "inf");
  CU_ASSERT_EQUAL(fsq_perplexity(3.0), 8.0);
  CU_ASSERT_EQUAL(fsq_perplexity(9.123), fsq_round_digits(pow(2, 9.123), 2));
  CU_ASSERT(isinf(fsq_perplexity(5000.0)));
}

static void expect_repr(double x, const char *want) {
  char buf[64];
  fsq_format_repr(x, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, want);
}

/* Expected strings: repr() of the same doubles in Python 3. */
static void test_format_repr_matches_python(void) {
  expect_repr(8.7795169963365485, "8.779516996336548");
  expect_repr(0.1, "0.1");
  expect_repr(100.0, "100.0");
  expect_repr(-0.0, "-0.0");
  expect_repr(123.5, "123.5");
  expect_repr(0.0001, "0.0001");
  expect_repr(0.00001, "1e-05");
  expect_repr(1.5e-7, "1.5e-07");
  expect_repr(1e15, "1000000000000000.0");
  expect_repr(1e16, "1e+16");
  expect_repr(-0.5148099660873413, "-0.5148099660873413");
  expect_repr(1.0 / 3.0, "0.3333333333333333");
  expect_repr(INFINITY, "inf");
}

/* train_wall: StopwatchMeter's smoothed value is the summed seconds. */
static void test_stopwatch_sums_added_time(void) {
  fsq_meters *m = fsq_meters_new();
  CU_ASSERT_EQUAL(fsq_meters_add_time(m, "train_wall", 1.25, 800, 0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_meters_add_time(m, "train_wall", 2.5, 800, 0), FSQ_OK);
  fsq_stat s[4];
  CU_ASSERT_EQUAL_FATAL(fsq_meters_smoothed(m, s, 4), 1);
  CU_ASSERT_STRING_EQUAL(s[0].key, "train_wall");
  CU_ASSERT_EQUAL(s[0].value, 4.0); /* round(3.75, 0) */
  fsq_meters_free(m);
}

static double ppl_from_nll(const fsq_meters *m) { return fsq_perplexity(fsq_meters_avg(m, "nll_loss")); }

static fsq_meters *sample_meters(void) {
  fsq_meters *m = fsq_meters_new();
  fsq_meters_log_scalar(m, "wpb", 2000, 1, 110, 1);
  fsq_meters_log_scalar(m, "loss", 9.0, 100, 10, 3);
  fsq_meters_log_scalar(m, "nll_loss", 8.0, 100, 10, 3);
  fsq_meters_log_scalar(m, "loss", 10.0, 300, 10, 3);
  fsq_meters_log_scalar(m, "nll_loss", 9.0, 300, 10, 3);
  fsq_meters_log_derived(m, "ppl", 10, ppl_from_nll);
  fsq_meters_log_scalar(m, "_hidden", 1, 1, 5, FSQ_ROUND_NONE);
  fsq_meters_log_scalar(m, "num_updates", 100, 0, 200, FSQ_ROUND_NONE);
  return m;
}

static void test_meters_average_weighted_in_priority_order(void) {
  fsq_meters *m = sample_meters();
  fsq_stat s[16];
  size_t n = fsq_meters_smoothed(m, s, 16);
  CU_ASSERT_EQUAL_FATAL(n, 5);
  CU_ASSERT_STRING_EQUAL(s[0].key, "loss");
  CU_ASSERT_EQUAL(s[0].value, 9.75); /* (9*100 + 10*300) / 400 */
  CU_ASSERT_STRING_EQUAL(s[1].key, "nll_loss");
  CU_ASSERT_STRING_EQUAL(s[2].key, "ppl");
  CU_ASSERT_EQUAL(s[2].value, fsq_round_digits(pow(2, 8.75), 2));
  CU_ASSERT_STRING_EQUAL(s[3].key, "wpb");
  CU_ASSERT_STRING_EQUAL(s[4].key, "num_updates");
  CU_ASSERT_EQUAL(s[4].value, 100); /* weight 0: the last value */
  fsq_meters_reset(m);
  CU_ASSERT(isnan(fsq_meters_avg(m, "loss")));
  fsq_meters_free(m);
}

static void test_progress_simple_lines(void) {
  fsq_progress p;
  fsq_progress_init(&p, FSQ_LOG_FORMAT_SIMPLE, 100, 1, NULL, 1000);
  p.i = 99;
  fsq_stat s[] = {{"loss", 9.123}, {"ppl", 557.55}, {"wps", 3456.7}, {"lr", 0.0005}};
  char buf[512];
  fsq_progress_format_log(&p, s, 4, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "epoch 001:    100 / 1000 loss=9.123, ppl=557.55, wps=3456.7, lr=0.0005");
  fsq_progress_format_print(&p, s, 2, "train", buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "epoch 001 | loss 9.123 | ppl 557.55");
  fsq_progress_init(&p, FSQ_LOG_FORMAT_SIMPLE, 100, 3, "valid on 'valid' subset", 10);
  fsq_progress_format_print(&p, s, 1, "valid", buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "epoch 003 | valid on 'valid' subset | loss 9.123");
}

static void test_progress_json_lines(void) {
  fsq_progress p;
  fsq_progress_init(&p, FSQ_LOG_FORMAT_JSON, 100, 2, NULL, 400);
  p.i = 199;
  fsq_stat s[] = {{"loss", 9.123}, {"num_updates", 600}};
  char buf[512];
  fsq_progress_format_log(&p, s, 2, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "{\"epoch\": 2, \"update\": 1.5, \"loss\": \"9.123\", \"num_updates\": \"600\"}");
  fsq_progress_format_print(&p, s, 1, "train", buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "{\"epoch\": 2, \"train_loss\": \"9.123\"}");
  p.i = 0;
  fsq_progress_init(&p, FSQ_LOG_FORMAT_JSON, 100, 1, NULL, 3);
  fsq_progress_format_log(&p, s, 0, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, "{\"epoch\": 1, \"update\": 0.333}");
  CU_ASSERT_EQUAL(fsq_log_format_parse("json", 1), FSQ_LOG_FORMAT_JSON);
  CU_ASSERT_EQUAL(fsq_log_format_parse(NULL, 0), FSQ_LOG_FORMAT_SIMPLE);
  CU_ASSERT_EQUAL(fsq_log_format_parse(NULL, 1), FSQ_LOG_FORMAT_TQDM);
  CU_ASSERT_EQUAL(fsq_log_format_parse("xml", 0), -1);
}

static void test_meters_state_round_trip(void) {
  fsq_meters *m = sample_meters();
  json_object *state = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_meters_state_save(m, &state), FSQ_OK);
  CU_ASSERT_EQUAL(json_object_array_length(state), 5); /* the derived ppl is not saved */
  fsq_meters *back = fsq_meters_new();
  CU_ASSERT_EQUAL_FATAL(fsq_meters_state_load(back, state), FSQ_OK);
  fsq_meters_log_derived(back, "ppl", 10, ppl_from_nll);
  fsq_stat a[16], b[16];
  size_t na = fsq_meters_smoothed(m, a, 16), nb = fsq_meters_smoothed(back, b, 16);
  CU_ASSERT_EQUAL_FATAL(na, nb);
  for (size_t i = 0; i < na; i++) {
    CU_ASSERT_STRING_EQUAL(a[i].key, b[i].key);
    CU_ASSERT_EQUAL(a[i].value, b[i].value);
  }
  json_object_put(state);
  json_object *bad = json_tokener_parse("[[10, \"loss\", \"FancyMeter\", {}]]");
  CU_ASSERT_EQUAL(fsq_meters_state_load(back, bad), FSQ_ERR_FORMAT);
  json_object_put(bad);
  fsq_meters_free(m);
  fsq_meters_free(back);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_round_matches_python),
      FSQ_TEST_CASE(test_format_g_matches_python),
      FSQ_TEST_CASE(test_format_repr_matches_python),
      FSQ_TEST_CASE(test_stopwatch_sums_added_time),
      FSQ_TEST_CASE(test_meters_average_weighted_in_priority_order),
      FSQ_TEST_CASE(test_progress_simple_lines),
      FSQ_TEST_CASE(test_progress_json_lines),
      FSQ_TEST_CASE(test_meters_state_round_trip),
      FSQ_TEST_END};
  return fsq_test_main("meters", cases);
}
