/* fairseq-score: BLEU of a system output against a reference, printing
 * what fairseq_cli/score.py prints: its argparse Namespace, then one
 * result line (fairseq BLEU, or sacreBLEU's with --sacrebleu), or with
 * --sentence-bleu "i BLEU4 = ..." per line (fairseq's +1 smoothing).
 *
 * Both files are read and checked (exist, UTF-8, same number of lines)
 * before anything is printed, so a failure prints one error line only.
 * Lines split as Python's text mode splits them (\n, \r\n and \r). */
#include "generate/fsq_scoring.h"
#include "registry/fsq_options.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "fairseq-score"

static const fsq_option score_options[] = {
    {"sys", FSQ_OPT_STRING, "-", "system output", NULL, "s"},
    {"ref", FSQ_OPT_STRING, NULL, "references (required)", NULL, "r"},
    {"order", FSQ_OPT_INT, "4", "consider ngrams up to this order", NULL, "o"},
    {"ignore-case", FSQ_OPT_BOOL, NULL, "case-insensitive scoring", NULL, NULL},
    {"sacrebleu", FSQ_OPT_BOOL, NULL, "score with sacrebleu", NULL, NULL},
    {"sentence-bleu", FSQ_OPT_BOOL, NULL, "report sentence-level BLEUs (i.e., with +1 smoothing)",
     NULL, NULL},
    FSQ_OPTION_END};

typedef struct score_args {
  const char *sys, *ref;
  int64_t order;
  int ignore_case, sacrebleu, sentence_bleu;
} score_args;

/* A whole file and its lines: line i is data[start[i] .. start[i] + len[i]). */
typedef struct text_file {
  char *data;
  size_t size, nlines;
  size_t *start, *len;
} text_file;

static void text_file_free(text_file *f) {
  free(f->data);
  free(f->start);
  free(f->len);
}

static fsq_status slurp(FILE *in, const char *name, text_file *f) {
  size_t cap = 1 << 16;
  f->data = malloc(cap);
  for (size_t got; f->data != NULL; f->size += got) {
    if (f->size == cap) {
      char *p = realloc(f->data, cap *= 2);
      if (p == NULL) break;
      f->data = p;
    }
    got = fread(f->data + f->size, 1, cap - f->size, in);
    if (got == 0) break;
  }
  if (f->data == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", name);
  if (ferror(in)) return fsq_error(FSQ_ERR_IO, "%s: %s", name, strerror(errno));
  return FSQ_OK;
}

/* Splits at \n, \r\n and \r; a final line without terminator counts. */
static fsq_status split_lines(text_file *f, const char *name) {
  size_t cap = 0;
  for (size_t i = 0; i < f->size;) {
    if (f->nlines == cap) {
      cap = cap ? 2 * cap : 1024;
      size_t *s = realloc(f->start, cap * sizeof *s), *l = s ? realloc(f->len, cap * sizeof *l) : NULL;
      if (s != NULL) f->start = s;
      if (l == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", name);
      f->len = l;
    }
    size_t j = i;
    while (j < f->size && f->data[j] != '\n' && f->data[j] != '\r') j++;
    f->start[f->nlines] = i;
    f->len[f->nlines++] = j - i;
    if (j < f->size && f->data[j] == '\r' && j + 1 < f->size && f->data[j + 1] == '\n') j++;
    i = j + 1;
  }
  return FSQ_OK;
}

static fsq_status read_text(const char *path, const char *what, text_file *f) {
  memset(f, 0, sizeof *f);
  int from_stdin = strcmp(path, "-") == 0;
  const char *name = from_stdin ? "<stdin>" : path;
  struct stat st;
  if (!from_stdin && stat(path, &st) != 0)
    return fsq_error(FSQ_ERR_NOT_FOUND, "%s file %s does not exist", what, path);
  if (!from_stdin && S_ISDIR(st.st_mode))
    return fsq_error(FSQ_ERR_IO, "%s: Is a directory", path);
  FILE *in = from_stdin ? stdin : fopen(path, "rb");
  if (in == NULL) return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  fsq_status s = slurp(in, name, f);
  if (!from_stdin) fclose(in);
  size_t bad;
  if (s == FSQ_OK && !fsq_utf8_valid(f->data, f->size, &bad)) {
    size_t line = 1;
    for (size_t i = 0; i < bad; i++) line += f->data[i] == '\n';
    s = fsq_error(FSQ_ERR_FORMAT, "%s: not valid UTF-8 (byte %zu, line %zu)", name, bad, line);
  }
  return s == FSQ_OK ? split_lines(f, name) : s;
}

/* Python's repr() of a str made from argv bytes (invalid bytes as the
 * surrogate escapes Python's filesystem decoding gives them). */
static void print_repr(const char *s) {
  size_t n = strlen(s);
  int quote = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';
  putchar(quote);
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    size_t bad;
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (c >= 0x80 && (i + len > n || !fsq_utf8_valid(s + i, len, &bad))) {
      printf("\\udc%02x", c);
      i++;
      continue;
    }
    if (c == '\\' || c == quote) printf("\\%c", c);
    else if (c == '\n') fputs("\\n", stdout);
    else if (c == '\r') fputs("\\r", stdout);
    else if (c == '\t') fputs("\\t", stdout);
    else if (c < 0x20 || c == 0x7F) printf("\\x%02x", c);
    else if (c == 0xC2 && ((unsigned char)s[i + 1] <= 0xA0 || (unsigned char)s[i + 1] == 0xAD))
      printf("\\x%02x", (unsigned char)s[i + 1]); /* C1 controls, NBSP, soft hyphen */
    else fwrite(s + i, 1, len, stdout);
    i += len;
  }
  putchar(quote);
}

static const char *py_bool(int v) { return v ? "True" : "False"; }

/* print(args): argparse's Namespace repr, attributes in sorted order. */
static void print_namespace(const score_args *a) {
  printf("Namespace(ignore_case=%s, order=%lld, ref=", py_bool(a->ignore_case),
         (long long)a->order);
  print_repr(a->ref);
  printf(", sacrebleu=%s, sentence_bleu=%s, sys=", py_bool(a->sacrebleu),
         py_bool(a->sentence_bleu));
  print_repr(a->sys);
  fputs(")\n", stdout);
}

/* fairseq's Scorer over Dictionary-encoded lines; with sentence_bleu one
 * "i BLEU4 = ..." line per pair, after Scorer.reset(one_init=True). (Since
 * fairseq's scorers take a config object, score.py's sentence-BLEU branch,
 * which still calls bleu.Scorer(pad, eos, unk), raises TypeError; this is
 * the output of the versions where that call worked.) */
static fsq_status score_fairseq(const score_args *a, const text_file *sys, const text_file *ref,
                                FILE *out) {
  fsq_bleu *bleu = fsq_bleu_new(FSQ_WORD_PAD, FSQ_WORD_EOS, FSQ_WORD_UNK);
  fsq_word_ids *words = fsq_word_ids_new();
  fsq_text lower = {0};
  int32_t *ref_ids = NULL;
  size_t ref_cap = 0;
  fsq_status s = bleu != NULL && words != NULL ? FSQ_OK : fsq_error_code();
  char line[512];
  for (size_t i = 0; s == FSQ_OK && i < sys->nlines; i++) {
    const int32_t *ids;
    size_t n, nref;
    const char *r = ref->data + ref->start[i], *h = sys->data + sys->start[i];
    size_t rl = ref->len[i], hl = sys->len[i];
    if (a->ignore_case && (s = fsq_utf8_lower(r, rl, &lower)) != FSQ_OK) break;
    if (a->ignore_case) r = lower.data, rl = lower.len;
    if ((s = fsq_word_ids_encode(words, r, rl, &ids, &nref)) != FSQ_OK) break;
    if (nref > ref_cap) {
      int32_t *p = realloc(ref_ids, nref * sizeof *p);
      if (p == NULL) {
        s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
        break;
      }
      ref_ids = p, ref_cap = nref;
    }
    memcpy(ref_ids, ids, nref * sizeof *ids);
    if (a->ignore_case && (s = fsq_utf8_lower(h, hl, &lower)) != FSQ_OK) break;
    if (a->ignore_case) h = lower.data, hl = lower.len;
    if ((s = fsq_word_ids_encode(words, h, hl, &ids, &n)) != FSQ_OK) break;
    if (a->sentence_bleu) fsq_bleu_reset(bleu, 1);
    if ((s = fsq_bleu_add(bleu, ref_ids, nref, ids, n)) != FSQ_OK) break;
    if (a->sentence_bleu &&
        (s = fsq_bleu_result_string(fsq_bleu_get_stat(bleu), (int)a->order, line, sizeof line)) == FSQ_OK)
      fprintf(out, "%zu %s\n", i, line);
  }
  if (s == FSQ_OK && !a->sentence_bleu &&
      (s = fsq_bleu_result_string(fsq_bleu_get_stat(bleu), (int)a->order, line, sizeof line)) == FSQ_OK)
    fprintf(out, "%s\n", line);
  free(ref_ids);
  fsq_text_free(&lower);
  fsq_word_ids_free(words);
  fsq_bleu_free(bleu);
  return s;
}

/* sacrebleu.corpus_bleu(sys, [ref]).format(): 13a, exp smoothing, raw
 * lines (fairseq-score applies neither --ignore-case nor --order here). */
static fsq_status score_sacrebleu(const text_file *sys, const text_file *ref, FILE *out) {
  fsq_sacrebleu *sb = fsq_sacrebleu_new(FSQ_SACREBLEU_TOK_13A, 0);
  fsq_status s = sb != NULL ? FSQ_OK : fsq_error_code();
  for (size_t i = 0; s == FSQ_OK && i < sys->nlines; i++) {
    const char *r = ref->data + ref->start[i];
    s = fsq_sacrebleu_add(sb, sys->data + sys->start[i], sys->len[i], &r, &ref->len[i], 1);
  }
  char line[512];
  fsq_sacrebleu_score score;
  if (s == FSQ_OK) {
    fsq_sacrebleu_compute(fsq_sacrebleu_get_stats(sb), FSQ_SMOOTH_EXP, -1, 0, &score);
    s = fsq_sacrebleu_format(&score, line, sizeof line);
  }
  if (s == FSQ_OK) {
    fprintf(out, "%s\n", line);
    uint64_t tokenized = fsq_sacrebleu_tokenized_lines(sb);
    if (tokenized >= 100)
      fprintf(stderr, PROG ": warning: %llu lines end in a tokenized period ('.'); sacreBLEU "
              "expects detokenized text\n", (unsigned long long)tokenized);
  }
  fsq_sacrebleu_free(sb);
  return s;
}

/* Parses argv into a; returns 0 to go on, else the exit code (help: 0 via *done). */
static int parse_args(int argc, char **argv, score_args *a, json_object **given, int *done) {
  fsq_option_set *set = fsq_option_set_new();
  json_object *pos = NULL;
  int code = 0;
  *done = 0;
  if (set == NULL || fsq_option_set_add(set, PROG, score_options) != FSQ_OK ||
      fsq_options_parse(set, argc, argv, given, &pos) != FSQ_OK) {
    fprintf(stderr, PROG ": error: %s\n", fsq_error_message());
    code = 2;
  } else if (json_object_array_length(pos) > 0) {
    fprintf(stderr, PROG ": error: unrecognized arguments: %s\n",
            json_object_get_string(json_object_array_get_idx(pos, 0)));
    code = 2;
  } else {
    int help = 0;
    fsq_json_get_bool(*given, "help", &help);
    if (help) {
      fsq_options_print_help(set, PROG " [-s SYS] -r REF [-o N] [--ignore-case] [--sacrebleu] "
                             "[--sentence-bleu]", stdout);
      *done = 1;
    } else if (fsq_options_fill_defaults(set, *given) != FSQ_OK) {
      fprintf(stderr, PROG ": error: %s\n", fsq_error_message());
      code = 2;
    } else {
      fsq_json_get_string(*given, "sys", &a->sys);
      fsq_json_get_string(*given, "ref", &a->ref);
      fsq_json_get_int64(*given, "order", &a->order);
      fsq_json_get_bool(*given, "ignore_case", &a->ignore_case);
      fsq_json_get_bool(*given, "sacrebleu", &a->sacrebleu);
      fsq_json_get_bool(*given, "sentence_bleu", &a->sentence_bleu);
      if (a->ref == NULL) {
        fprintf(stderr, PROG ": error: the following arguments are required: -r/--ref\n");
        code = 2;
      }
    }
  }
  json_object_put(pos);
  fsq_option_set_free(set);
  return code;
}

int main(int argc, char **argv) {
  score_args a = {0};
  json_object *given = NULL;
  int done;
  int code = parse_args(argc, argv, &a, &given, &done);
  if (code != 0 || done) {
    json_object_put(given);
    return code;
  }
  text_file sys = {0}, ref = {0};
  char *buf = NULL;
  size_t buf_len = 0;
  FILE *out = NULL;
  fsq_status s = FSQ_OK;
  if (!a.sacrebleu && (a.order < 1 || a.order > 4))
    s = fsq_error(FSQ_ERR_INVALID, "BLEU scores for order %lld aren't supported (1..4)",
                  (long long)a.order);
  if (s == FSQ_OK) s = read_text(a.sys, "System output", &sys);
  if (s == FSQ_OK) s = read_text(a.ref, "Reference", &ref);
  if (s == FSQ_OK && sys.nlines != ref.nlines)
    s = fsq_error(FSQ_ERR_FORMAT, "%s has %zu lines but %s has %zu",
                  strcmp(a.sys, "-") == 0 ? "<stdin>" : a.sys, sys.nlines, a.ref, ref.nlines);
  if (s == FSQ_OK && (out = open_memstream(&buf, &buf_len)) == NULL)
    s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
  if (s == FSQ_OK)
    s = a.sacrebleu ? score_sacrebleu(&sys, &ref, out) : score_fairseq(&a, &sys, &ref, out);
  if (out != NULL) fclose(out);
  if (s == FSQ_OK) {
    print_namespace(&a);
    fwrite(buf, 1, buf_len, stdout);
    if (fflush(stdout) != 0 || ferror(stdout))
      s = fsq_error(FSQ_ERR_IO, "writing the result: %s", strerror(errno));
  }
  if (s != FSQ_OK) fprintf(stderr, PROG ": error: %s\n", fsq_error_message());
  free(buf);
  text_file_free(&sys);
  text_file_free(&ref);
  json_object_put(given);
  return s == FSQ_OK ? 0 : 1;
}
