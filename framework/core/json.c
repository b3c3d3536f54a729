/* json.c: json-c helpers that name the key and the source on failure. */
#include "core/fsq_core.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

fsq_status fsq_json_read_file(const char *path, struct json_object **out) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  json_tokener *tok = json_tokener_new();
  json_object *obj = NULL;
  enum json_tokener_error jerr = json_tokener_continue;
  char buf[65536];
  size_t n;
  while (jerr == json_tokener_continue && (n = fread(buf, 1, sizeof buf, f)) > 0) {
    obj = json_tokener_parse_ex(tok, buf, (int)n);
    jerr = json_tokener_get_error(tok);
  }
  int read_error = ferror(f);
  fclose(f);
  json_tokener_free(tok);
  if (read_error) return fsq_error(FSQ_ERR_IO, "%s: read error", path);
  if (jerr != json_tokener_success || obj == NULL) {
    if (obj != NULL) json_object_put(obj);
    return fsq_error(FSQ_ERR_FORMAT, "%s: invalid JSON (%s)", path,
                     jerr == json_tokener_continue ? "unexpected end of file"
                                                   : json_tokener_error_desc(jerr));
  }
  *out = obj;
  return FSQ_OK;
}

fsq_status fsq_json_write_file(const char *path, struct json_object *obj) {
  size_t len = strlen(path);
  char *tmp = malloc(len + 8);
  if (tmp == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", path);
  snprintf(tmp, len + 8, "%s.tmp", path);
  const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY);
  fsq_status st = FSQ_OK;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    st = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, strerror(errno));
    goto done;
  }
  size_t left = strlen(text);
  while (left > 0) {
    ssize_t w = write(fd, text, left);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      st = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, strerror(errno));
      break;
    }
    text += w;
    left -= (size_t)w;
  }
  if (st == FSQ_OK && (write(fd, "\n", 1) != 1 || fsync(fd) != 0))
    st = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, strerror(errno));
  if (close(fd) != 0 && st == FSQ_OK) st = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, strerror(errno));
  if (st == FSQ_OK && rename(tmp, path) != 0)
    st = fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  if (st != FSQ_OK) unlink(tmp);
done:
  free(tmp);
  return st;
}

static fsq_status get_typed(json_object *obj, const char *key, json_type want,
                            json_object **value) {
  if (obj == NULL || !json_object_is_type(obj, json_type_object))
    return fsq_error(FSQ_ERR_FORMAT, "'%s': not inside a JSON object", key);
  if (!json_object_object_get_ex(obj, key, value))
    return fsq_error(FSQ_ERR_NOT_FOUND, "missing key '%s'", key);
  json_type got = json_object_get_type(*value);
  int ok = got == want || (want == json_type_double && got == json_type_int);
  if (!ok)
    return fsq_error(FSQ_ERR_FORMAT, "key '%s' is %s, expected %s", key,
                     json_type_to_name(got), json_type_to_name(want));
  return FSQ_OK;
}

fsq_status fsq_json_get_int64(json_object *obj, const char *key, int64_t *out) {
  json_object *v;
  fsq_status st = get_typed(obj, key, json_type_int, &v);
  if (st == FSQ_OK) *out = json_object_get_int64(v);
  return st;
}

fsq_status fsq_json_get_double(json_object *obj, const char *key, double *out) {
  json_object *v;
  fsq_status st = get_typed(obj, key, json_type_double, &v);
  if (st == FSQ_OK) *out = json_object_get_double(v);
  return st;
}

fsq_status fsq_json_get_bool(json_object *obj, const char *key, int *out) {
  json_object *v;
  fsq_status st = get_typed(obj, key, json_type_boolean, &v);
  if (st == FSQ_OK) *out = json_object_get_boolean(v);
  return st;
}

fsq_status fsq_json_get_string(json_object *obj, const char *key, const char **out) {
  json_object *v;
  fsq_status st = get_typed(obj, key, json_type_string, &v);
  if (st == FSQ_OK) *out = json_object_get_string(v);
  return st;
}

/* Parses "(0.9, 0.98)", "[0.25,0.1]" or "0.25" into out[0..*n). */
static fsq_status parse_double_list(const char *key, const char *text, double *out, size_t cap,
                                    size_t *n) {
  const char *p = text;
  while (*p == ' ' || *p == '(' || *p == '[') p++;
  size_t count = 0;
  while (*p != '\0' && *p != ')' && *p != ']') {
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || count == cap)
      return fsq_error(FSQ_ERR_INVALID, "'%s': cannot read '%s' as a list of at most %zu numbers",
                       key, text, cap);
    out[count++] = v;
    p = end;
    while (*p == ' ') p++;
    if (*p == ',') p++;
    while (*p == ' ') p++;
  }
  if (count == 0) return fsq_error(FSQ_ERR_INVALID, "'%s': empty list '%s'", key, text);
  *n = count;
  return FSQ_OK;
}

fsq_status fsq_json_get_double_list(json_object *obj, const char *key, double *out, size_t cap,
                                    size_t *n) {
  json_object *v;
  if (obj == NULL || !json_object_object_get_ex(obj, key, &v) || v == NULL)
    return fsq_error(FSQ_ERR_NOT_FOUND, "missing key '%s'", key);
  if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) {
    if (cap == 0) return fsq_error(FSQ_ERR_INVALID, "'%s': no room for a value", key);
    out[0] = json_object_get_double(v);
    *n = 1;
    return FSQ_OK;
  }
  if (!json_object_is_type(v, json_type_string))
    return fsq_error(FSQ_ERR_FORMAT, "key '%s' is %s, expected a list of numbers", key,
                     json_type_to_name(json_object_get_type(v)));
  return parse_double_list(key, json_object_get_string(v), out, cap, n);
}
