/* test_options.c: option tables -> typed values, errors, defaults. */
#include "fsq_test.h"
#include "registry/fsq_options.h"

#include <json-c/json.h>
#include <string.h>

static const char *const activations[] = {"relu", "gelu", NULL};
static const fsq_option table[] = {
    {"encoder-layers", FSQ_OPT_INT, "6", "num encoder layers", NULL, NULL},
    {"dropout", FSQ_OPT_FLOAT, "0.1", "dropout probability", NULL, NULL},
    {"share-all-embeddings", FSQ_OPT_BOOL, NULL, "share embeddings", NULL, NULL},
    {"activation-fn", FSQ_OPT_CHOICE, "relu", "activation", activations, NULL},
    {"adam-betas", FSQ_OPT_STRING, "(0.9, 0.999)", "betas", NULL, NULL},
    {"source-lang", FSQ_OPT_STRING, NULL, "source language", NULL, "s"},
    {"min-loss-scale", FSQ_OPT_FLOAT, "1e-4", "minimum scale", NULL, NULL},
    FSQ_OPTION_END};

static fsq_option_set *make_set(void) {
  fsq_option_set *set = fsq_option_set_new();
  CU_ASSERT_EQUAL_FATAL(fsq_option_set_add(set, "model", table), FSQ_OK);
  return set;
}

static fsq_status parse(fsq_option_set *set, const char **args, int n, json_object **given,
                        json_object **pos) {
  char *argv[16];
  argv[0] = (char *)"prog";
  for (int i = 0; i < n; i++) argv[i + 1] = (char *)args[i];
  return fsq_options_parse(set, n + 1, argv, given, pos);
}

static void test_options_parse_each_type(void) {
  fsq_option_set *set = make_set();
  const char *args[] = {"data-bin/x", "--encoder-layers", "3", "--dropout=0.25",
                        "--share-all-embeddings", "--activation-fn", "gelu",
                        "--adam-betas", "(0.9,0.98)", "-s", "de", "--min-loss-scale", "-1"};
  json_object *given = NULL, *pos = NULL;
  CU_ASSERT_EQUAL_FATAL(parse(set, args, 13, &given, &pos), FSQ_OK);
  int64_t n;
  double d;
  int b;
  const char *s;
  CU_ASSERT_EQUAL(fsq_json_get_int64(given, "encoder_layers", &n), FSQ_OK);
  CU_ASSERT_EQUAL(n, 3);
  CU_ASSERT_EQUAL(fsq_json_get_double(given, "dropout", &d), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(d, 0.25, 0);
  CU_ASSERT_EQUAL(fsq_json_get_bool(given, "share_all_embeddings", &b), FSQ_OK);
  CU_ASSERT_TRUE(b);
  CU_ASSERT_EQUAL(fsq_json_get_string(given, "activation_fn", &s), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(s, "gelu");
  CU_ASSERT_EQUAL(fsq_json_get_string(given, "adam_betas", &s), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(s, "(0.9,0.98)");
  CU_ASSERT_EQUAL(fsq_json_get_string(given, "source_lang", &s), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(s, "de");
  CU_ASSERT_EQUAL(fsq_json_get_double(given, "min_loss_scale", &d), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(d, -1.0, 0);
  CU_ASSERT_EQUAL(json_object_array_length(pos), 1);
  CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(pos, 0)), "data-bin/x");
  json_object_put(given);
  json_object_put(pos);
  fsq_option_set_free(set);
}

static void expect_error(const char **args, int n, const char *fragment) {
  fsq_option_set *set = make_set();
  json_object *given = NULL, *pos = NULL;
  CU_ASSERT_EQUAL(parse(set, args, n, &given, &pos), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), fragment));
  CU_ASSERT_PTR_NULL(given);
  fsq_option_set_free(set);
}

static void test_options_reject_unknown_flag(void) {
  const char *args[] = {"--encoder-layer", "3"};
  expect_error(args, 2, "unrecognized arguments: --encoder-layer");
}

static void test_options_reject_missing_value(void) {
  const char *args[] = {"--dropout"};
  expect_error(args, 1, "argument --dropout: expected one argument");
  const char *args2[] = {"--dropout", "--share-all-embeddings"};
  expect_error(args2, 2, "argument --dropout: expected one argument");
}

static void test_options_reject_bad_numbers(void) {
  const char *a[] = {"--encoder-layers", "3.5"};
  expect_error(a, 2, "invalid int value: '3.5'");
  const char *b[] = {"--dropout", "0.1x"};
  expect_error(b, 2, "invalid float value: '0.1x'");
  const char *c[] = {"--encoder-layers", ""};
  expect_error(c, 2, "invalid int value");
}

static void test_options_reject_value_outside_choices(void) {
  const char *a[] = {"--activation-fn", "swish"};
  expect_error(a, 2, "invalid choice: 'swish' (choose from 'relu', 'gelu')");
}

static void test_options_defaults_fill_only_missing(void) {
  fsq_option_set *set = make_set();
  const char *args[] = {"--dropout", "0.3"};
  json_object *cfg = NULL;
  CU_ASSERT_EQUAL_FATAL(parse(set, args, 2, &cfg, NULL), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_options_fill_defaults(set, cfg), FSQ_OK);
  double d;
  int64_t n;
  int b;
  CU_ASSERT_EQUAL(fsq_json_get_double(cfg, "dropout", &d), FSQ_OK);
  CU_ASSERT_DOUBLE_EQUAL(d, 0.3, 0);
  CU_ASSERT_EQUAL(fsq_json_get_int64(cfg, "encoder_layers", &n), FSQ_OK);
  CU_ASSERT_EQUAL(n, 6);
  CU_ASSERT_EQUAL(fsq_json_get_bool(cfg, "share_all_embeddings", &b), FSQ_OK);
  CU_ASSERT_FALSE(b);
  json_object *src = NULL;
  CU_ASSERT_TRUE(json_object_object_get_ex(cfg, "source_lang", &src));
  CU_ASSERT_PTR_NULL(src);
  json_object_put(cfg);
  fsq_option_set_free(set);
}

static void test_options_shared_option_must_agree_in_type(void) {
  fsq_option_set *set = make_set();
  static const fsq_option same[] = {{"dropout", FSQ_OPT_FLOAT, "0.2", "", NULL, NULL},
                                    FSQ_OPTION_END};
  static const fsq_option clash[] = {{"dropout", FSQ_OPT_INT, "1", "", NULL, NULL},
                                     FSQ_OPTION_END};
  CU_ASSERT_EQUAL(fsq_option_set_add(set, "task", same), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_option_set_add(set, "task", clash), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "--dropout"));
  fsq_option_set_free(set);
}

static void test_options_known_pass_skips_unknown_flags(void) {
  fsq_option_set *set = make_set();
  char *argv[] = {"prog", "--arch", "transformer", "--dropout", "0.2", "data", "--fp16"};
  json_object *given = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_options_parse_known(set, 7, argv, &given), FSQ_OK);
  double d;
  CU_ASSERT_EQUAL(fsq_json_get_double(given, "dropout", &d), FSQ_OK);
  CU_ASSERT_FALSE(json_object_object_get_ex(given, "arch", NULL));
  json_object_put(given);
  fsq_option_set_free(set);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_options_parse_each_type),
      FSQ_TEST_CASE(test_options_reject_unknown_flag),
      FSQ_TEST_CASE(test_options_reject_missing_value),
      FSQ_TEST_CASE(test_options_reject_bad_numbers),
      FSQ_TEST_CASE(test_options_reject_value_outside_choices),
      FSQ_TEST_CASE(test_options_defaults_fill_only_missing),
      FSQ_TEST_CASE(test_options_shared_option_must_agree_in_type),
      FSQ_TEST_CASE(test_options_known_pass_skips_unknown_flags),
      FSQ_TEST_END};
  return fsq_test_main("options", cases);
}
