/* test_scoring.c: fairseq BLEU, sacreBLEU and the 13a tokenizer.
 *
 * Where expected values come from:
 * - "hand": n-gram counts worked out in the comment next to the case, and
 *   the score as exp(mean log precision) * BP (arithmetic in the comment).
 * - "sacrebleu test_bleu.py": the published vectors of sacreBLEU's test
 *   suite (mjpost/sacrebleu test/test_bleu.py), checked to the same
 *   EPSILON = 1e-8 that suite uses.
 * - 13a and post_process cases: derived by applying tokenizer_13a.py's replacements and four
 *   regular expressions by hand; each comment names the rule that fires. */
#include "generate/fsq_scoring.h"
#include "fsq_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EPSILON 1e-8

/* fairseq-score's path: both lines through one Dictionary, then Scorer.add. */
static void add_text(fsq_bleu *b, fsq_word_ids *w, const char *ref, const char *hyp) {
  const int32_t *ids;
  size_t n;
  CU_ASSERT_EQUAL_FATAL(fsq_word_ids_encode(w, ref, strlen(ref), &ids, &n), FSQ_OK);
  int32_t *r = malloc(n * sizeof *r);
  memcpy(r, ids, n * sizeof *r);
  size_t nr = n;
  CU_ASSERT_EQUAL_FATAL(fsq_word_ids_encode(w, hyp, strlen(hyp), &ids, &n), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_bleu_add(b, r, nr, ids, n), FSQ_OK);
  free(r);
}

static void check_fairseq(const char *const *refs, const char *const *hyps, size_t n, int order,
                          const char *expected) {
  fsq_bleu *b = fsq_bleu_new(FSQ_WORD_PAD, FSQ_WORD_EOS, FSQ_WORD_UNK);
  fsq_word_ids *w = fsq_word_ids_new();
  for (size_t i = 0; i < n; i++) add_text(b, w, refs[i], hyps[i]);
  char line[256];
  CU_ASSERT_EQUAL(fsq_bleu_result_string(fsq_bleu_get_stat(b), order, line, sizeof line), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(line, expected);
  if (strcmp(line, expected) != 0) fprintf(stderr, "\n  got      %s\n  expected %s\n", line, expected);
  fsq_word_ids_free(w);
  fsq_bleu_free(b);
}

static void test_fairseq_bleu_perfect_match_is_100(void) {
  /* hand: 5 tokens, every n-gram matches: 5/5 4/4 3/3 2/2, BP 1 */
  const char *s[] = {"a b c d e"};
  check_fairseq(s, s, 1, 4,
                "BLEU4 = 100.00, 100.0/100.0/100.0/100.0 (BP=1.000, ratio=1.000, syslen=5, reflen=5)");
}

static void test_fairseq_bleu_no_overlap_is_0(void) {
  /* hand: 0/3 0/2 0/1 and no 4-grams: log(0) -> -inf -> 0 */
  const char *r[] = {"a b c"}, *h[] = {"d e f"};
  check_fairseq(r, h, 1, 4, "BLEU4 = 0.00, 0.0/0.0/0.0/0.0 (BP=1.000, ratio=1.000, syslen=3, reflen=3)");
}

static void test_fairseq_bleu_partial_match(void) {
  /* hand: hyp "the cat sat on a mat" vs ref "the cat sat on the mat":
   * 1-grams the,cat,sat,on,mat = 5/6; 2-grams the cat,cat sat,sat on = 3/5;
   * 3-grams the cat sat,cat sat on = 2/4; 4-gram the cat sat on = 1/3.
   * (5/6 * 3/5 * 1/2 * 1/3)^(1/4) = (1/12)^(1/4) = 0.537285 */
  const char *r[] = {"the cat sat on the mat"}, *h[] = {"the cat sat on a mat"};
  check_fairseq(r, h, 1, 4,
                "BLEU4 = 53.73, 83.3/60.0/50.0/33.3 (BP=1.000, ratio=1.000, syslen=6, reflen=6)");
  /* order 2: (5/6 * 3/5)^(1/2) = 0.707107 */
  check_fairseq(r, h, 1, 2, "BLEU2 = 70.71, 83.3/60.0 (BP=1.000, ratio=1.000, syslen=6, reflen=6)");
}

static void test_fairseq_bleu_brevity_penalty(void) {
  /* hand: every n-gram of the 4-token hyp matches; r = 8/4 = 2,
   * BP = exp(1 - 2) = 0.367879 -> 36.79 */
  const char *r[] = {"a b c d e f g h"}, *h[] = {"a b c d"};
  check_fairseq(r, h, 1, 4,
                "BLEU4 = 36.79, 100.0/100.0/100.0/100.0 (BP=0.368, ratio=0.500, syslen=4, reflen=8)");
}

static void test_fairseq_bleu_clips_repeated_ngrams(void) {
  /* hand: "the" x7 against a reference holding "the" twice: 2/7 = 28.6;
   * "the the" never occurs in the reference: 0/6 */
  const char *r[] = {"the cat is on the mat"}, *h[] = {"the the the the the the the"};
  check_fairseq(r, h, 1, 4, "BLEU4 = 0.00, 28.6/0.0/0.0/0.0 (BP=1.000, ratio=1.167, syslen=7, reflen=6)");
}

static void test_fairseq_bleu_empty_hypothesis_counts_its_eos(void) {
  /* hand: encode_line("") is [eos]; libbleu's rtrim never removes index 0,
   * so the hypothesis is one token (eos) against "a b": 0/1, r = 2,
   * BP = exp(-1) */
  const char *r[] = {"a b"}, *h[] = {""};
  check_fairseq(r, h, 1, 4, "BLEU4 = 0.00, 0.0/0.0/0.0/0.0 (BP=0.368, ratio=0.500, syslen=1, reflen=2)");
}

static void test_fairseq_bleu_accumulates_a_corpus(void) {
  /* hand: the two cases above summed: 1-grams 5/6 + 5/5 = 10/11,
   * 2-grams 3/5 + 4/4 = 7/9, 3-grams 2/4 + 3/3 = 5/7, 4-grams 1/3 + 2/2 = 3/5;
   * (10/11 * 7/9 * 5/7 * 3/5)^(1/4) = (150/495)^(1/4) = 0.741942 */
  const char *r[] = {"the cat sat on the mat", "a b c d e"};
  const char *h[] = {"the cat sat on a mat", "a b c d e"};
  check_fairseq(r, h, 2, 4,
                "BLEU4 = 74.19, 90.9/77.8/71.4/60.0 (BP=1.000, ratio=1.000, syslen=11, reflen=11)");
}

static void test_fairseq_bleu_never_matches_unk_and_trims_pad_eos(void) {
  fsq_bleu *b = fsq_bleu_new(1, 2, 3);
  /* ref [<pad> <pad> 3 5 </s> <pad>] -> [-999 5]; pred [3 5 </s>] -> [3 5] */
  const int32_t ref[] = {1, 1, 3, 5, 2, 1}, pred[] = {3, 5, 2};
  CU_ASSERT_EQUAL(fsq_bleu_add(b, ref, 6, pred, 3), FSQ_OK);
  const fsq_bleu_stat *s = fsq_bleu_get_stat(b);
  CU_ASSERT_EQUAL(s->reflen, 2);
  CU_ASSERT_EQUAL(s->predlen, 2);
  CU_ASSERT_EQUAL(s->match[0], 1); /* only 5: the unk never matches */
  CU_ASSERT_EQUAL(s->count[0], 2);
  CU_ASSERT_EQUAL(s->match[1], 0);
  CU_ASSERT_EQUAL(s->count[1], 1);
  const int32_t pads[] = {1, 1};
  CU_ASSERT_EQUAL(fsq_bleu_add(b, NULL, 0, pads, 2), FSQ_OK); /* nothing left to count */
  CU_ASSERT_EQUAL(s->reflen, 2);
  CU_ASSERT_EQUAL(s->predlen, 2);
  const int32_t negative[] = {4, -1};
  CU_ASSERT_EQUAL(fsq_bleu_add(b, negative, 2, pred, 3), FSQ_ERR_INVALID);
  fsq_bleu_free(b);
}

static void test_fairseq_sentence_bleu_adds_one_to_orders_above_1(void) {
  /* hand: as the partial match with one_init: 5/6, (3+1)/(5+1), (2+1)/(4+1),
   * (1+1)/(3+1); (5/6 * 2/3 * 3/5 * 1/2)^(1/4) = (1/6)^(1/4) = 0.638943 */
  fsq_bleu *b = fsq_bleu_new(1, 2, 3);
  fsq_word_ids *w = fsq_word_ids_new();
  fsq_bleu_reset(b, 1);
  add_text(b, w, "the cat sat on the mat", "the cat sat on a mat");
  char line[256];
  CU_ASSERT_EQUAL(fsq_bleu_result_string(fsq_bleu_get_stat(b), 4, line, sizeof line), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(line,
                         "BLEU4 = 63.89, 83.3/66.7/60.0/50.0 (BP=1.000, ratio=1.000, syslen=6, reflen=6)");
  fsq_word_ids_free(w);
  fsq_bleu_free(b);
}

static void test_fairseq_bleu_refuses_undefined_results(void) {
  fsq_bleu_stat s = {0};
  char line[256];
  CU_ASSERT_EQUAL(fsq_bleu_result_string(&s, 4, line, sizeof line), FSQ_ERR_INVALID);
  s.predlen = s.reflen = 1;
  CU_ASSERT_EQUAL(fsq_bleu_result_string(&s, 5, line, sizeof line), FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(fsq_bleu_result_string(&s, 4, line, 10), FSQ_ERR_INVALID);
}

static void test_word_ids_split_on_unicode_whitespace_and_keep_specials(void) {
  fsq_word_ids *w = fsq_word_ids_new();
  const char *line = "  a\xe3\x80\x80" "b\xc2\xa0" "a\t<unk> </s>\n";
  const int32_t *ids;
  size_t n;
  CU_ASSERT_EQUAL_FATAL(fsq_word_ids_encode(w, line, strlen(line), &ids, &n), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(n, 6);
  CU_ASSERT_EQUAL(ids[0], 4);
  CU_ASSERT_EQUAL(ids[1], 5);
  CU_ASSERT_EQUAL(ids[2], 4);
  CU_ASSERT_EQUAL(ids[3], FSQ_WORD_UNK);
  CU_ASSERT_EQUAL(ids[4], FSQ_WORD_EOS);
  CU_ASSERT_EQUAL(ids[5], FSQ_WORD_EOS);
  CU_ASSERT_EQUAL(fsq_word_ids_count(w), 6);
  fsq_word_ids_free(w);
}

static void test_utf8_validation_is_strict(void) {
  size_t bad = 99;
  CU_ASSERT(fsq_utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10, NULL));
  CU_ASSERT(!fsq_utf8_valid("ab\xff", 3, &bad));
  CU_ASSERT_EQUAL(bad, 2);
  CU_ASSERT(!fsq_utf8_valid("\xed\xa0\x80", 3, NULL)); /* surrogate */
  CU_ASSERT(!fsq_utf8_valid("\xc0\xaf", 2, NULL));     /* overlong */
  CU_ASSERT(!fsq_utf8_valid("\xc3", 1, NULL));         /* truncated */
}

static void test_lowercase_follows_python(void) {
  fsq_text t = {0};
  const char *s = "The CAT \xc3\x89" "COLE \xc4\xb0 \xe2\x84\xaa";
  CU_ASSERT_EQUAL_FATAL(fsq_utf8_lower(s, strlen(s), &t), FSQ_OK);
  /* 'The CAT ÉCOLE İ K'.lower() == 'the cat école i̇ k' (KELVIN SIGN -> k) */
  CU_ASSERT_STRING_EQUAL(t.data, "the cat \xc3\xa9" "cole i\xcc\x87 k");
  fsq_text_free(&t);
}

static void check_13a(const char *in, const char *expected) {
  fsq_text t = {0};
  CU_ASSERT_EQUAL_FATAL(fsq_tokenize_13a(in, strlen(in), &t), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(t.data, expected);
  if (strcmp(t.data, expected) != 0) fprintf(stderr, "\n  13a(%s) = [%s]\n", in, t.data);
  fsq_text_free(&t);
}

static void test_13a_splits_punctuation(void) {
  check_13a("Hello, world!", "Hello , world !");     /* ',' after a letter; '!' always */
  check_13a("$5 (approx.)", "$ 5 ( approx . )");      /* $ ( ) always; '.' after a letter */
  check_13a("a/b;c:d?e@f", "a / b ; c : d ? e @ f"); /* the [:-@] and '/' ranges */
  check_13a("It's", "It's");                          /* the apostrophe is not split */
  check_13a("a...b", "a . . . b");                    /* non-overlapping [^0-9][.,] */
}

static void test_13a_keeps_numbers_together(void) {
  check_13a("3.14 and 1,000.", "3.14 and 1,000 ."); /* digit on both sides: kept */
  check_13a("3,a", "3 , a");                         /* ',' before a non-digit */
  check_13a("a.5", "a . 5");                         /* '.' after a non-digit */
}

static void test_13a_splits_dash_only_after_digit(void) {
  check_13a("pre-war 1990-1995", "pre-war 1990 - 1995");
  check_13a("well-known -5", "well-known -5");
}

static void test_13a_quotes_entities_and_skipped(void) {
  check_13a("\"Yes,\" she said.", "\" Yes , \" she said .");
  check_13a("&quot;a&quot; &amp; b &lt;c&gt;", "\" a \" & b < c >");
  check_13a("&amp;lt;", "<"); /* replacements run in order: &amp; then &lt; */
  check_13a("a <skipped> b", "a b");
  check_13a("foo-\nbar\nbaz", "foobar baz");
}

static void test_13a_handles_unicode(void) {
  check_13a("caf\xc3\xa9.", "caf\xc3\xa9 .");
  check_13a("a\xc2\xa0" "b\xe3\x80\x80" "c", "a b c"); /* NBSP, ideographic space */
  check_13a("", "");
}

/* sacreBLEU's compute_bleu on raw statistics. */
static double compute(const uint64_t correct[4], const uint64_t total[4], uint64_t sys,
                      uint64_t ref, fsq_sacrebleu_smooth smooth, double value, int eff) {
  fsq_sacrebleu_stats st = {sys, ref, {0}, {0}};
  memcpy(st.correct, correct, sizeof st.correct);
  memcpy(st.total, total, sizeof st.total);
  fsq_sacrebleu_score sc;
  fsq_sacrebleu_compute(&st, smooth, value, eff, &sc);
  return sc.score;
}

static void test_sacrebleu_compute_matches_published_vectors(void) {
  /* sacrebleu test_bleu.py test_case_scoring: 0.8375922397 (score / 100) */
  const uint64_t c[4] = {9, 7, 5, 3}, t[4] = {10, 8, 6, 4};
  CU_ASSERT(fabs(compute(c, t, 11, 11, FSQ_SMOOTH_EXP, -1, 0) / 100 - 0.8375922397) < EPSILON);
  /* test_case_degenerate_stats with floor smoothing: exactly 0.0 */
  const uint64_t z[4] = {0, 0, 0, 0}, t1[4] = {4, 4, 2, 1}, t2[4] = {10, 11, 12, 0};
  const uint64_t c3[4] = {6, 5, 4, 0}, t3[4] = {6, 5, 4, 3};
  CU_ASSERT_EQUAL(compute(z, t1, 0, 1, FSQ_SMOOTH_FLOOR, 0.0, 0), 0.0);
  CU_ASSERT_EQUAL(compute(z, t2, 14, 10, FSQ_SMOOTH_FLOOR, 0.0, 0), 0.0);
  CU_ASSERT_EQUAL(compute(z, z, 0, 0, FSQ_SMOOTH_FLOOR, 0.0, 0), 0.0);
  CU_ASSERT_EQUAL(compute(c3, t3, 6, 6, FSQ_SMOOTH_FLOOR, 0.0, 0), 0.0);
  CU_ASSERT_EQUAL(compute(z, z, 0, 0, FSQ_SMOOTH_FLOOR, 0.1, 0), 0.0);
  CU_ASSERT_EQUAL(compute(z, z, 1, 5, FSQ_SMOOTH_FLOOR, 0.01, 0), 0.0);
}

/* raw_corpus_bleu: no tokenization, floor smoothing, effective order. */
static double raw_corpus(const char *const *hyps, const char *const *refs, size_t n, double floor_value) {
  fsq_sacrebleu *sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_NONE, 0);
  for (size_t i = 0; i < n; i++) {
    size_t rl = strlen(refs[i]);
    CU_ASSERT_EQUAL(fsq_sacrebleu_add(sb, hyps[i], strlen(hyps[i]), &refs[i], &rl, 1), FSQ_OK);
  }
  fsq_sacrebleu_score sc;
  fsq_sacrebleu_compute(fsq_sacrebleu_get_stats(sb), FSQ_SMOOTH_FLOOR, floor_value, 1, &sc);
  fsq_sacrebleu_free(sb);
  return sc.score / 100;
}

static void test_sacrebleu_raw_corpus_matches_published_vectors(void) {
  /* sacrebleu test_bleu.py test_raw_bleu_cases and test_case_effective_order */
  const char *h1[] = {"this is a test", "another test"}, *r1[] = {"ref1", "ref2"};
  CU_ASSERT(fabs(raw_corpus(h1, r1, 2, .01) - 0.003799178428257963) < EPSILON);
  const char *h2[] = {"this is a test"};
  CU_ASSERT(fabs(raw_corpus(h2, h2, 1, .01) - 1.0) < EPSILON);
  const char *h3[] = {"this is a fest"};
  CU_ASSERT(fabs(raw_corpus(h3, h2, 1, .01) - 0.223606797749979) < EPSILON);
  const char *h4[] = {"test"}, *r4[] = {"a test"};
  CU_ASSERT(fabs(raw_corpus(h4, r4, 1, .01) - 0.3678794411714425) < EPSILON);
  CU_ASSERT(fabs(raw_corpus(r4, r4, 1, .01) - 1.0) < EPSILON);
  const char *h5[] = {"a little test"};
  CU_ASSERT(fabs(raw_corpus(h5, r4, 1, .01) - 0.03218297948685433) < EPSILON);
  /* test_offset: with floor 0.1 (1.5.1's default) and 0.0 */
  const char *h6[] = {"am I am a character sequence"}, *r6[] = {"I am a symbol string sequence a a"};
  CU_ASSERT(fabs(raw_corpus(h6, r6, 1, -1) - 0.1555722182) < EPSILON);
  CU_ASSERT_EQUAL(raw_corpus(h6, r6, 1, 0.0), 0.0);
}

static void test_sacrebleu_counts_statistics(void) {
  /* sacrebleu test_bleu.py test_case_statistics: [4,2,1,0] of [6,5,4,3] */
  fsq_sacrebleu *sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_NONE, 0);
  const char *hyp = "am I am a character sequence", *ref = "I am a symbol string sequence a a";
  size_t rl = strlen(ref);
  CU_ASSERT_EQUAL(fsq_sacrebleu_add(sb, hyp, strlen(hyp), &ref, &rl, 1), FSQ_OK);
  const fsq_sacrebleu_stats *st = fsq_sacrebleu_get_stats(sb);
  const uint64_t c[4] = {4, 2, 1, 0}, t[4] = {6, 5, 4, 3};
  CU_ASSERT(memcmp(st->correct, c, sizeof c) == 0);
  CU_ASSERT(memcmp(st->total, t, sizeof t) == 0);
  CU_ASSERT_EQUAL(st->sys_len, 6);
  CU_ASSERT_EQUAL(st->ref_len, 8);
  fsq_sacrebleu_free(sb);
}

/* corpus_bleu(hyps, two reference streams) with 13a or none, exp smoothing. */
static double corpus_two_refs(const char *const *hyps, fsq_sacrebleu_tokenizer tok, fsq_sacrebleu_smooth sm) {
  static const char *refs[2][3] = {
      {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
      {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};
  fsq_sacrebleu *sb = fsq_sacrebleu_new(tok, 0);
  for (int i = 0; i < 3; i++) {
    const char *r[2] = {refs[0][i], refs[1][i]};
    size_t rl[2] = {strlen(r[0]), strlen(r[1])};
    CU_ASSERT_EQUAL(fsq_sacrebleu_add(sb, hyps[i], strlen(hyps[i]), r, rl, 2), FSQ_OK);
  }
  fsq_sacrebleu_score sc;
  fsq_sacrebleu_compute(fsq_sacrebleu_get_stats(sb), sm, -1, 0, &sc);
  fsq_sacrebleu_free(sb);
  return sc.score;
}

static void test_sacrebleu_corpus_matches_published_vectors(void) {
  /* sacrebleu test_bleu.py test_corpus_bleu_cases (README example) */
  const char *hyps[] = {"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."};
  CU_ASSERT(fabs(corpus_two_refs(hyps, FSQ_SACREBLEU_TOK_13A, FSQ_SMOOTH_EXP) - 48.530827) < EPSILON);
  CU_ASSERT(fabs(corpus_two_refs(hyps, FSQ_SACREBLEU_TOK_13A, FSQ_SMOOTH_NONE) - 48.530827) < EPSILON);
  CU_ASSERT(fabs(corpus_two_refs(hyps, FSQ_SACREBLEU_TOK_NONE, FSQ_SMOOTH_EXP) - 49.1919566) < EPSILON);
  const char *empty[] = {"", "", ""};
  CU_ASSERT_EQUAL(corpus_two_refs(empty, FSQ_SACREBLEU_TOK_13A, FSQ_SMOOTH_EXP), 0.0);
}

static void test_sacrebleu_format_and_exp_smoothing_without_matches(void) {
  /* hand: "a b c d" vs "e f g h": no match, 1.5.1's exp smoothing halves
   * each time: 100/(2*4)=12.5, 100/(4*3)=8.33, 100/(8*2)=6.25, 100/(16*1)=6.25;
   * (12.5 * 8.333 * 6.25 * 6.25)^(1/4) = 7.9868 */
  fsq_sacrebleu *sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_13A, 0);
  const char *ref = "e f g h";
  size_t rl = strlen(ref);
  CU_ASSERT_EQUAL(fsq_sacrebleu_add(sb, "a b c d\n", 8, &ref, &rl, 1), FSQ_OK);
  fsq_sacrebleu_score sc;
  fsq_sacrebleu_compute(fsq_sacrebleu_get_stats(sb), FSQ_SMOOTH_EXP, -1, 0, &sc);
  char line[256];
  CU_ASSERT_EQUAL(fsq_sacrebleu_format(&sc, line, sizeof line), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(line, "BLEU = 7.99 12.5/8.3/6.2/6.2 (BP = 1.000 ratio = 1.000 hyp_len = 4 ref_len = 4)");
  fsq_sacrebleu_free(sb);
}

static void test_sacrebleu_lowercase_and_tokenized_warning_count(void) {
  fsq_sacrebleu *sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_13A, 1);
  const char *ref = "the end .";
  size_t rl = strlen(ref);
  CU_ASSERT_EQUAL(fsq_sacrebleu_add(sb, "THE END .  ", 11, &ref, &rl, 1), FSQ_OK);
  const fsq_sacrebleu_stats *st = fsq_sacrebleu_get_stats(sb);
  CU_ASSERT_EQUAL(st->correct[0], 3);
  CU_ASSERT_EQUAL(st->correct[2], 1);
  CU_ASSERT_EQUAL(fsq_sacrebleu_tokenized_lines(sb), 1);
  fsq_sacrebleu_free(sb);
}

static void check_post(const char *in, const char *symbol, const char *expected) {
  fsq_text t = {0};
  CU_ASSERT_EQUAL_FATAL(fsq_post_process(in, strlen(in), symbol, &t), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(t.data, expected);
  fsq_text_free(&t);
}

/* Expected strings follow data_utils.post_process step by step (by hand). */
static void test_post_process_removes_bpe_marks(void) {
  /* ("the new@@ est model@@ s" + " ").replace("@@ ", "").rstrip() */
  check_post("the new@@ est model@@ s", "@@ ", "the newest models");
  check_post("the new@@ est model@@ s", "subword_nmt", "the newest models");
  check_post("a b@@", "subword_nmt", "a b");        /* "a b@@ " -> "a b" */
  check_post("new@@ est", "@@", "new est");          /* only "@@" goes */
  /* remove spaces, then U+2581 -> " ", then strip */
  check_post("\xe2\x96\x81Hello \xe2\x96\x81wor ld .", "sentencepiece", "Hello world.");
  check_post("_Hello _wor ld", "wordpiece", "Hello world");
  check_post("h e l l o | w o r l d |", "letter", "hello world");
  check_post("hel lo_EOW world_EOW", "_EOW", "hello world");
  /* "<SIL>" dropped, runs of spaces collapsed, stripped */
  check_post("<SIL> a  <SIL> b <SIL>", "silence", "a b");
  check_post("  x@@ y  ", "none", "  x@@ y  ");
  check_post("  x@@ y  ", NULL, "  x@@ y  ");
}

static void test_post_process_refuses_unknown_symbol(void) {
  fsq_text t = {0};
  CU_ASSERT_EQUAL(fsq_post_process("a", 1, "bpe", &t), FSQ_ERR_INVALID);
  CU_ASSERT_STRING_EQUAL(fsq_error_message(), "Unknown post_process option: bpe");
  fsq_text_free(&t);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_fairseq_bleu_perfect_match_is_100),
      FSQ_TEST_CASE(test_fairseq_bleu_no_overlap_is_0),
      FSQ_TEST_CASE(test_fairseq_bleu_partial_match),
      FSQ_TEST_CASE(test_fairseq_bleu_brevity_penalty),
      FSQ_TEST_CASE(test_fairseq_bleu_clips_repeated_ngrams),
      FSQ_TEST_CASE(test_fairseq_bleu_empty_hypothesis_counts_its_eos),
      FSQ_TEST_CASE(test_fairseq_bleu_accumulates_a_corpus),
      FSQ_TEST_CASE(test_fairseq_bleu_never_matches_unk_and_trims_pad_eos),
      FSQ_TEST_CASE(test_fairseq_sentence_bleu_adds_one_to_orders_above_1),
      FSQ_TEST_CASE(test_fairseq_bleu_refuses_undefined_results),
      FSQ_TEST_CASE(test_word_ids_split_on_unicode_whitespace_and_keep_specials),
      FSQ_TEST_CASE(test_utf8_validation_is_strict),
      FSQ_TEST_CASE(test_lowercase_follows_python),
      FSQ_TEST_CASE(test_13a_splits_punctuation),
      FSQ_TEST_CASE(test_13a_keeps_numbers_together),
      FSQ_TEST_CASE(test_13a_splits_dash_only_after_digit),
      FSQ_TEST_CASE(test_13a_quotes_entities_and_skipped),
      FSQ_TEST_CASE(test_13a_handles_unicode),
      FSQ_TEST_CASE(test_sacrebleu_compute_matches_published_vectors),
      FSQ_TEST_CASE(test_sacrebleu_raw_corpus_matches_published_vectors),
      FSQ_TEST_CASE(test_sacrebleu_counts_statistics),
      FSQ_TEST_CASE(test_sacrebleu_corpus_matches_published_vectors),
      FSQ_TEST_CASE(test_sacrebleu_format_and_exp_smoothing_without_matches),
      FSQ_TEST_CASE(test_sacrebleu_lowercase_and_tokenized_warning_count),
      FSQ_TEST_CASE(test_post_process_removes_bpe_marks),
      FSQ_TEST_CASE(test_post_process_refuses_unknown_symbol),
      FSQ_TEST_END};
  return fsq_test_main("scoring", cases);
}
