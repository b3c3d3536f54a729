/* test_cli_text.c: the text helpers of fairseq-generate and
 * fairseq-interactive: Python's float repr (expected strings are what
 * CPython 3 prints for repr() of the same doubles) and Dictionary.string. */
#include "cli/cli_text.h"
#include "fsq_test.h"

#include <math.h>
#include <string.h>

static void check_repr(double x, const char *want) {
  char buf[64];
  fsq_cli_py_float_repr(x, buf, sizeof buf);
  CU_ASSERT_STRING_EQUAL(buf, want);
  if (strcmp(buf, want) != 0) fprintf(stderr, "repr(%.17g): got %s, want %s\n", x, buf, want);
}

static void test_py_float_repr_matches_python(void) {
  check_repr(-0.5, "-0.5");
  check_repr(12.0, "12.0");
  check_repr(0.1, "0.1");
  check_repr(-1.618256688117981, "-1.618256688117981");
  check_repr((double)-2.5889974f, "-2.5889973640441895");
  check_repr(0.0001, "0.0001");
  check_repr(0.00001, "1e-05");
  check_repr(-1.5e-05, "-1.5e-05");
  check_repr(1e15, "1000000000000000.0");
  check_repr(1e16, "1e+16");
  check_repr(123456789012345678.0, "1.2345678901234568e+17");
  check_repr(0.0, "0.0");
  check_repr(-0.0, "-0.0");
  check_repr(-INFINITY, "-inf");
  check_repr(NAN, "nan");
}

static void test_dict_string_drops_specials_and_escapes_unk(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL_FATAL(fsq_dictionary_add(d, "hel@@", 5, 1, 0), 4);
  CU_ASSERT_EQUAL_FATAL(fsq_dictionary_add(d, "lo", 2, 1, 0), 5);
  int64_t toks[] = {FSQ_DICT_PAD, FSQ_DICT_BOS, 4, 5, FSQ_DICT_UNK, FSQ_DICT_EOS};
  fsq_text out = {0}, tmp = {0};
  CU_ASSERT_EQUAL(fsq_cli_dict_string(d, toks, 6, 0, NULL, &out, &tmp), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(out.data, "hel@@ lo <unk>");
  CU_ASSERT_EQUAL(fsq_cli_dict_string(d, toks, 6, 1, "subword_nmt", &out, &tmp), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(out.data, "hello <<unk>>");
  int64_t bad[] = {99};
  CU_ASSERT_NOT_EQUAL(fsq_cli_dict_string(d, bad, 1, 0, NULL, &out, &tmp), FSQ_OK);
  fsq_text_free(&out);
  fsq_text_free(&tmp);
  fsq_dictionary_free(d);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_py_float_repr_matches_python),
      FSQ_TEST_CASE(test_dict_string_drops_specials_and_escapes_unk),
      FSQ_TEST_END};
  return fsq_test_main("cli_text", cases);
}
