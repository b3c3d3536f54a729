/* progress.c: fairseq's progress bars (logging/progress_bar.py): simple and
 * json lines through the logger, a tqdm-like bar on a terminal. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/fsq_meters.h"

int fsq_log_format_parse(const char *name, int stderr_is_tty) {
  if (name == NULL || strcmp(name, "tqdm") == 0)
    return stderr_is_tty ? FSQ_LOG_FORMAT_TQDM : FSQ_LOG_FORMAT_SIMPLE;
  if (strcmp(name, "simple") == 0) return FSQ_LOG_FORMAT_SIMPLE;
  if (strcmp(name, "json") == 0) return FSQ_LOG_FORMAT_JSON;
  if (strcmp(name, "none") == 0) return FSQ_LOG_FORMAT_NONE;
  return -1;
}

void fsq_progress_init(fsq_progress *p, fsq_log_format format, int64_t log_interval,
                       int64_t epoch, const char *prefix, int64_t size) {
  memset(p, 0, sizeof *p);
  p->format = format;
  p->log_interval = log_interval;
  p->epoch = epoch;
  p->size = size;
  size_t len = 0;
  if (epoch > 0) len = (size_t)snprintf(p->prefix, sizeof p->prefix, "epoch %03lld", (long long)epoch);
  if (prefix != NULL && len < sizeof p->prefix)
    snprintf(p->prefix + len, sizeof p->prefix - len, "%s%s", len ? " | " : "", prefix);
}

/* Appends formatted text; keeps the buffer terminated when it fills up. */
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *len, const char *fmt, ...) {
  if (*len >= size) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  if (n > 0) *len += (size_t)n;
  if (*len >= size) *len = size - 1;
}

/* Python's repr of round(x, 3): at most three decimals, at least one. */
static void format_update(double x, char *buf, size_t size) {
  snprintf(buf, size, "%.3f", fsq_round_digits(x, 3));
  size_t len = strlen(buf);
  while (len > 0 && buf[len - 1] == '0' && buf[len - 2] != '.') buf[--len] = '\0';
}

/* {"epoch": 1, "update": 0.5, "loss": "9.123"}: values as strings, as
 * fairseq's format_stat turns numbers into "{:g}" text before json.dumps. */
static void format_json(const fsq_progress *p, const fsq_stat *stats, size_t n, const char *tag,
                        int with_update, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  append(buf, size, &len, "{");
  const char *sep = "";
  if (p->epoch > 0) {
    append(buf, size, &len, "\"epoch\": %lld", (long long)p->epoch);
    sep = ", ";
  }
  if (with_update && p->epoch > 0 && p->size > 0) {
    char u[64];
    format_update((double)(p->epoch - 1) + (double)(p->i + 1) / (double)p->size, u, sizeof u);
    append(buf, size, &len, ", \"update\": %s", u);
  }
  for (size_t k = 0; k < n; k++) {
    char v[64];
    fsq_format_g(stats[k].value, v, sizeof v);
    append(buf, size, &len, "%s\"%s%s%s\": \"%s\"", sep, tag ? tag : "", tag ? "_" : "",
           stats[k].key, v);
    sep = ", ";
  }
  append(buf, size, &len, "}");
}

void fsq_progress_format_log(const fsq_progress *p, const fsq_stat *stats, size_t n, char *buf,
                             size_t size) {
  if (p->format == FSQ_LOG_FORMAT_JSON) {
    format_json(p, stats, n, NULL, 1, buf, size);
    return;
  }
  size_t len = 0;
  buf[0] = '\0';
  append(buf, size, &len, "%s:  %5lld / %lld ", p->prefix, (long long)(p->i + 1),
         (long long)p->size);
  for (size_t k = 0; k < n; k++) {
    char v[64];
    fsq_format_g(stats[k].value, v, sizeof v);
    append(buf, size, &len, "%s%s=%s", k ? ", " : "", stats[k].key, v);
  }
}

void fsq_progress_format_print(const fsq_progress *p, const fsq_stat *stats, size_t n,
                               const char *tag, char *buf, size_t size) {
  if (p->format == FSQ_LOG_FORMAT_JSON) {
    format_json(p, stats, n, tag, 0, buf, size);
    return;
  }
  size_t len = 0;
  buf[0] = '\0';
  append(buf, size, &len, "%s | ", p->prefix);
  for (size_t k = 0; k < n; k++) {
    char v[64];
    fsq_format_g(stats[k].value, v, sizeof v);
    append(buf, size, &len, "%s%s %s", k ? " | " : "", stats[k].key, v);
  }
}

/* A one-line bar on stderr, redrawn in place: "epoch 001:  45%|####  | 450/1000 loss=..." */
static void draw_bar(const fsq_progress *p, const fsq_stat *stats, size_t n) {
  int pct = p->size > 0 ? (int)(100 * (p->i + 1) / p->size) : 0;
  char bar[21];
  int filled = pct / 5;
  for (int k = 0; k < 20; k++) bar[k] = k < filled ? '#' : ' ';
  bar[20] = '\0';
  fprintf(stderr, "\r%s: %3d%%|%s| %lld/%lld", p->prefix, pct, bar, (long long)(p->i + 1),
          (long long)p->size);
  for (size_t k = 0; k < n; k++) {
    char v[64];
    fsq_format_g(stats[k].value, v, sizeof v);
    fprintf(stderr, "%s%s=%s", k ? ", " : " ", stats[k].key, v);
  }
  fprintf(stderr, "\033[K");
  fflush(stderr);
}

void fsq_progress_log(const fsq_progress *p, const fsq_stat *stats, size_t n, const char *tag,
                      int64_t step) {
  if (p->format == FSQ_LOG_FORMAT_NONE) return;
  if (p->format == FSQ_LOG_FORMAT_TQDM) {
    draw_bar(p, stats, n);
    return;
  }
  if (step == 0) step = p->i;
  if (step <= 0 || p->log_interval <= 0 || step % p->log_interval != 0) return;
  char line[4096];
  fsq_progress_format_log(p, stats, n, line, sizeof line);
  fsq_log_info(tag != NULL ? tag : "fairseq.logging.progress_bar", "%s", line);
}

void fsq_progress_print(const fsq_progress *p, const fsq_stat *stats, size_t n, const char *tag) {
  if (p->format == FSQ_LOG_FORMAT_NONE) return;
  if (p->format == FSQ_LOG_FORMAT_TQDM) fprintf(stderr, "\r\033[K");
  char line[4096];
  fsq_progress_format_print(p, stats, n, tag, line, sizeof line);
  fsq_log_info(tag != NULL ? tag : "fairseq.logging.progress_bar", "%s", line);
}
