/* translation: fairseq's TranslationTask (fairseq/tasks/translation.py):
 * a source and a target dictionary from the data directory, and language
 * pair datasets per split. This file reads the options, finds the language
 * pair and loads the dictionaries; splits.c does the data. */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry/fsq_component.h"
#include "translation.h"

static void destroy(fsq_task *t) {
  if (t == NULL) return;
  translation_splits_free(t);
  fsq_dictionary_free(t->src_dict);
  fsq_dictionary_free(t->tgt_dict);
  fsq_arena_destroy(t->arena);
  free(t->data);
  free(t->src_lang);
  free(t->tgt_lang);
  free(t);
}

/* fairseq parses --left-pad-source as text through eval_bool ("True",
 * "False"); a resolved config may also hold a json bool. */
static fsq_status get_bool_text(json_object *cfg, const char *key, int *out) {
  json_object *v;
  if (!json_object_object_get_ex(cfg, key, &v))
    return fsq_error(FSQ_ERR_NOT_FOUND, "translation: missing option '%s'", key);
  if (json_object_is_type(v, json_type_boolean)) {
    *out = json_object_get_boolean(v);
    return FSQ_OK;
  }
  const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
  if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "1")) *out = 1;
  else if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "0")) *out = 0;
  else
    return fsq_error(FSQ_ERR_INVALID, "translation: --%s wants True or False, not '%s'", key,
                     json_object_get_string(v));
  return FSQ_OK;
}

/* A string option that may be null (not given): *out NULL then. */
static fsq_status get_optional_string(json_object *cfg, const char *key, const char **out) {
  json_object *v;
  *out = NULL;
  if (!json_object_object_get_ex(cfg, key, &v) || v == NULL) return FSQ_OK;
  return fsq_json_get_string(cfg, key, out);
}

static fsq_status read_options(json_object *cfg, fsq_task *t) {
  int64_t upsample = 1;
  fsq_status st = get_bool_text(cfg, "left_pad_source", &t->left_pad_source);
  if (st == FSQ_OK) st = get_bool_text(cfg, "left_pad_target", &t->left_pad_target);
  if (st == FSQ_OK) st = fsq_json_get_int64(cfg, "max_source_positions", &t->max_source_positions);
  if (st == FSQ_OK) st = fsq_json_get_int64(cfg, "max_target_positions", &t->max_target_positions);
  if (st == FSQ_OK) st = fsq_json_get_int64(cfg, "upsample_primary", &upsample);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation");
  if (upsample != 1)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "translation: --upsample-primary %lld is not supported (only 1: the task "
                     "reads one dataset per split)", (long long)upsample);
  return FSQ_OK;
}

/* The data directory: one directory (fairseq's colon-separated shards are
 * refused), which must exist. */
static fsq_status read_data_dir(json_object *cfg, fsq_task *t) {
  const char *data = NULL;
  if (get_optional_string(cfg, "data", &data) != FSQ_OK || data == NULL || data[0] == '\0')
    return fsq_error(FSQ_ERR_INVALID, "translation: no data directory given");
  if (strchr(data, ':') != NULL)
    return fsq_error(FSQ_ERR_UNSUPPORTED,
                     "translation: several data directories ('%s') are not supported; give one",
                     data);
  struct stat sb;
  if (stat(data, &sb) != 0)
    return fsq_error(errno == ENOENT ? FSQ_ERR_NOT_FOUND : FSQ_ERR_IO,
                     "translation: data directory %s: %s", data, strerror(errno));
  if (!S_ISDIR(sb.st_mode))
    return fsq_error(FSQ_ERR_INVALID, "translation: data %s is not a directory", data);
  t->data = strdup(data);
  return t->data ? FSQ_OK : fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
}

/* fairseq's infer_language_pair: a file <split>.<a>-<b>.<...> names the
 * pair (a, b). *a and *b (malloc'd) are set when the name has that form. */
static int pair_of_filename(const char *name, char **a, char **b) {
  const char *dot1 = strchr(name, '.');
  if (dot1 == NULL) return 0;
  const char *lang = dot1 + 1, *dot2 = strchr(lang, '.');
  if (dot2 == NULL) return 0;
  const char *dash = memchr(lang, '-', (size_t)(dot2 - lang));
  if (dash == NULL || dash == lang || dash + 1 == dot2 ||
      memchr(dash + 1, '-', (size_t)(dot2 - dash - 1)) != NULL)
    return 0;
  *a = strndup(lang, (size_t)(dash - lang));
  *b = strndup(dash + 1, (size_t)(dot2 - dash - 1));
  return 1;
}

/* Orients a file's pair for the languages the user gave (NULL: not given):
 * 1 with *src, *tgt set when the pair fits them, else 0. */
static int orient_pair(const char *a, const char *b, const char *want_src, const char *want_tgt,
                       const char **src, const char **tgt) {
  for (int flip = 0; flip < 2; flip++) {
    const char *s = flip ? b : a, *d = flip ? a : b;
    if ((want_src && strcmp(s, want_src)) || (want_tgt && strcmp(d, want_tgt))) continue;
    if (!want_src && !want_tgt && flip) continue; /* nothing given: the file's order */
    *src = s;
    *tgt = d;
    return 1;
  }
  return 0;
}

/* Fills the languages the user left out from the file names of the data
 * directory; more than one possible pair is an error (fairseq would take
 * whichever file the directory listed first). */
static fsq_status infer_languages(fsq_task *t) {
  DIR *dir = opendir(t->data);
  if (dir == NULL) return fsq_error(FSQ_ERR_IO, "translation: %s: %s", t->data, strerror(errno));
  char *found_src = NULL, *found_tgt = NULL;
  fsq_status st = FSQ_OK;
  struct dirent *e;
  while (st == FSQ_OK && (e = readdir(dir)) != NULL) {
    char *a = NULL, *b = NULL;
    const char *src, *tgt;
    if (!pair_of_filename(e->d_name, &a, &b)) continue;
    if (a == NULL || b == NULL) st = fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
    else if (orient_pair(a, b, t->src_lang, t->tgt_lang, &src, &tgt)) {
      if (found_src == NULL) {
        found_src = strdup(src);
        found_tgt = strdup(tgt);
      } else if (strcmp(found_src, src) || strcmp(found_tgt, tgt)) {
        st = fsq_error(FSQ_ERR_INVALID,
                       "translation: cannot infer the language pair of %s: both %s-%s and %s-%s "
                       "are there; give -s/--source-lang and -t/--target-lang",
                       t->data, found_src, found_tgt, src, tgt);
      }
    }
    free(a);
    free(b);
  }
  closedir(dir);
  if (st == FSQ_OK && found_src == NULL)
    st = fsq_error(FSQ_ERR_NOT_FOUND,
                   "translation: could not infer the language pair from %s (no <split>.<src>-<tgt>.* "
                   "files), please provide it explicitly with -s and -t", t->data);
  if (st == FSQ_OK && t->src_lang == NULL) t->src_lang = found_src, found_src = NULL;
  if (st == FSQ_OK && t->tgt_lang == NULL) t->tgt_lang = found_tgt, found_tgt = NULL;
  free(found_src);
  free(found_tgt);
  return st;
}

static fsq_status read_languages(json_object *cfg, fsq_task *t) {
  const char *src = NULL, *tgt = NULL;
  fsq_status st = get_optional_string(cfg, "source_lang", &src);
  if (st == FSQ_OK) st = get_optional_string(cfg, "target_lang", &tgt);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation");
  if ((src && !(t->src_lang = strdup(src))) || (tgt && !(t->tgt_lang = strdup(tgt))))
    return fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  if (src == NULL || tgt == NULL) return infer_languages(t);
  return FSQ_OK;
}

static fsq_status load_dictionary(const fsq_task *t, const char *lang, fsq_dictionary **out) {
  size_t len = strlen(t->data) + strlen(lang) + 16;
  char *path = malloc(len);
  if (path == NULL) return fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  snprintf(path, len, "%s/dict.%s.txt", t->data, lang);
  fsq_status st = fsq_dictionary_load(path, out);
  free(path);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation: [%s] dictionary", lang);
  return FSQ_OK;
}

static fsq_status create(json_object *cfg, fsq_task **out) {
  *out = NULL;
  fsq_task *t = calloc(1, sizeof *t);
  if (t == NULL) return fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  fsq_status st = read_options(cfg, t);
  if (st == FSQ_OK) st = read_data_dir(cfg, t);
  if (st == FSQ_OK) st = read_languages(cfg, t);
  if (st == FSQ_OK) st = load_dictionary(t, t->src_lang, &t->src_dict);
  if (st == FSQ_OK) st = load_dictionary(t, t->tgt_lang, &t->tgt_dict);
  if (st == FSQ_OK && (t->arena = fsq_arena_create(1 << 20)) == NULL)
    st = fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  if (st != FSQ_OK) {
    destroy(t);
    return st;
  }
  /* fairseq asserts that pad, eos and unk agree; fsq_dictionary fixes the
     four specials at 0..3 in every dictionary, so they always do. */
  fsq_log_info(TRANSLATION_LOGGER, "[%s] dictionary: %zu types", t->src_lang,
               fsq_dictionary_size(t->src_dict));
  fsq_log_info(TRANSLATION_LOGGER, "[%s] dictionary: %zu types", t->tgt_lang,
               fsq_dictionary_size(t->tgt_dict));
  *out = t;
  return FSQ_OK;
}

static const fsq_dictionary *source_dictionary(const fsq_task *t) { return t->src_dict; }
static const fsq_dictionary *target_dictionary(const fsq_task *t) { return t->tgt_dict; }

static const fsq_task_ops ops = {
    .create = create,
    .destroy = destroy,
    .source_dictionary = source_dictionary,
    .target_dictionary = target_dictionary,
    .get_batch_iterator = translation_get_batch_iterator,
    .dataset_size = translation_dataset_size,
    .collate = translation_collate,
};

static const fsq_option options[] = {
    {"source-lang", FSQ_OPT_STRING, NULL, "source language", NULL, "s"},
    {"target-lang", FSQ_OPT_STRING, NULL, "target language", NULL, "t"},
    {"left-pad-source", FSQ_OPT_STRING, "True", "pad the source on the left (True/False)", NULL,
     NULL},
    {"left-pad-target", FSQ_OPT_STRING, "False", "pad the target on the left (True/False)", NULL,
     NULL},
    {"max-source-positions", FSQ_OPT_INT, "1024", "max number of tokens in the source sequence",
     NULL, NULL},
    {"max-target-positions", FSQ_OPT_INT, "1024", "max number of tokens in the target sequence",
     NULL, NULL},
    {"upsample-primary", FSQ_OPT_INT, "1", "amount to upsample primary dataset (only 1)", NULL,
     NULL},
    FSQ_OPTION_END};

static const fsq_component descriptor = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_TASK,
    .name = "translation",
    .version = FSQ_COMPONENT_VERSION,
    .description = "translate from one (source) language to another (target) language",
    .options = options,
    .ops_version = FSQ_TASK_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &descriptor; }
