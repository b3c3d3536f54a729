/* tokenizer_13a.c: sacreBLEU's "13a" tokenizer, the tokenization of WMT's
 * mteval-v13a.pl (sacrebleu/tokenizers/tokenizer_13a.py + tokenizer_re.py).
 * Each regular expression of the Python version is one left-to-right pass
 * here with the same non-overlapping match semantics as re.sub. Working on
 * bytes gives the same result as on code points: every pattern's literal
 * characters are ASCII, and [^0-9] next to an ASCII character matches the
 * byte of a multi-byte character that touches it. */
#include "generate/scoring_internal.h"

#include <string.h>

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* [\{-\~\[-\` -\&\(-\+\:-\@\/]: the punctuation split off everywhere. */
static int is_split_punct(char c) {
  unsigned char u = (unsigned char)c;
  return (u >= 0x7B && u <= 0x7E) || (u >= 0x5B && u <= 0x60) || (u >= 0x20 && u <= 0x26) ||
         (u >= 0x28 && u <= 0x2B) || (u >= 0x3A && u <= 0x40) || u == 0x2F;
}

/* The four regex passes of TokenizerRegexp, in order; pass selects which. */
static fsq_status regex_pass(int pass, const fsq_text *in, fsq_text *out) {
  const char *s = in->data;
  size_t n = in->len;
  out->len = 0;
  if (fsq_text_reserve(out, 3 * n) != FSQ_OK) return fsq_error_code();
  char *o = out->data;
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    int two = i + 1 < n;
    if (pass == 0 && is_split_punct(s[i])) { /* -> ' \1 ' */
      o[k++] = ' ', o[k++] = s[i], o[k++] = ' ';
      i += 1;
    } else if (pass == 1 && two && !is_digit(s[i]) && (s[i + 1] == '.' || s[i + 1] == ',')) {
      o[k++] = s[i], o[k++] = ' ', o[k++] = s[i + 1], o[k++] = ' '; /* -> '\1 \2 ' */
      i += 2;
    } else if (pass == 2 && two && (s[i] == '.' || s[i] == ',') && !is_digit(s[i + 1])) {
      o[k++] = ' ', o[k++] = s[i], o[k++] = ' ', o[k++] = s[i + 1]; /* -> ' \1 \2' */
      i += 2;
    } else if (pass == 3 && two && is_digit(s[i]) && s[i + 1] == '-') {
      o[k++] = s[i], o[k++] = ' ', o[k++] = '-', o[k++] = ' '; /* -> '\1 \2 ' */
      i += 2;
    } else {
      o[k++] = s[i++];
    }
  }
  out->len = k;
  o[k] = '\0';
  return FSQ_OK;
}

/* ' '.join(line.strip().split()) */
static fsq_status join_words(const fsq_text *in, fsq_text *out) {
  out->len = 0;
  if (fsq_text_reserve(out, in->len) != FSQ_OK) return fsq_error_code();
  size_t i = 0;
  while (i < in->len) {
    size_t sp;
    while (i < in->len && (sp = fsq_utf8_space(in->data + i, in->len - i)) > 0) i += sp;
    if (i >= in->len) break;
    size_t w = fsq_utf8_word_len(in->data + i, in->len - i);
    if (out->len > 0) out->data[out->len++] = ' ';
    memcpy(out->data + out->len, in->data + i, w);
    out->len += w;
    i += w;
  }
  out->data[out->len] = '\0';
  return FSQ_OK;
}

static const char *const replacements[][2] = {
    {"<skipped>", ""}, {"-\n", ""},   {"\n", " "},  {"&quot;", "\""},
    {"&amp;", "&"},    {"&lt;", "<"}, {"&gt;", ">"},
};

fsq_status fsq_tokenize_13a_with(const char *line, size_t len, fsq_text *out, fsq_text *a,
                                 fsq_text *b) {
  a->len = 0;
  fsq_status st = fsq_text_append(a, " ", 1);
  if (st == FSQ_OK) st = fsq_text_append(a, line, len);
  for (size_t r = 0; st == FSQ_OK && r < sizeof replacements / sizeof *replacements; r++) {
    st = fsq_text_replace(a, replacements[r][0], replacements[r][1], b);
    fsq_text t = *a;
    *a = *b, *b = t;
  }
  if (st == FSQ_OK) st = fsq_text_append(a, " ", 1); /* " {} ".format(line) */
  for (int pass = 0; st == FSQ_OK && pass < 4; pass++) {
    st = regex_pass(pass, a, b);
    fsq_text t = *a;
    *a = *b, *b = t;
  }
  return st == FSQ_OK ? join_words(a, out) : st;
}

fsq_status fsq_tokenize_13a(const char *line, size_t len, fsq_text *out) {
  fsq_text a = {0}, b = {0};
  fsq_status st = fsq_tokenize_13a_with(line, len, out, &a, &b);
  fsq_text_free(&a);
  fsq_text_free(&b);
  return st;
}
