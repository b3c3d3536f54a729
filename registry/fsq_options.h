/* fsq_options.h: declared command-line options. Programs and components
 * describe their flags in tables; this module turns argv into a json-c object
 * of typed values, fills defaults, and prints --help. Flag names and the
 * resulting keys follow fairseq: `--encoder-layers 6` -> "encoder_layers": 6. */
#ifndef FSQ_OPTIONS_H
#define FSQ_OPTIONS_H

#include <stdio.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

typedef enum fsq_option_type {
  FSQ_OPT_BOOL,   /* --flag sets true (argparse store_true); no value */
  FSQ_OPT_INT,    /* 64-bit integer */
  FSQ_OPT_FLOAT,  /* double */
  FSQ_OPT_STRING, /* any text, e.g. "(0.9,0.98)" parsed by its owner */
  FSQ_OPT_CHOICE  /* one of choices[] */
} fsq_option_type;

typedef struct fsq_option {
  const char *name;           /* flag without dashes: "encoder-layers" */
  fsq_option_type type;
  const char *default_value;  /* text of the default; NULL = none (json null) */
  const char *help;
  const char *const *choices; /* NULL-terminated, FSQ_OPT_CHOICE only */
  const char *short_name;     /* "s" for -s, or NULL */
} fsq_option;

#define FSQ_OPTION_END {NULL, FSQ_OPT_BOOL, NULL, NULL, NULL, NULL}

typedef struct fsq_option_set fsq_option_set;

fsq_option_set *fsq_option_set_new(void);
void fsq_option_set_free(fsq_option_set *set);
/* Adds a table under a group name shown in --help ("model: transformer").
 * The same option may come from two tables (fairseq's task and model both
 * declare --max-source-positions) when its type agrees; the value is shared. */
fsq_status fsq_option_set_add(fsq_option_set *set, const char *group, const fsq_option *table);
const fsq_option *fsq_option_set_find(const fsq_option_set *set, const char *name);

/* Parses argv[1..argc). Accepts --name value, --name=value, -s value, and for
 * bools --name alone. An unknown flag, a missing value, a bad number or a
 * value outside choices is an error naming the flag. *given receives a new
 * object with only the user-given values (typed), *positionals a new array of
 * the non-flag arguments; both owned by the caller. "--help"/"-h" sets
 * "help": true in *given. */
fsq_status fsq_options_parse(const fsq_option_set *set, int argc, char **argv,
                             struct json_object **given, struct json_object **positionals);
/* Like fsq_options_parse, but unknown flags are skipped (with their value
 * when the next word is not a flag): a first pass that only wants to know
 * --arch, --task, --user-dir ... before the component tables are known. */
fsq_status fsq_options_parse_known(const fsq_option_set *set, int argc, char **argv,
                                   struct json_object **given);
/* Converts text to the option's json type (used for defaults and presets). */
fsq_status fsq_option_value(const fsq_option *opt, const char *text, struct json_object **out);
/* Sets every option of the set that cfg lacks to its default (or null). */
fsq_status fsq_options_fill_defaults(const fsq_option_set *set, struct json_object *cfg);
void fsq_options_print_help(const fsq_option_set *set, const char *usage, FILE *out);

/* "encoder-layers" -> "encoder_layers" into buf (size >= strlen + 1). */
void fsq_option_key(const char *name, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_OPTIONS_H */
