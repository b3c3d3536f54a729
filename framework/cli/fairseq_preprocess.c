/* fairseq-preprocess: build dictionaries and binarize text into fairseq's
 * mmap indexed datasets. Parses fairseq's flags and calls
 * fsq_preprocess_run; exits 1 with one line on stderr when that fails. */
#include "data/fsq_data.h"
#include "registry/fsq_options.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const impl_choices[] = {"raw", "lazy", "cached", "mmap", "fasta", "huffman", NULL};

static const fsq_option preprocess_options[] = {
    {"source-lang", FSQ_OPT_STRING, NULL, "source language", NULL, "s"},
    {"target-lang", FSQ_OPT_STRING, NULL, "target language", NULL, "t"},
    {"trainpref", FSQ_OPT_STRING, NULL, "train file prefix (also used to build dictionaries)", NULL, NULL},
    {"validpref", FSQ_OPT_STRING, NULL, "comma separated, valid file prefixes", NULL, NULL},
    {"testpref", FSQ_OPT_STRING, NULL, "comma separated, test file prefixes", NULL, NULL},
    {"destdir", FSQ_OPT_STRING, "data-bin", "destination dir", NULL, NULL},
    {"thresholdtgt", FSQ_OPT_INT, "0", "map words appearing less than threshold times to unknown", NULL, NULL},
    {"thresholdsrc", FSQ_OPT_INT, "0", "map words appearing less than threshold times to unknown", NULL, NULL},
    {"tgtdict", FSQ_OPT_STRING, NULL, "reuse given target dictionary", NULL, NULL},
    {"srcdict", FSQ_OPT_STRING, NULL, "reuse given source dictionary", NULL, NULL},
    {"nwordstgt", FSQ_OPT_INT, "-1", "number of target words to retain", NULL, NULL},
    {"nwordssrc", FSQ_OPT_INT, "-1", "number of source words to retain", NULL, NULL},
    {"dataset-impl", FSQ_OPT_CHOICE, "mmap", "output dataset implementation", impl_choices, NULL},
    {"joined-dictionary", FSQ_OPT_BOOL, NULL, "Generate joined dictionary", NULL, NULL},
    {"only-source", FSQ_OPT_BOOL, NULL, "Only process the source language", NULL, NULL},
    {"padding-factor", FSQ_OPT_INT, "8", "Pad dictionary size to be multiple of N", NULL, NULL},
    {"workers", FSQ_OPT_INT, "1", "number of parallel workers", NULL, NULL},
    {"dict-only", FSQ_OPT_BOOL, NULL, "if true, only builds a dictionary and then exits", NULL, NULL},
    FSQ_OPTION_END};

/* Python's repr of the resolved arguments, as fairseq logs them first. */
static void namespace_line(json_object *cfg, char *buf, size_t size) {
  size_t n = (size_t)snprintf(buf, size, "Namespace(");
  int first = 1;
  for (const fsq_option *o = preprocess_options; o->name != NULL && n < size; o++) {
    char key[64];
    fsq_option_key(o->name, key, sizeof key);
    json_object *v = NULL;
    json_object_object_get_ex(cfg, key, &v);
    const char *sep = first ? "" : ", ";
    first = 0;
    if (v == NULL || json_object_is_type(v, json_type_null))
      n += (size_t)snprintf(buf + n, size - n, "%s%s=None", sep, key);
    else if (json_object_is_type(v, json_type_boolean))
      n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", sep, key,
                            json_object_get_boolean(v) ? "True" : "False");
    else if (json_object_is_type(v, json_type_string))
      n += (size_t)snprintf(buf + n, size - n, "%s%s='%s'", sep, key, json_object_get_string(v));
    else
      n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", sep, key, json_object_to_json_string(v));
  }
  if (n < size) snprintf(buf + n, size - n, ")");
}

static const char *get_str(json_object *cfg, const char *key) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(cfg, key, &v) || !json_object_is_type(v, json_type_string))
    return NULL;
  return json_object_get_string(v);
}

static int64_t get_int(json_object *cfg, const char *key) {
  int64_t v = 0;
  fsq_json_get_int64(cfg, key, &v);
  return v;
}

static int get_bool(json_object *cfg, const char *key) {
  int v = 0;
  json_object *o = NULL;
  if (json_object_object_get_ex(cfg, key, &o) && json_object_is_type(o, json_type_boolean))
    v = json_object_get_boolean(o);
  return v;
}

int main(int argc, char **argv) {
  fsq_option_set *set = fsq_option_set_new();
  json_object *cfg = NULL, *positionals = NULL;
  if (set == NULL || fsq_option_set_add(set, "preprocessing", preprocess_options) != FSQ_OK ||
      fsq_options_parse(set, argc, argv, &cfg, &positionals) != FSQ_OK) {
    fprintf(stderr, "fairseq-preprocess: error: %s\n", fsq_error_message());
    fsq_option_set_free(set);
    return 2;
  }
  int status = 0;
  if (get_bool(cfg, "help")) {
    fsq_options_print_help(set, "fairseq-preprocess -s SRC [-t TGT] --trainpref P [...] --destdir DIR", stdout);
  } else if (json_object_array_length(positionals) > 0) {
    fprintf(stderr, "fairseq-preprocess: error: unrecognized arguments: %s\n",
            json_object_get_string(json_object_array_get_idx(positionals, 0)));
    status = 2;
  } else if (fsq_options_fill_defaults(set, cfg) != FSQ_OK) {
    fprintf(stderr, "fairseq-preprocess: error: %s\n", fsq_error_message());
    status = 2;
  } else {
    static char ns[8192];
    namespace_line(cfg, ns, sizeof ns);
    int64_t workers = get_int(cfg, "workers");
    fsq_preprocess_args a = {
        .source_lang = get_str(cfg, "source_lang"),
        .target_lang = get_str(cfg, "target_lang"),
        .trainpref = get_str(cfg, "trainpref"),
        .validpref = get_str(cfg, "validpref"),
        .testpref = get_str(cfg, "testpref"),
        .destdir = get_str(cfg, "destdir"),
        .srcdict = get_str(cfg, "srcdict"),
        .tgtdict = get_str(cfg, "tgtdict"),
        .joined_dictionary = get_bool(cfg, "joined_dictionary"),
        .only_source = get_bool(cfg, "only_source"),
        .dict_only = get_bool(cfg, "dict_only"),
        .thresholdsrc = get_int(cfg, "thresholdsrc"),
        .thresholdtgt = get_int(cfg, "thresholdtgt"),
        .nwordssrc = get_int(cfg, "nwordssrc"),
        .nwordstgt = get_int(cfg, "nwordstgt"),
        .padding_factor = get_int(cfg, "padding_factor"),
        .workers = workers > 1024 ? 1024 : (int)workers,
        .dataset_impl = get_str(cfg, "dataset_impl"),
        .namespace_line = ns,
    };
    if (fsq_preprocess_run(&a) != FSQ_OK) {
      fprintf(stderr, "fairseq-preprocess: error: %s\n", fsq_error_message());
      status = 1;
    }
  }
  json_object_put(cfg);
  json_object_put(positionals);
  fsq_option_set_free(set);
  return status;
}
