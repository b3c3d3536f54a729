/* preprocess.c: fairseq_cli/preprocess.py as a library call. Every output
 * goes to "<name>.tmp" first; the names are renamed at the end, or removed
 * on failure, and preprocess.log is appended only after success. */
#include "data/binarize.h"
#include "data/fsq_data.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOGGER "fairseq_cli.preprocess"

typedef struct run {
  const fsq_preprocess_args *a;
  char **final, **tmp; /* outputs [n] */
  size_t n, cap;
  char *log; /* preprocess.log lines */
  size_t log_len;
} run;

static fsq_status logf_(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static fsq_status logf_(run *r, const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fsq_log_info(LOGGER, "%s", line);
  size_t len = strlen(line);
  char *p = realloc(r->log, r->log_len + len + 2);
  if (p == NULL) return fsq_error(FSQ_ERR_NOMEM, "preprocess: out of memory");
  memcpy(p + r->log_len, line, len);
  p[r->log_len + len] = '\n';
  r->log_len += len + 1;
  p[r->log_len] = '\0';
  r->log = p;
  return FSQ_OK;
}

/* Registers an output; returns the temporary path to write (owned by r). */
static const char *add_output(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *add_output(run *r, const char *fmt, ...) {
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 16;
    char **f = realloc(r->final, cap * sizeof *f);
    if (f) r->final = f;
    char **t = realloc(r->tmp, cap * sizeof *t);
    if (t) r->tmp = t;
    if (!f || !t) return NULL;
    r->cap = cap;
  }
  char path[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(path, sizeof path, fmt, ap);
  va_end(ap);
  char *f = strdup(path), *t = malloc(strlen(path) + 5);
  if (f == NULL || t == NULL) {
    free(f);
    free(t);
    return NULL;
  }
  sprintf(t, "%s.tmp", path);
  r->final[r->n] = f;
  r->tmp[r->n++] = t;
  return t;
}

static fsq_status commit_outputs(run *r) {
  for (size_t i = 0; i < r->n; i++)
    if (rename(r->tmp[i], r->final[i]) != 0)
      return fsq_error(FSQ_ERR_IO, "%s: rename: %s", r->final[i], strerror(errno));
  return FSQ_OK;
}

static void free_run(run *r, int remove_tmp) {
  for (size_t i = 0; i < r->n; i++) {
    if (remove_tmp) unlink(r->tmp[i]);
    free(r->final[i]);
    free(r->tmp[i]);
  }
  free(r->final);
  free(r->tmp);
  free(r->log);
}

static fsq_status nomem(void) { return fsq_error(FSQ_ERR_NOMEM, "preprocess: out of memory"); }

/* fairseq's file_name: "<prefix>.<lang>", or the prefix alone without a
 * language (--only-source with no -s, as language-model data is made). */
static void lang_file(char *buf, size_t size, const char *prefix, const char *lang) {
  if (lang) snprintf(buf, size, "%s.%s", prefix, lang);
  else snprintf(buf, size, "%s", prefix);
}

/* dataset_dest_prefix: <destdir>/<split>.<src>-<tgt>.<lang>, or
 * <destdir>/<split> without a language. */
static void dest_prefix(char *buf, size_t size, const fsq_preprocess_args *a, const char *split,
                        const char *lang) {
  if (lang)
    snprintf(buf, size, "%s/%s.%s-%s.%s", a->destdir, split, a->source_lang,
             a->target_lang ? a->target_lang : "None", lang);
  else
    snprintf(buf, size, "%s/%s", a->destdir, split);
}

/* Builds a dictionary from the train files (a set: a file named twice is
 * read once) and finalizes it. */
static fsq_status build_dictionary(const fsq_preprocess_args *a, const char **langs, int nlangs,
                                   int64_t threshold, int64_t nwords, fsq_dictionary **out) {
  fsq_dictionary *d = fsq_dictionary_new();
  if (d == NULL) return fsq_error_code();
  fsq_status st = FSQ_OK;
  for (int i = 0; i < nlangs && st == FSQ_OK; i++) {
    if (i == 1 && langs[0] && langs[1] && strcmp(langs[0], langs[1]) == 0) break;
    char path[4096];
    lang_file(path, sizeof path, a->trainpref, langs[i]);
    fsq_text t;
    st = fsq_text_open(path, &t);
    if (st == FSQ_OK) {
      st = fsq_binarize_count(&t, a->workers, d);
      fsq_text_close(&t);
    }
  }
  if (st == FSQ_OK) st = fsq_dictionary_finalize(d, threshold, nwords, a->padding_factor);
  if (st != FSQ_OK) {
    fsq_dictionary_free(d);
    return st;
  }
  *out = d;
  return FSQ_OK;
}

static fsq_status copy_file(const char *from, const char *to) {
  fsq_text t;
  fsq_status st = fsq_text_open(from, &t);
  if (st != FSQ_OK) return st;
  FILE *f = fopen(to, "wb");
  if (f == NULL) st = fsq_error(FSQ_ERR_IO, "%s: %s", to, strerror(errno));
  else {
    size_t w = fwrite(t.data, 1, t.size, f);
    if (fclose(f) != 0 || w != t.size) st = fsq_error(FSQ_ERR_IO, "%s: write failed", to);
  }
  fsq_text_close(&t);
  return st;
}

/* make_dataset: <destdir>/<outprefix>.<src>-<tgt>.<lang>.{bin,idx}. */
static fsq_status make_dataset(run *r, const fsq_dictionary *d, const char *inprefix,
                               const char *outprefix, const char *lang) {
  const fsq_preprocess_args *a = r->a;
  char input[4096], out[4096];
  lang_file(input, sizeof input, inprefix, lang);
  dest_prefix(out, sizeof out, a, outprefix, lang);
  if (strcmp(a->dataset_impl, "raw") == 0) {
    const char *to = add_output(r, "%s", out);
    return to ? copy_file(input, to) : nomem();
  }
  fsq_status st = logf_(r, "[%s] Dictionary: %zu types", lang ? lang : "None", fsq_dictionary_size(d));
  fsq_text t;
  if (st == FSQ_OK) st = fsq_text_open(input, &t);
  if (st != FSQ_OK) return st;
  const char *bin = add_output(r, "%s.bin", out);
  const char *idx = add_output(r, "%s.idx", out);
  fsq_indexed_writer *w = NULL;
  fsq_binarize_stats stats;
  st = bin && idx ? fsq_indexed_writer_open(bin, fsq_index_dtype_for_vocab(fsq_dictionary_size(d)), &w)
                  : nomem();
  if (st == FSQ_OK) st = fsq_binarize_encode(&t, a->workers, 0, d, w, &stats);
  fsq_text_close(&t);
  if (st == FSQ_OK) st = fsq_indexed_writer_finish(w, idx);
  else fsq_indexed_writer_abort(w);
  if (st != FSQ_OK) return st;
  int64_t nseq = stats.nseq, ntok = stats.ntok, nunk = stats.nunk;
  char pct[64];
  fsq_format_py3(100.0 * (double)nunk / (double)ntok, pct, sizeof pct);
  return logf_(r, "[%s] %s: %lld sents, %lld tokens, %s%% replaced (by <unk>)", lang ? lang : "None", input,
               (long long)nseq, (long long)ntok, pct);
}

/* make_all: train, then valid, valid1, ... and test, test1, ... */
static fsq_status make_all(run *r, const char *lang, const fsq_dictionary *d) {
  const fsq_preprocess_args *a = r->a;
  fsq_status st = FSQ_OK;
  if (a->trainpref) st = make_dataset(r, d, a->trainpref, "train", lang);
  const char *lists[2] = {a->validpref, a->testpref}, *names[2] = {"valid", "test"};
  for (int l = 0; l < 2 && st == FSQ_OK; l++) {
    if (lists[l] == NULL) continue;
    char *copy = strdup(lists[l]);
    if (copy == NULL) return nomem();
    char *s = copy;
    for (int k = 0; st == FSQ_OK; k++) {
      char *comma = strchr(s, ',');
      if (comma) *comma = '\0';
      char out[64];
      if (k > 0) snprintf(out, sizeof out, "%s%d", names[l], k);
      else snprintf(out, sizeof out, "%s", names[l]);
      st = make_dataset(r, d, s, out, lang);
      if (comma == NULL) break;
      s = comma + 1;
    }
    free(copy);
  }
  return st;
}

static fsq_status check_args(const fsq_preprocess_args *a) {
  if (a->source_lang == NULL && !a->only_source)
    return fsq_error(FSQ_ERR_INVALID, "--source-lang is required (or give --only-source)");
  if (!a->only_source && a->target_lang == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--target-lang is required (or give --only-source)");
  if (strcmp(a->dataset_impl, "mmap") != 0 && strcmp(a->dataset_impl, "raw") != 0)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "--dataset-impl %s: only mmap and raw are supported (lazy/cached write the "
                     "legacy format, which fairseq-c reads but does not write)",
                     a->dataset_impl);
  if (a->workers < 1) return fsq_error(FSQ_ERR_INVALID, "--workers must be at least 1");
  if (a->joined_dictionary && a->srcdict && a->tgtdict)
    return fsq_error(FSQ_ERR_INVALID, "cannot use both --srcdict and --tgtdict with --joined-dictionary");
  int needs_train = a->joined_dictionary ? !a->srcdict && !a->tgtdict
                                         : !a->srcdict || (!a->only_source && !a->tgtdict);
  if (needs_train && a->trainpref == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--trainpref must be set if --srcdict/--tgtdict is not specified");
  return FSQ_OK;
}

/* fairseq refuses to overwrite a dictionary it would build. */
static void dict_path(char *buf, size_t size, const char *destdir, const char *lang) {
  if (lang) snprintf(buf, size, "%s/dict.%s.txt", destdir, lang);
  else snprintf(buf, size, "%s/dict.txt", destdir);
}

static fsq_status refuse_existing(const char *destdir, const char *lang) {
  char path[4096];
  dict_path(path, sizeof path, destdir, lang);
  if (access(path, F_OK) == 0)
    return fsq_error(FSQ_ERR_INVALID, "%s: already exists (fairseq-preprocess does not overwrite dictionaries)", path);
  return FSQ_OK;
}

static fsq_status load_dictionaries(const fsq_preprocess_args *a, fsq_dictionary **src,
                                    fsq_dictionary **tgt) {
  fsq_status st = FSQ_OK;
  const char *langs[2] = {a->source_lang, a->target_lang};
  if (a->joined_dictionary) {
    if (a->srcdict || a->tgtdict) st = fsq_dictionary_load(a->srcdict ? a->srcdict : a->tgtdict, src);
    else st = build_dictionary(a, langs, 2, a->thresholdsrc, a->nwordssrc, src);
    *tgt = NULL; /* shared: the caller uses *src */
    return st;
  }
  if (a->srcdict) st = fsq_dictionary_load(a->srcdict, src);
  else st = build_dictionary(a, langs, 1, a->thresholdsrc, a->nwordssrc, src);
  if (st != FSQ_OK || a->only_source) return st;
  if (a->tgtdict) st = fsq_dictionary_load(a->tgtdict, tgt);
  else st = build_dictionary(a, langs + 1, 1, a->thresholdtgt, a->nwordstgt, tgt);
  return st;
}

static fsq_status make_dirs(const char *path, int *created) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  *created = 0;
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p != '\0') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(buf, 0777) == 0) *created = c == '\0';
    else if (errno != EEXIST) return fsq_error(FSQ_ERR_IO, "%s: %s", buf, strerror(errno));
    *p = c;
    if (c == '\0') break;
  }
  struct stat sb;
  if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return fsq_error(FSQ_ERR_IO, "%s: not a directory", path);
  return FSQ_OK;
}

static fsq_status append_log(const run *r) {
  char path[4096];
  snprintf(path, sizeof path, "%s/preprocess.log", r->a->destdir);
  FILE *f = fopen(path, "ab");
  if (f == NULL) return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  size_t w = fwrite(r->log, 1, r->log_len, f);
  if (fclose(f) != 0 || w != r->log_len) return fsq_error(FSQ_ERR_IO, "%s: write failed", path);
  return FSQ_OK;
}

static fsq_status run_all(run *r, fsq_dictionary *src, fsq_dictionary *tgt) {
  const fsq_preprocess_args *a = r->a;
  char path[4096];
  dict_path(path, sizeof path, a->destdir, a->source_lang);
  const char *p = add_output(r, "%s", path);
  fsq_status st = p ? fsq_dictionary_save(src, p) : nomem();
  if (st == FSQ_OK && !a->only_source) {
    dict_path(path, sizeof path, a->destdir, a->target_lang);
    p = add_output(r, "%s", path);
    st = p ? fsq_dictionary_save(tgt, p) : nomem();
  }
  if (st != FSQ_OK || a->dict_only) return st;
  st = make_all(r, a->source_lang, src);
  if (st == FSQ_OK && !a->only_source) st = make_all(r, a->target_lang, tgt);
  if (st == FSQ_OK) st = logf_(r, "Wrote preprocessed data to %s", a->destdir);
  return st;
}

fsq_status fsq_preprocess_run(const fsq_preprocess_args *a) {
  fsq_status st = check_args(a);
  int created = 0;
  if (st == FSQ_OK) st = make_dirs(a->destdir, &created);
  if (st != FSQ_OK) return st;
  run r = {.a = a};
  if (a->namespace_line) st = logf_(&r, "%s", a->namespace_line);
  if (st == FSQ_OK && !a->srcdict) st = refuse_existing(a->destdir, a->source_lang);
  if (st == FSQ_OK && !a->only_source && !a->tgtdict) st = refuse_existing(a->destdir, a->target_lang);
  fsq_dictionary *src = NULL, *tgt = NULL;
  if (st == FSQ_OK) st = load_dictionaries(a, &src, &tgt);
  if (st == FSQ_OK) st = run_all(&r, src, a->joined_dictionary ? src : tgt);
  if (st == FSQ_OK) st = commit_outputs(&r);
  if (st == FSQ_OK) st = append_log(&r);
  fsq_dictionary_free(src);
  fsq_dictionary_free(tgt);
  free_run(&r, st != FSQ_OK);
  if (st != FSQ_OK && created) rmdir(a->destdir); /* only succeeds when empty */
  return st;
}

void fsq_format_py3(double x, char *buf, size_t size) {
  if (x == 0.0) {
    snprintf(buf, size, "%s", signbit(x) ? "-0.0" : "0.0");
    return;
  }
  char e[64];
  snprintf(e, sizeof e, "%.2e", x); /* rounds to 3 significant digits first */
  int exp = atoi(strchr(e, 'e') + 1);
  /* Python's "no type" format: fixed notation needs a decimal digit too,
   * so it is used only while the number has fewer than 3 integer digits. */
  if (exp >= -4 && exp < 2) {
    snprintf(buf, size, "%.*f", 2 - exp, x);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0') buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.') snprintf(buf + n, size - n, "0");
    return;
  }
  char *ep = strchr(e, 'e');
  size_t m = (size_t)(ep - e);
  while (m > 0 && e[m - 1] == '0') m--;
  if (m > 0 && e[m - 1] == '.') m--;
  snprintf(buf, size, "%.*s%s", (int)m, e, ep);
}
