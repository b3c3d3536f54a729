/* meters.c: fairseq's AverageMeter, TimeMeter, StopwatchMeter and derived
 * meters in a priority-ordered table (see fsq_meters.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/fsq_meters.h"

typedef enum meter_kind { METER_AVERAGE, METER_TIME, METER_STOPWATCH, METER_DERIVED } meter_kind;

static const char *const kind_class[] = {"AverageMeter", "TimeMeter", "StopwatchMeter", ""};

typedef struct meter {
  char *key;
  meter_kind kind;
  int priority;
  int order; /* insertion index: ties in priority keep insertion order */
  int round;
  int has_val;
  double val, sum, count; /* average: last value, weighted sum, weight */
  double init, start, n;  /* time: seconds before start, clock at start, events */
  double start_time;      /* stopwatch: NAN when stopped */
  fsq_meter_derive_fn fn;
} meter;

struct fsq_meters {
  meter *items; /* sorted by (priority, order) */
  size_t count, capacity;
  int next_order;
};

fsq_meters *fsq_meters_new(void) {
  fsq_meters *m = calloc(1, sizeof *m);
  if (m == NULL) fsq_error(FSQ_ERR_NOMEM, "meters: out of memory");
  return m;
}

void fsq_meters_free(fsq_meters *m) {
  if (m == NULL) return;
  for (size_t i = 0; i < m->count; i++) free(m->items[i].key);
  free(m->items);
  free(m);
}

static meter *find(const fsq_meters *m, const char *key) {
  for (size_t i = 0; i < m->count; i++)
    if (strcmp(m->items[i].key, key) == 0) return &m->items[i];
  return NULL;
}

static void reset_one(meter *x) {
  x->has_val = 0;
  x->val = x->sum = x->count = 0;
  x->init = 0;
  x->start = fsq_time_now();
  x->n = 0;
  x->start_time = x->kind == METER_STOPWATCH ? fsq_time_now() : NAN;
}

/* The meter under key, created with kind/priority/round when absent. */
static meter *get_or_add(fsq_meters *m, const char *key, meter_kind kind, int priority,
                         int round) {
  meter *x = find(m, key);
  if (x != NULL) return x;
  if (m->count == m->capacity) {
    size_t cap = m->capacity ? m->capacity * 2 : 32;
    meter *grown = realloc(m->items, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    m->items = grown;
    m->capacity = cap;
  }
  size_t at = m->count;
  while (at > 0 && m->items[at - 1].priority > priority) at--;
  memmove(&m->items[at + 1], &m->items[at], (m->count - at) * sizeof *m->items);
  x = &m->items[at];
  memset(x, 0, sizeof *x);
  x->key = strdup(key);
  x->kind = kind;
  x->priority = priority;
  x->order = m->next_order++;
  x->round = round;
  reset_one(x);
  if (kind == METER_STOPWATCH) x->start_time = NAN;
  m->count++;
  return x;
}

#define NOMEM(key) fsq_error(FSQ_ERR_NOMEM, "meters: cannot add '%s'", key)

fsq_status fsq_meters_log_scalar(fsq_meters *m, const char *key, double value, double weight,
                                 int priority, int round) {
  meter *x = get_or_add(m, key, METER_AVERAGE, priority, round);
  if (x == NULL) return NOMEM(key);
  x->val = value;
  x->has_val = 1;
  if (weight > 0) {
    x->sum += value * weight;
    x->count += weight;
  }
  return FSQ_OK;
}

fsq_status fsq_meters_log_speed(fsq_meters *m, const char *key, double value, int priority,
                                int round) {
  meter *x = get_or_add(m, key, METER_TIME, priority, round);
  if (x == NULL) return NOMEM(key);
  x->n += value;
  return FSQ_OK;
}

fsq_status fsq_meters_start_time(fsq_meters *m, const char *key, int priority, int round) {
  meter *x = get_or_add(m, key, METER_STOPWATCH, priority, round);
  if (x == NULL) return NOMEM(key);
  x->start_time = fsq_time_now();
  return FSQ_OK;
}

fsq_status fsq_meters_stop_time(fsq_meters *m, const char *key, double weight) {
  meter *x = find(m, key);
  if (x == NULL || x->kind != METER_STOPWATCH)
    return fsq_error(FSQ_ERR_INVALID, "meters: no stopwatch '%s'", key);
  if (!isnan(x->start_time)) {
    x->sum += fsq_time_now() - x->start_time;
    x->n += weight;
  }
  return FSQ_OK;
}

fsq_status fsq_meters_add_time(fsq_meters *m, const char *key, double seconds, int priority,
                               int round) {
  meter *x = get_or_add(m, key, METER_STOPWATCH, priority, round);
  if (x == NULL) return NOMEM(key);
  x->sum += seconds; /* weight 0, log_stop_time's default: the smoothed value is the sum */
  return FSQ_OK;
}

fsq_status fsq_meters_log_derived(fsq_meters *m, const char *key, int priority,
                                  fsq_meter_derive_fn fn) {
  meter *x = get_or_add(m, key, METER_DERIVED, priority, FSQ_ROUND_NONE);
  if (x == NULL) return NOMEM(key);
  x->fn = fn;
  return FSQ_OK;
}

void fsq_meters_reset(fsq_meters *m) {
  for (size_t i = 0; i < m->count; i++)
    if (m->items[i].kind != METER_DERIVED) reset_one(&m->items[i]);
}

static double meter_avg(const meter *x) {
  switch (x->kind) {
  case METER_AVERAGE: return x->count > 0 ? x->sum / x->count : (x->has_val ? x->val : NAN);
  case METER_TIME: return x->n / (x->init + (fsq_time_now() - x->start));
  case METER_STOPWATCH: return x->n > 0 ? x->sum / x->n : x->sum;
  case METER_DERIVED: return NAN;
  }
  return NAN;
}

double fsq_meters_avg(const fsq_meters *m, const char *key) {
  const meter *x = find(m, key);
  return x != NULL ? meter_avg(x) : NAN;
}

double fsq_meters_sum(const fsq_meters *m, const char *key) {
  const meter *x = find(m, key);
  return x != NULL ? x->sum : NAN;
}

static double smoothed(const fsq_meters *m, const meter *x) {
  if (x->kind == METER_DERIVED) return x->fn(m);
  double v = meter_avg(x);
  if (x->kind == METER_STOPWATCH && !(x->sum > 0))
    v = isnan(x->start_time) ? 0.0 : fsq_time_now() - x->start_time;
  return x->round != FSQ_ROUND_NONE ? fsq_round_digits(v, x->round) : v;
}

size_t fsq_meters_smoothed(const fsq_meters *m, fsq_stat *out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < m->count && n < cap; i++) {
    if (m->items[i].key[0] == '_') continue;
    out[n].key = m->items[i].key;
    out[n].value = smoothed(m, &m->items[i]);
    n++;
  }
  return n;
}

static json_object *round_json(int round) {
  return round == FSQ_ROUND_NONE ? NULL : json_object_new_int(round);
}

static json_object *meter_state(const meter *x) {
  json_object *s = json_object_new_object();
  switch (x->kind) {
  case METER_AVERAGE:
    json_object_object_add(s, "val", x->has_val ? json_object_new_double(x->val) : NULL);
    json_object_object_add(s, "sum", json_object_new_double(x->sum));
    json_object_object_add(s, "count", json_object_new_double(x->count));
    break;
  case METER_TIME:
    json_object_object_add(s, "init", json_object_new_double(x->init + fsq_time_now() - x->start));
    json_object_object_add(s, "n", json_object_new_double(x->n));
    break;
  default:
    json_object_object_add(s, "sum", json_object_new_double(x->sum));
    json_object_object_add(s, "n", json_object_new_double(x->n));
    break;
  }
  json_object_object_add(s, "round", round_json(x->round));
  return s;
}

fsq_status fsq_meters_state_save(const fsq_meters *m, json_object **out) {
  json_object *list = json_object_new_array();
  for (size_t i = 0; i < m->count; i++) {
    const meter *x = &m->items[i];
    if (x->kind == METER_DERIVED) continue;
    json_object *row = json_object_new_array();
    json_object_array_add(row, json_object_new_int(x->priority));
    json_object_array_add(row, json_object_new_string(x->key));
    json_object_array_add(row, json_object_new_string(kind_class[x->kind]));
    json_object_array_add(row, meter_state(x));
    json_object_array_add(list, row);
  }
  *out = list;
  return FSQ_OK;
}

static double state_number(json_object *s, const char *key) {
  json_object *v;
  return json_object_object_get_ex(s, key, &v) && v != NULL ? json_object_get_double(v) : 0.0;
}

static fsq_status load_row(fsq_meters *m, json_object *row) {
  if (!json_object_is_type(row, json_type_array) || json_object_array_length(row) != 4)
    return fsq_error(FSQ_ERR_FORMAT, "meters state: a row is not [priority, key, class, state]");
  int priority = json_object_get_int(json_object_array_get_idx(row, 0));
  const char *key = json_object_get_string(json_object_array_get_idx(row, 1));
  const char *cls = json_object_get_string(json_object_array_get_idx(row, 2));
  json_object *s = json_object_array_get_idx(row, 3);
  int kind = -1;
  for (int k = 0; k < METER_DERIVED; k++)
    if (cls != NULL && strcmp(cls, kind_class[k]) == 0) kind = k;
  if (key == NULL || kind < 0 || !json_object_is_type(s, json_type_object))
    return fsq_error(FSQ_ERR_FORMAT, "meters state: bad row for '%s'", key ? key : "?");
  json_object *r = NULL;
  int round = json_object_object_get_ex(s, "round", &r) && r != NULL ? json_object_get_int(r)
                                                                      : FSQ_ROUND_NONE;
  meter *x = get_or_add(m, key, (meter_kind)kind, priority, round);
  if (x == NULL) return NOMEM(key);
  json_object *val = NULL;
  x->has_val = json_object_object_get_ex(s, "val", &val) && val != NULL;
  x->val = x->has_val ? json_object_get_double(val) : 0.0;
  x->sum = state_number(s, "sum");
  x->count = state_number(s, "count");
  x->init = state_number(s, "init");
  x->n = state_number(s, "n");
  x->start = fsq_time_now();
  x->start_time = NAN;
  return FSQ_OK;
}

fsq_status fsq_meters_state_load(fsq_meters *m, json_object *state) {
  if (!json_object_is_type(state, json_type_array))
    return fsq_error(FSQ_ERR_FORMAT, "meters state: not a list");
  for (size_t i = 0; i < m->count; i++) free(m->items[i].key);
  m->count = 0;
  for (size_t i = 0; i < json_object_array_length(state); i++) {
    fsq_status st = load_row(m, json_object_array_get_idx(state, i));
    if (st != FSQ_OK) return st;
  }
  return FSQ_OK;
}
