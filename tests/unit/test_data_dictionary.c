/* test_data_dictionary.c: dict.txt parsing, finalize ordering and padding,
 * tokenization on Unicode whitespace, encode_line, Python's ".3" format. */
#include "data/fsq_data.h"
#include "fsq_test.h"

#include <stdlib.h>
#include <string.h>

static int32_t find(const fsq_dictionary *d, const char *w) {
  return fsq_dictionary_find(d, w, strlen(w));
}

static const char *sym(const fsq_dictionary *d, size_t i) {
  return fsq_dictionary_symbol(d, i, NULL);
}

static fsq_status parse(fsq_dictionary *d, const char *text) {
  return fsq_dictionary_parse(d, text, strlen(text), "dict.txt");
}

static void test_dictionary_has_implicit_specials(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(fsq_dictionary_size(d), 4);
  CU_ASSERT_EQUAL(find(d, "<s>"), FSQ_DICT_BOS);
  CU_ASSERT_EQUAL(find(d, "<pad>"), FSQ_DICT_PAD);
  CU_ASSERT_EQUAL(find(d, "</s>"), FSQ_DICT_EOS);
  CU_ASSERT_EQUAL(find(d, "<unk>"), FSQ_DICT_UNK);
  CU_ASSERT_EQUAL(find(d, "hello"), -1);
  fsq_dictionary_free(d);
}

static void test_dictionary_splits_on_last_space(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL_FATAL(parse(d, "a b 5\r\nc 7  \nd\t 9\n"), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(d), 7);
  CU_ASSERT_EQUAL(find(d, "a b"), 4);
  CU_ASSERT_EQUAL(fsq_dictionary_count(d, 4), 5);
  CU_ASSERT_EQUAL(find(d, "c"), 5);
  CU_ASSERT_EQUAL(fsq_dictionary_count(d, 5), 7);
  CU_ASSERT_EQUAL(find(d, "d\t"), 6); /* rsplit(" ", 1): the tab stays in the word */
  fsq_dictionary_free(d);
}

static void test_dictionary_rejects_line_without_count(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "good 1\nlonely\n"), FSQ_ERR_FORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "dict.txt:2: incorrect dictionary format"));
  fsq_dictionary_free(d);
  d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "word x12\n"), FSQ_ERR_FORMAT);
  fsq_dictionary_free(d);
  d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "w 1\n\n"), FSQ_ERR_FORMAT); /* fairseq rejects blank lines too */
  fsq_dictionary_free(d);
}

static void test_dictionary_rejects_duplicates_unless_overwrite(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "x 3\nx 4\n"), FSQ_ERR_FORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "duplicate word 'x'"));
  fsq_dictionary_free(d);
  d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "<unk> 3\n"), FSQ_ERR_FORMAT);
  fsq_dictionary_free(d);
  d = fsq_dictionary_new();
  CU_ASSERT_EQUAL_FATAL(parse(d, "x 3\ny 1\nx 4 #fairseq:overwrite\n"), FSQ_OK);
  /* overwrite appends a second entry and points the word at it */
  CU_ASSERT_EQUAL(fsq_dictionary_size(d), 7);
  CU_ASSERT_EQUAL(find(d, "x"), 6);
  CU_ASSERT_EQUAL(fsq_dictionary_count(d, 6), 4);
  CU_ASSERT_EQUAL(fsq_dictionary_count(d, 4), 3);
  fsq_dictionary_free(d);
}

static void test_dictionary_rejects_non_utf8(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL(parse(d, "caf\xe9 3\n"), FSQ_ERR_FORMAT);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "not UTF-8"));
  fsq_dictionary_free(d);
}

static void test_finalize_orders_by_count_then_symbol(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  const char *words[] = {"b", "a", "c", "zz", "b", "c", "c", "\xc3\xa9", "a"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++)
    fsq_dictionary_add(d, words[i], strlen(words[i]), 1, 0);
  CU_ASSERT_EQUAL(fsq_dictionary_finalize(d, -1, -1, 8), FSQ_OK);
  /* c:3, then a/b tie at 2 (a first), then zz/é tie at 1 (code point order) */
  CU_ASSERT_STRING_EQUAL(sym(d, 4), "c");
  CU_ASSERT_STRING_EQUAL(sym(d, 5), "a");
  CU_ASSERT_STRING_EQUAL(sym(d, 6), "b");
  CU_ASSERT_STRING_EQUAL(sym(d, 7), "zz");
  CU_ASSERT_STRING_EQUAL(sym(d, 8), "\xc3\xa9");
  CU_ASSERT_EQUAL(fsq_dictionary_size(d), 16);
  CU_ASSERT_STRING_EQUAL(sym(d, 9), "madeupword0000");
  CU_ASSERT_STRING_EQUAL(sym(d, 15), "madeupword0006");
  CU_ASSERT_EQUAL(fsq_dictionary_count(d, 15), 0);
  CU_ASSERT_EQUAL(find(d, "a"), 5);
  fsq_dictionary_free(d);
}

static void test_finalize_applies_threshold_and_nwords(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  fsq_dictionary_add(d, "x", 1, 10, 0);
  fsq_dictionary_add(d, "y", 1, 5, 0);
  fsq_dictionary_add(d, "z", 1, 1, 0);
  fsq_dictionary *e = fsq_dictionary_new();
  fsq_dictionary_merge(e, d);
  CU_ASSERT_EQUAL(fsq_dictionary_finalize(d, 5, -1, 1), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(d), 6);
  CU_ASSERT_EQUAL(find(d, "z"), -1);
  CU_ASSERT_EQUAL(fsq_dictionary_finalize(e, -1, 5, 1), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dictionary_size(e), 5);
  CU_ASSERT_EQUAL(find(e, "x"), 4);
  CU_ASSERT_EQUAL(find(e, "y"), -1);
  fsq_dictionary_free(d);
  fsq_dictionary_free(e);
}

static void test_tokenize_splits_on_unicode_whitespace(void) {
  /* U+3000 ideographic space, U+00A0 no-break space, \x1f unit separator;
   * U+200B (zero width space) is not whitespace for Python. */
  const char *line = "  a\xe3\x80\x80" "b\xc2\xa0" "c\x1f\td\xe2\x80\x8b" "e\r\n";
  fsq_token t[8];
  size_t n = fsq_tokenize_line(line, strlen(line), t, 8);
  CU_ASSERT_EQUAL_FATAL(n, 4);
  CU_ASSERT_EQUAL(t[0].len, 1);
  CU_ASSERT_NSTRING_EQUAL(t[0].ptr, "a", 1);
  CU_ASSERT_NSTRING_EQUAL(t[1].ptr, "b", 1);
  CU_ASSERT_NSTRING_EQUAL(t[2].ptr, "c", 1);
  CU_ASSERT_EQUAL(t[3].len, 5);
  CU_ASSERT_EQUAL(fsq_tokenize_line("", 0, t, 8), 0);
  CU_ASSERT_EQUAL(fsq_tokenize_line(" \t ", 3, t, 8), 0);
}

static void test_utf8_validation_is_strict(void) {
  CU_ASSERT_TRUE(fsq_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, NULL));
  CU_ASSERT_FALSE(fsq_utf8_valid("\xc3", 1, NULL));             /* truncated */
  CU_ASSERT_FALSE(fsq_utf8_valid("\xc0\xaf", 2, NULL));         /* overlong */
  CU_ASSERT_FALSE(fsq_utf8_valid("\xed\xa0\x80", 3, NULL));     /* surrogate */
  CU_ASSERT_FALSE(fsq_utf8_valid("\xf4\x90\x80\x80", 4, NULL)); /* > U+10FFFF */
  CU_ASSERT_FALSE(fsq_utf8_valid("\x80", 1, NULL));
}

static void test_encode_line_maps_unknown_to_unk_and_appends_eos(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  CU_ASSERT_EQUAL_FATAL(parse(d, "the 5\ncat 3\n"), FSQ_OK);
  int32_t *ids = NULL;
  size_t cap = 0, n = 0;
  int64_t replaced = 0;
  const char *line = "the dog <unk> cat  the\n";
  CU_ASSERT_EQUAL(fsq_dictionary_encode_line(d, line, strlen(line), &ids, &cap, &n, &replaced),
                  FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(n, 6);
  int32_t want[6] = {4, FSQ_DICT_UNK, FSQ_DICT_UNK, 5, 4, FSQ_DICT_EOS};
  CU_ASSERT_EQUAL(memcmp(ids, want, sizeof want), 0);
  CU_ASSERT_EQUAL(replaced, 1); /* the literal <unk> is not a replacement */
  CU_ASSERT_EQUAL(fsq_dictionary_encode_line(d, "", 0, &ids, &cap, &n, &replaced), FSQ_OK);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(ids[0], FSQ_DICT_EOS);
  free(ids);
  fsq_dictionary_free(d);
}

static void test_dictionary_hash_table_holds_many_words(void) {
  fsq_dictionary *d = fsq_dictionary_new();
  char w[32];
  for (int i = 0; i < 100000; i++) {
    int len = snprintf(w, sizeof w, "w%d", i);
    CU_ASSERT_EQUAL_FATAL(fsq_dictionary_add(d, w, (size_t)len, 1, 0), 4 + i);
  }
  for (int i = 0; i < 100000; i += 997) {
    int len = snprintf(w, sizeof w, "w%d", i);
    CU_ASSERT_EQUAL(fsq_dictionary_find(d, w, (size_t)len), 4 + i);
  }
  fsq_dictionary_free(d);
}

static void test_format_py3_matches_python(void) {
  struct {
    double x;
    const char *want;
  } cases[] = {{0.0, "0.0"},       {13.4375, "13.4"},   {4.0913, "4.09"},  {0.27593, "0.276"},
               {100.0, "1e+02"},   {0.00104, "0.00104"}, {1.0, "1.0"},    {50.0, "50.0"},
               {0.000012, "1.2e-05"}, {99.96, "1e+02"},  {9.996, "10.0"}, {123456.0, "1.23e+05"}};
  char buf[64];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    fsq_format_py3(cases[i].x, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
  }
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_dictionary_has_implicit_specials),
      FSQ_TEST_CASE(test_dictionary_splits_on_last_space),
      FSQ_TEST_CASE(test_dictionary_rejects_line_without_count),
      FSQ_TEST_CASE(test_dictionary_rejects_duplicates_unless_overwrite),
      FSQ_TEST_CASE(test_dictionary_rejects_non_utf8),
      FSQ_TEST_CASE(test_finalize_orders_by_count_then_symbol),
      FSQ_TEST_CASE(test_finalize_applies_threshold_and_nwords),
      FSQ_TEST_CASE(test_tokenize_splits_on_unicode_whitespace),
      FSQ_TEST_CASE(test_utf8_validation_is_strict),
      FSQ_TEST_CASE(test_encode_line_maps_unknown_to_unk_and_appends_eos),
      FSQ_TEST_CASE(test_dictionary_hash_table_holds_many_words),
      FSQ_TEST_CASE(test_format_py3_matches_python),
      FSQ_TEST_END};
  return fsq_test_main("data_dictionary", cases);
}
