/* options.c: option tables -> typed json-c values (see fsq_options.h). */
#include "registry/fsq_options.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct option_entry {
  const fsq_option *opt;
  const char *group;
} option_entry;

struct fsq_option_set {
  option_entry *entries;
  size_t count, capacity;
  char **groups; /* owned copies of the group names */
  size_t group_count;
};

fsq_option_set *fsq_option_set_new(void) {
  fsq_option_set *set = calloc(1, sizeof *set);
  if (set == NULL) fsq_error(FSQ_ERR_NOMEM, "options: out of memory");
  return set;
}

void fsq_option_set_free(fsq_option_set *set) {
  if (set == NULL) return;
  for (size_t i = 0; i < set->group_count; i++) free(set->groups[i]);
  free(set->groups);
  free(set->entries);
  free(set);
}

const fsq_option *fsq_option_set_find(const fsq_option_set *set, const char *name) {
  for (size_t i = 0; i < set->count; i++)
    if (strcmp(set->entries[i].opt->name, name) == 0) return set->entries[i].opt;
  return NULL;
}

static const fsq_option *find_short(const fsq_option_set *set, const char *s) {
  for (size_t i = 0; i < set->count; i++) {
    const char *sn = set->entries[i].opt->short_name;
    if (sn != NULL && strcmp(sn, s) == 0) return set->entries[i].opt;
  }
  return NULL;
}

/* Keeps a copy of the group name for as long as the set lives. */
static const char *own_group(fsq_option_set *set, const char *group) {
  char **grown = realloc(set->groups, (set->group_count + 1) * sizeof *grown);
  if (grown == NULL) return NULL;
  set->groups = grown;
  char *copy = strdup(group);
  if (copy != NULL) set->groups[set->group_count++] = copy;
  return copy;
}

fsq_status fsq_option_set_add(fsq_option_set *set, const char *group_name,
                              const fsq_option *table) {
  const char *group = own_group(set, group_name);
  if (group == NULL) return fsq_error(FSQ_ERR_NOMEM, "options: out of memory");
  for (const fsq_option *o = table; o->name != NULL; o++) {
    const fsq_option *prev = fsq_option_set_find(set, o->name);
    if (prev != NULL) {
      if (prev->type != o->type)
        return fsq_error(FSQ_ERR_INVALID, "option --%s of %s conflicts in type with an earlier one",
                         o->name, group);
      continue;
    }
    if (o->type == FSQ_OPT_CHOICE && o->choices == NULL)
      return fsq_error(FSQ_ERR_INVALID, "option --%s of %s: a choice option without choices",
                       o->name, group);
    if (set->count == set->capacity) {
      size_t cap = set->capacity ? set->capacity * 2 : 64;
      option_entry *grown = realloc(set->entries, cap * sizeof *grown);
      if (grown == NULL) return fsq_error(FSQ_ERR_NOMEM, "options: out of memory");
      set->entries = grown;
      set->capacity = cap;
    }
    set->entries[set->count].opt = o;
    set->entries[set->count].group = group;
    set->count++;
  }
  return FSQ_OK;
}

void fsq_option_key(const char *name, char *buf, size_t size) {
  size_t i = 0;
  for (; name[i] != '\0' && i + 1 < size; i++) buf[i] = name[i] == '-' ? '_' : name[i];
  buf[i] = '\0';
}

static fsq_status parse_int(const fsq_option *opt, const char *text, json_object **out) {
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno != 0)
    return fsq_error(FSQ_ERR_INVALID, "argument --%s: invalid int value: '%s'", opt->name, text);
  *out = json_object_new_int64(v);
  return FSQ_OK;
}

static fsq_status parse_float(const fsq_option *opt, const char *text, json_object **out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (*text == '\0' || *end != '\0' || errno == ERANGE || isnan(v))
    return fsq_error(FSQ_ERR_INVALID, "argument --%s: invalid float value: '%s'", opt->name, text);
  *out = json_object_new_double(v);
  return FSQ_OK;
}

static fsq_status parse_choice(const fsq_option *opt, const char *text, json_object **out) {
  for (const char *const *c = opt->choices; *c != NULL; c++) {
    if (strcmp(*c, text) == 0) {
      *out = json_object_new_string(text);
      return FSQ_OK;
    }
  }
  char list[512] = "";
  for (const char *const *c = opt->choices; *c != NULL; c++) {
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s'%s'", len ? ", " : "", *c);
  }
  return fsq_error(FSQ_ERR_INVALID, "argument --%s: invalid choice: '%s' (choose from %s)",
                   opt->name, text, list);
}

static fsq_status parse_bool(const fsq_option *opt, const char *text, json_object **out) {
  if (strcmp(text, "true") == 0 || strcmp(text, "True") == 0 || strcmp(text, "1") == 0)
    *out = json_object_new_boolean(1);
  else if (strcmp(text, "false") == 0 || strcmp(text, "False") == 0 || strcmp(text, "0") == 0)
    *out = json_object_new_boolean(0);
  else
    return fsq_error(FSQ_ERR_INVALID, "argument --%s: invalid bool value: '%s'", opt->name, text);
  return FSQ_OK;
}

fsq_status fsq_option_value(const fsq_option *opt, const char *text, json_object **out) {
  *out = NULL;
  if (text == NULL) return FSQ_OK; /* json null */
  switch (opt->type) {
  case FSQ_OPT_BOOL: return parse_bool(opt, text, out);
  case FSQ_OPT_INT: return parse_int(opt, text, out);
  case FSQ_OPT_FLOAT: return parse_float(opt, text, out);
  case FSQ_OPT_CHOICE: return parse_choice(opt, text, out);
  case FSQ_OPT_STRING: *out = json_object_new_string(text); return FSQ_OK;
  }
  return fsq_error(FSQ_ERR_INTERNAL, "option --%s has an unknown type", opt->name);
}

/* Splits "--name=value" / "--name" / "-s"; returns the option or NULL. */
static const fsq_option *lookup_flag(const fsq_option_set *set, const char *arg, char *name,
                                     size_t size, const char **inline_value) {
  *inline_value = NULL;
  const char *body = arg[1] == '-' ? arg + 2 : arg + 1;
  const char *eq = strchr(body, '=');
  size_t len = eq != NULL ? (size_t)(eq - body) : strlen(body);
  if (len + 1 > size) len = size - 1;
  memcpy(name, body, len);
  name[len] = '\0';
  if (eq != NULL) *inline_value = eq + 1;
  return arg[1] == '-' ? fsq_option_set_find(set, name) : find_short(set, name);
}

static int is_flag(const char *arg) {
  if (arg[0] != '-' || arg[1] == '\0') return 0;
  /* "-1", "-.5": negative numbers are values, as argparse treats them */
  if ((arg[1] >= '0' && arg[1] <= '9') || arg[1] == '.') return 0;
  return 1;
}

static fsq_status parse_args(const fsq_option_set *set, int argc, char **argv, int strict,
                             json_object *given, json_object *positionals) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--") == 0) {
      for (i++; i < argc; i++)
        if (positionals) json_object_array_add(positionals, json_object_new_string(argv[i]));
      break;
    }
    if (!is_flag(arg)) {
      if (positionals) json_object_array_add(positionals, json_object_new_string(arg));
      continue;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      json_object_object_add(given, "help", json_object_new_boolean(1));
      continue;
    }
    char name[128];
    const char *value;
    const fsq_option *opt = lookup_flag(set, arg, name, sizeof name, &value);
    if (opt == NULL) {
      if (strict) return fsq_error(FSQ_ERR_INVALID, "unrecognized arguments: %s", arg);
      if (value == NULL && i + 1 < argc && !is_flag(argv[i + 1])) i++;
      continue;
    }
    if (opt->type != FSQ_OPT_BOOL && value == NULL) {
      if (i + 1 >= argc || (argv[i + 1][0] == '-' && argv[i + 1][1] == '-'))
        return fsq_error(FSQ_ERR_INVALID, "argument --%s: expected one argument", opt->name);
      value = argv[++i];
    }
    json_object *v = NULL;
    fsq_status st = value == NULL ? (v = json_object_new_boolean(1), FSQ_OK)
                                  : fsq_option_value(opt, value, &v);
    if (st != FSQ_OK) return st;
    char key[128];
    fsq_option_key(opt->name, key, sizeof key);
    json_object_object_add(given, key, v);
  }
  return FSQ_OK;
}

fsq_status fsq_options_parse(const fsq_option_set *set, int argc, char **argv,
                             json_object **given, json_object **positionals) {
  json_object *g = json_object_new_object();
  json_object *p = json_object_new_array();
  fsq_status st = parse_args(set, argc, argv, 1, g, p);
  if (st != FSQ_OK) {
    json_object_put(g);
    json_object_put(p);
    return st;
  }
  *given = g;
  if (positionals != NULL) *positionals = p;
  else json_object_put(p);
  return FSQ_OK;
}

fsq_status fsq_options_parse_known(const fsq_option_set *set, int argc, char **argv,
                                   json_object **given) {
  json_object *g = json_object_new_object();
  fsq_status st = parse_args(set, argc, argv, 0, g, NULL);
  if (st != FSQ_OK) {
    json_object_put(g);
    return st;
  }
  *given = g;
  return FSQ_OK;
}

fsq_status fsq_options_fill_defaults(const fsq_option_set *set, json_object *cfg) {
  for (size_t i = 0; i < set->count; i++) {
    const fsq_option *opt = set->entries[i].opt;
    char key[128];
    fsq_option_key(opt->name, key, sizeof key);
    if (json_object_object_get_ex(cfg, key, NULL)) continue;
    json_object *v = NULL;
    const char *def = opt->default_value;
    if (opt->type == FSQ_OPT_BOOL && def == NULL) def = "false";
    fsq_status st = fsq_option_value(opt, def, &v);
    if (st != FSQ_OK)
      return fsq_error_wrap(FSQ_ERR_INTERNAL, "default of --%s (%s)", opt->name,
                            set->entries[i].group);
    json_object_object_add(cfg, key, v);
  }
  return FSQ_OK;
}

static const char *type_metavar(const fsq_option *opt) {
  switch (opt->type) {
  case FSQ_OPT_INT: return "N";
  case FSQ_OPT_FLOAT: return "X";
  case FSQ_OPT_STRING: return "STR";
  default: return "";
  }
}

void fsq_options_print_help(const fsq_option_set *set, const char *usage, FILE *out) {
  fprintf(out, "usage: %s\n", usage);
  const char *group = NULL;
  for (size_t i = 0; i < set->count; i++) {
    const option_entry *e = &set->entries[i];
    if (group == NULL || strcmp(group, e->group) != 0) {
      group = e->group;
      fprintf(out, "\n%s:\n", group);
    }
    char flag[160];
    if (e->opt->type == FSQ_OPT_CHOICE) {
      size_t len = (size_t)snprintf(flag, sizeof flag, "--%s {", e->opt->name);
      for (const char *const *c = e->opt->choices; *c != NULL && len < sizeof flag; c++)
        len += (size_t)snprintf(flag + len, sizeof flag - len, "%s%s", *c, c[1] ? "," : "}");
    } else if (e->opt->type == FSQ_OPT_BOOL) {
      snprintf(flag, sizeof flag, "--%s", e->opt->name);
    } else {
      snprintf(flag, sizeof flag, "--%s %s", e->opt->name, type_metavar(e->opt));
    }
    if (e->opt->short_name != NULL) fprintf(out, "  -%s, %s\n", e->opt->short_name, flag);
    else fprintf(out, "  %s\n", flag);
    fprintf(out, "        %s", e->opt->help != NULL ? e->opt->help : "");
    if (e->opt->default_value != NULL) fprintf(out, " (default: %s)", e->opt->default_value);
    fputc('\n', out);
  }
}
