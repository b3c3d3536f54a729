/* state.c: the in-memory checkpoint (meta json + tensor records) and the
 * edits upgrade steps make to it. */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/ckpt_internal.h"
#include "config.h"

fsq_state *fsq_ckpt_state_bare(void) {
  fsq_state *st = calloc(1, sizeof *st);
  if (st == NULL) fsq_error(FSQ_ERR_NOMEM, "checkpoint state: out of memory");
  return st;
}

fsq_state *fsq_state_new(void) {
  fsq_state *st = fsq_ckpt_state_bare();
  if (st == NULL) return NULL;
  json_object *m = json_object_new_object();
  st->meta = m;
  if (m == NULL) {
    free(st);
    fsq_error(FSQ_ERR_NOMEM, "checkpoint state: out of memory");
    return NULL;
  }
  json_object_object_add(m, "format", json_object_new_string(FSQ_CHECKPOINT_FORMAT_NAME));
  json_object_object_add(m, "format_version", json_object_new_int64(FSQ_CHECKPOINT_FORMAT));
  json_object_object_add(m, "framework_version", json_object_new_string(FSQ_VERSION_STRING));
  json_object_object_add(m, "components", json_object_new_object());
  json_object_object_add(m, "cfg", json_object_new_object());
  json_object_object_add(m, "optimizer_history", json_object_new_array());
  json_object_object_add(m, "task_state", json_object_new_object());
  json_object_object_add(m, "extra_state", json_object_new_object());
  return st;
}

static void record_free(fsq_ckpt_tensor *t) {
  if (t == NULL) return;
  if (t->owned) free(t->data);
  free(t->name);
  free(t);
}

void fsq_state_free(fsq_state *st) {
  if (st == NULL) return;
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) {
    for (size_t i = 0; i < st->count[g]; i++) record_free(st->rec[g][i]);
    free(st->rec[g]);
  }
  json_object_put(st->meta);
  free(st);
}

struct json_object *fsq_state_meta(fsq_state *st) { return st->meta; }

int64_t fsq_state_format_version(const fsq_state *st) {
  json_object *v = NULL;
  return json_object_object_get_ex(st->meta, "format_version", &v) ? json_object_get_int64(v)
                                                                    : -1;
}

/* The object under key, created when missing or not an object. */
static json_object *child_object(json_object *parent, const char *key) {
  json_object *v = NULL;
  if (json_object_object_get_ex(parent, key, &v) && json_object_is_type(v, json_type_object))
    return v;
  v = json_object_new_object();
  if (v != NULL) json_object_object_add(parent, key, v);
  return v;
}

fsq_status fsq_state_set_component(fsq_state *st, const char *kind, const char *name,
                                   const char *version) {
  json_object *comps = child_object(st->meta, "components");
  json_object *c = json_object_new_object();
  if (comps == NULL || c == NULL) return fsq_error(FSQ_ERR_NOMEM, "checkpoint state: out of memory");
  json_object_object_add(c, "name", json_object_new_string(name));
  json_object_object_add(c, "version", json_object_new_string(version));
  json_object_object_add(comps, kind, c);
  return FSQ_OK;
}

fsq_status fsq_state_get_component(fsq_state *st, const char *kind, const char **name,
                                   const char **version) {
  json_object *comps = NULL, *c = NULL, *v = NULL;
  *name = *version = NULL;
  if (!json_object_object_get_ex(st->meta, "components", &comps) ||
      !json_object_is_type(comps, json_type_object) ||
      !json_object_object_get_ex(comps, kind, &c))
    return FSQ_OK;
  if (!json_object_object_get_ex(c, "name", &v) || !json_object_is_type(v, json_type_string))
    return fsq_error(FSQ_ERR_FORMAT, "meta.json: components.%s has no name", kind);
  *name = json_object_get_string(v);
  if (!json_object_object_get_ex(c, "version", &v) || !json_object_is_type(v, json_type_string))
    return fsq_error(FSQ_ERR_FORMAT, "meta.json: components.%s has no version", kind);
  *version = json_object_get_string(v);
  return FSQ_OK;
}

fsq_status fsq_state_set_config(fsq_state *st, struct json_object *cfg) {
  json_object *copy = NULL;
  if (json_object_deep_copy(cfg, &copy, NULL) != 0)
    return fsq_error(FSQ_ERR_NOMEM, "checkpoint state: cannot copy the configuration");
  json_object_object_add(st->meta, "cfg", copy);
  json_object *comps = NULL;
  if (!json_object_object_get_ex(copy, "_components", &comps)) return FSQ_OK;
  json_object_object_foreach(comps, kind, c) {
    const char *name = NULL, *version = NULL;
    if (fsq_json_get_string(c, "name", &name) != FSQ_OK ||
        fsq_json_get_string(c, "version", &version) != FSQ_OK)
      return fsq_error_wrap(FSQ_ERR_INVALID, "configuration _components.%s", kind);
    fsq_status s = fsq_state_set_component(st, kind, name, version);
    if (s != FSQ_OK) return s;
  }
  return FSQ_OK;
}

/* optimizer_history's last entry, added when the history is empty. */
static json_object *last_history(fsq_state *st, int create) {
  json_object *h = NULL;
  if (!json_object_object_get_ex(st->meta, "optimizer_history", &h) ||
      !json_object_is_type(h, json_type_array)) {
    if (!create) return NULL;
    h = json_object_new_array();
    json_object_object_add(st->meta, "optimizer_history", h);
  }
  size_t n = json_object_array_length(h);
  if (n > 0) return json_object_array_get_idx(h, n - 1);
  if (!create) return NULL;
  json_object *e = json_object_new_object();
  json_object_array_add(h, e);
  return e;
}

fsq_status fsq_state_set_progress(fsq_state *st, int64_t epoch, int64_t iterations_in_epoch,
                                  int64_t num_updates) {
  json_object *extra = child_object(st->meta, "extra_state");
  json_object *it = extra ? child_object(extra, "train_iterator") : NULL;
  json_object *hist = last_history(st, 1);
  if (it == NULL || hist == NULL) return fsq_error(FSQ_ERR_NOMEM, "checkpoint state: out of memory");
  json_object_object_add(it, "epoch", json_object_new_int64(epoch));
  json_object_object_add(it, "iterations_in_epoch", json_object_new_int64(iterations_in_epoch));
  json_object_object_add(hist, "num_updates", json_object_new_int64(num_updates));
  return FSQ_OK;
}

fsq_status fsq_state_get_progress(fsq_state *st, int64_t *epoch, int64_t *iterations_in_epoch,
                                  int64_t *num_updates) {
  json_object *extra = NULL, *it = NULL, *hist = last_history(st, 0);
  if (!json_object_object_get_ex(st->meta, "extra_state", &extra) ||
      !json_object_object_get_ex(extra, "train_iterator", &it))
    return fsq_error(FSQ_ERR_NOT_FOUND, "meta.json: no extra_state.train_iterator");
  if (hist == NULL) return fsq_error(FSQ_ERR_NOT_FOUND, "meta.json: empty optimizer_history");
  fsq_status s = fsq_json_get_int64(it, "epoch", epoch);
  if (s == FSQ_OK) s = fsq_json_get_int64(it, "iterations_in_epoch", iterations_in_epoch);
  if (s == FSQ_OK) s = fsq_json_get_int64(hist, "num_updates", num_updates);
  return s == FSQ_OK ? s : fsq_error_wrap(s, "meta.json");
}

/* ---- records ---------------------------------------------------------------- */

size_t fsq_state_count(const fsq_state *st, fsq_ckpt_group group) {
  return (unsigned)group < FSQ_CKPT_GROUP_COUNT ? st->count[group] : 0;
}

fsq_ckpt_tensor *fsq_state_at(const fsq_state *st, fsq_ckpt_group group, size_t i) {
  return i < fsq_state_count(st, group) ? st->rec[group][i] : NULL;
}

static ssize_t index_of(const fsq_state *st, fsq_ckpt_group group, const char *name) {
  for (size_t i = 0; i < fsq_state_count(st, group); i++)
    if (strcmp(st->rec[group][i]->name, name) == 0) return (ssize_t)i;
  return -1;
}

fsq_ckpt_tensor *fsq_state_find(const fsq_state *st, fsq_ckpt_group group, const char *name) {
  ssize_t i = index_of(st, group, name);
  return i < 0 ? NULL : st->rec[group][i];
}

/* Names become tar members "<group>/<name>": keep them printable paths. */
fsq_status fsq_ckpt_check_name(fsq_ckpt_group group, const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > 100)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor name '%s': length must be 1..100",
                     fsq_ckpt_group_name(group), name);
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] <= ' ' || name[i] == '\\' || (unsigned char)name[i] >= 127)
      return fsq_error(FSQ_ERR_INVALID, "%s tensor name '%s': only printable ASCII, no spaces",
                       fsq_ckpt_group_name(group), name);
  if (name[0] == '/' || strstr(name, "..") != NULL || strstr(name, "//") != NULL)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor name '%s': not a relative path",
                     fsq_ckpt_group_name(group), name);
  return FSQ_OK;
}

fsq_ckpt_tensor *fsq_ckpt_append(fsq_state *st, fsq_ckpt_group group, const char *name) {
  if (st->count[group] == st->cap[group]) {
    size_t cap = st->cap[group] ? 2 * st->cap[group] : 16;
    fsq_ckpt_tensor **r = realloc(st->rec[group], cap * sizeof *r);
    if (r == NULL) goto nomem;
    st->rec[group] = r;
    st->cap[group] = cap;
  }
  fsq_ckpt_tensor *t = calloc(1, sizeof *t);
  if (t == NULL || (t->name = strdup(name)) == NULL) {
    free(t);
    goto nomem;
  }
  st->rec[group][st->count[group]++] = t;
  return t;
nomem:
  fsq_error(FSQ_ERR_NOMEM, "checkpoint state: out of memory adding '%s'", name);
  return NULL;
}

fsq_status fsq_state_add(fsq_state *st, fsq_ckpt_group group, const char *name,
                         fsq_ckpt_dtype dtype, int ndim, const int64_t *shape, void *data,
                         size_t nbytes, fsq_ckpt_ownership ownership) {
  if ((unsigned)group >= FSQ_CKPT_GROUP_COUNT)
    return fsq_error(FSQ_ERR_INVALID, "checkpoint state: unknown group %d", (int)group);
  fsq_status s = fsq_ckpt_check_name(group, name);
  if (s != FSQ_OK) return s;
  if (index_of(st, group, name) >= 0)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor '%s' already exists", fsq_ckpt_group_name(group),
                     name);
  size_t want = 0;
  if ((s = fsq_ckpt_shape_bytes(name, dtype, ndim, shape, &want)) != FSQ_OK) return s;
  if (want != nbytes)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor '%s': %zu bytes given, shape and dtype need %zu",
                     fsq_ckpt_group_name(group), name, nbytes, want);
  if (nbytes > 0 && data == NULL)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor '%s': no data", fsq_ckpt_group_name(group), name);
  void *copy = NULL;
  if (ownership == FSQ_CKPT_COPY) {
    copy = malloc(nbytes ? nbytes : 1);
    if (copy == NULL) return fsq_error(FSQ_ERR_NOMEM, "tensor '%s': out of memory", name);
    if (nbytes) memcpy(copy, data, nbytes);
  }
  fsq_ckpt_tensor *t = fsq_ckpt_append(st, group, name);
  if (t == NULL) {
    free(copy);
    return fsq_error_code();
  }
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->nbytes = nbytes;
  t->data = ownership == FSQ_CKPT_COPY ? copy : data;
  t->owned = ownership != FSQ_CKPT_BORROW;
  return FSQ_OK;
}

fsq_status fsq_state_remove(fsq_state *st, fsq_ckpt_group group, const char *name) {
  ssize_t i = index_of(st, group, name);
  if (i < 0)
    return fsq_error(FSQ_ERR_NOT_FOUND, "%s tensor '%s' not found", fsq_ckpt_group_name(group),
                     name);
  record_free(st->rec[group][i]);
  memmove(&st->rec[group][i], &st->rec[group][i + 1],
          (st->count[group] - (size_t)i - 1) * sizeof st->rec[group][0]);
  st->count[group]--;
  return FSQ_OK;
}

fsq_status fsq_state_rename(fsq_state *st, fsq_ckpt_group group, const char *from,
                            const char *to) {
  fsq_ckpt_tensor *t = fsq_state_find(st, group, from);
  if (t == NULL)
    return fsq_error(FSQ_ERR_NOT_FOUND, "%s tensor '%s' not found", fsq_ckpt_group_name(group),
                     from);
  fsq_status s = fsq_ckpt_check_name(group, to);
  if (s != FSQ_OK) return s;
  if (strcmp(from, to) != 0 && fsq_state_find(st, group, to) != NULL)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor '%s' already exists", fsq_ckpt_group_name(group),
                     to);
  char *name = strdup(to);
  if (name == NULL) return fsq_error(FSQ_ERR_NOMEM, "tensor '%s': out of memory", to);
  free(t->name);
  t->name = name;
  return FSQ_OK;
}

fsq_status fsq_state_rename_param(fsq_state *st, const char *from, const char *to) {
  fsq_status s = fsq_state_rename(st, FSQ_CKPT_MODEL, from, to);
  size_t n = strlen(from);
  for (size_t i = 0; s == FSQ_OK && i < st->count[FSQ_CKPT_OPTIMIZER]; i++) {
    const char *name = st->rec[FSQ_CKPT_OPTIMIZER][i]->name;
    if (strncmp(name, from, n) != 0 || name[n] != '.') continue;
    char *renamed = NULL;
    if (asprintf(&renamed, "%s%s", to, name + n) < 0)
      return fsq_error(FSQ_ERR_NOMEM, "tensor '%s': out of memory", to);
    s = fsq_state_rename(st, FSQ_CKPT_OPTIMIZER, name, renamed);
    free(renamed);
  }
  return s;
}

fsq_status fsq_state_reshape(fsq_state *st, fsq_ckpt_group group, const char *name, int ndim,
                             const int64_t *shape) {
  fsq_ckpt_tensor *t = fsq_state_find(st, group, name);
  if (t == NULL)
    return fsq_error(FSQ_ERR_NOT_FOUND, "%s tensor '%s' not found", fsq_ckpt_group_name(group),
                     name);
  size_t bytes = 0;
  fsq_status s = fsq_ckpt_shape_bytes(name, t->dtype, ndim, shape, &bytes);
  if (s != FSQ_OK) return s;
  if (bytes != t->nbytes)
    return fsq_error(FSQ_ERR_INVALID, "%s tensor '%s': reshape changes the size (%zu -> %zu bytes)",
                     fsq_ckpt_group_name(group), name, t->nbytes, bytes);
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  return FSQ_OK;
}
