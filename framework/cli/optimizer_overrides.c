/* optimizer_overrides.c: fairseq applies --optimizer-overrides to the
 * param groups it loads from a checkpoint. Here the optimizer's
 * hyperparameters always come from the configuration, so an override is the
 * configuration key behind the param-group key. */
#include "cli/optimizer_overrides.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Python literal as JSON: quotes, tuples and booleans. */
static char *python_to_json(const char *text) {
  char *out = malloc(strlen(text) + 1), *o = out;
  if (out == NULL) return NULL;
  for (const char *p = text; *p; p++) {
    if (*p == '\'') *o++ = '"';
    else if (*p == '(') *o++ = '[';
    else if (*p == ')') *o++ = ']';
    else *o++ = *p;
  }
  *o = '\0';
  return out;
}

/* "(0.9, 0.98)" from [0.9, 0.98], as fairseq's --adam-betas is written. */
static json_object *tuple_string(json_object *list) {
  char buf[256] = "(";
  size_t n = json_object_array_length(list), len = 1;
  for (size_t i = 0; i < n && len < sizeof buf; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%.17g", i ? ", " : "",
                            json_object_get_double(json_object_array_get_idx(list, i)));
  if (len < sizeof buf) snprintf(buf + len, sizeof buf - len, ")");
  return json_object_new_string(buf);
}

static int is_number(json_object *v) {
  return json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int);
}

static fsq_status apply_one(json_object *cfg, const char *optimizer, const char *key,
                            json_object *value) {
  char prefixed[128];
  snprintf(prefixed, sizeof prefixed, "%s_%s", optimizer, key);
  const char *target = json_object_object_get_ex(cfg, prefixed, NULL) ? prefixed
                       : json_object_object_get_ex(cfg, key, NULL)    ? key
                                                                      : NULL;
  if (target == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--optimizer-overrides: %s has no parameter '%s'",
                     optimizer, key);
  json_object *old = json_object_object_get(cfg, target);
  json_object *v = NULL;
  if (json_object_is_type(value, json_type_array)) {
    for (size_t i = 0; i < json_object_array_length(value); i++)
      if (!is_number(json_object_array_get_idx(value, i)))
        return fsq_error(FSQ_ERR_INVALID, "--optimizer-overrides: '%s' must be numbers", key);
    v = tuple_string(value);
  } else if (is_number(value)) {
    /* keep the option's type: --lr is kept as its text (a list in fairseq) */
    if (old != NULL && json_object_is_type(old, json_type_string)) {
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", json_object_get_double(value));
      v = json_object_new_string(buf);
    } else {
      v = json_object_new_double(json_object_get_double(value));
    }
  } else {
    return fsq_error(FSQ_ERR_INVALID, "--optimizer-overrides: '%s' must be a number", key);
  }
  if (v == NULL) return fsq_error(FSQ_ERR_NOMEM, "--optimizer-overrides: out of memory");
  json_object_object_add(cfg, target, v);
  return FSQ_OK;
}

fsq_status fsq_apply_optimizer_overrides(json_object *cfg, const char *optimizer,
                                         const char *text) {
  char *js = python_to_json(text);
  if (js == NULL) return fsq_error(FSQ_ERR_NOMEM, "--optimizer-overrides: out of memory");
  json_object *dict = json_tokener_parse(js);
  free(js);
  if (dict == NULL || !json_object_is_type(dict, json_type_object)) {
    json_object_put(dict);
    return fsq_error(FSQ_ERR_INVALID, "--optimizer-overrides '%s': not a dict literal", text);
  }
  fsq_status st = FSQ_OK;
  json_object_object_foreach(dict, key, value) {
    if (st == FSQ_OK) st = apply_one(cfg, optimizer, key, value);
  }
  json_object_put(dict);
  return st;
}
