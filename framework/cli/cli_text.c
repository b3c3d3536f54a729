/* cli_text.c: see cli_text.h. */
#include "cli/cli_text.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fsq_status append(fsq_text *t, const char *s, size_t n) {
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 64;
    while (cap < t->len + n + 1) cap *= 2;
    char *p = realloc(t->data, cap);
    if (p == NULL) return fsq_error(FSQ_ERR_NOMEM, "out of memory");
    t->data = p;
    t->cap = cap;
  }
  memcpy(t->data + t->len, s, n);
  t->len += n;
  t->data[t->len] = '\0';
  return FSQ_OK;
}

fsq_status fsq_cli_dict_string(const fsq_dictionary *d, const int64_t *tokens, int64_t n,
                               int escape_unk, const char *post_process, fsq_text *out,
                               fsq_text *tmp) {
  tmp->len = 0;
  fsq_status s = append(tmp, "", 0);
  int first = 1;
  size_t size = d != NULL ? fsq_dictionary_size(d) : 0;
  for (int64_t i = 0; i < n && s == FSQ_OK; i++) {
    int64_t t = tokens[i];
    if (t == FSQ_DICT_PAD || t == FSQ_DICT_EOS || t == FSQ_DICT_BOS) continue;
    const char *w;
    size_t len;
    if (t == FSQ_DICT_UNK) {
      w = escape_unk ? "<<unk>>" : "<unk>";
      len = strlen(w);
    } else if (t < 0 || (size_t)t >= size) {
      return fsq_error(FSQ_ERR_INTERNAL, "token %lld outside the dictionary of %zu", (long long)t, size);
    } else {
      w = fsq_dictionary_symbol(d, (size_t)t, &len);
    }
    if (!first) s = append(tmp, " ", 1);
    if (s == FSQ_OK) s = append(tmp, w, len);
    first = 0;
  }
  if (s != FSQ_OK) return s;
  return fsq_post_process(tmp->data, tmp->len, post_process, out);
}

void fsq_cli_py_float_repr(double x, char *buf, size_t size) {
  if (isnan(x)) {
    snprintf(buf, size, "nan");
    return;
  }
  if (isinf(x)) {
    snprintf(buf, size, x < 0 ? "-inf" : "inf");
    return;
  }
  if (x == 0) {
    snprintf(buf, size, signbit(x) ? "-0.0" : "0.0");
    return;
  }
  char e[64];
  int p;
  for (p = 1; p <= 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, x);
    if (strtod(e, NULL) == x) break;
  }
  /* e = [-]d[.ddd]e[+-]XX */
  const char *q = e;
  int neg = *q == '-';
  if (neg) q++;
  char digits[32];
  int nd = 0;
  for (; *q && *q != 'e'; q++)
    if (*q != '.') digits[nd++] = *q;
  int exp10 = atoi(q + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = '\0';
  int decpt = exp10 + 1; /* value = 0.digits * 10^decpt */
  char out[64];
  size_t o = 0;
  if (neg) out[o++] = '-';
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out[o++] = '0';
      out[o++] = '.';
      for (int i = 0; i < -decpt; i++) out[o++] = '0';
      for (int i = 0; i < nd; i++) out[o++] = digits[i];
    } else {
      for (int i = 0; i < decpt; i++) out[o++] = i < nd ? digits[i] : '0';
      out[o++] = '.';
      if (nd > decpt)
        for (int i = decpt; i < nd; i++) out[o++] = digits[i];
      else
        out[o++] = '0';
    }
    out[o] = '\0';
  } else {
    out[o++] = digits[0];
    if (nd > 1) {
      out[o++] = '.';
      for (int i = 1; i < nd; i++) out[o++] = digits[i];
    }
    out[o] = '\0';
    char ex[16];
    snprintf(ex, sizeof ex, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    strcat(out, ex);
  }
  snprintf(buf, size, "%s", out);
}

json_object *fsq_cli_task_overrides(const fsq_config *c, int argc, char **argv) {
  json_object *given = NULL, *pos = NULL, *over = json_object_new_object();
  const fsq_registry_entry *task = c->chosen[FSQ_KIND_TASK];
  if (fsq_options_parse(c->options, argc, argv, &given, &pos) == FSQ_OK && task != NULL &&
      task->component->options != NULL) {
    for (const fsq_option *o = task->component->options; o->name != NULL; o++) {
      char key[128];
      json_object *v;
      fsq_option_key(o->name, key, sizeof key);
      if (json_object_object_get_ex(given, key, &v)) json_object_object_add(over, key, json_object_get(v));
    }
  }
  json_object_put(given);
  json_object_put(pos);
  return over;
}
