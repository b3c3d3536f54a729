/* fsq_meters.h: fairseq's training metrics and progress lines. Meters keep
 * averages, rates and timings under string keys, ordered by priority as
 * fairseq's MetersDict does; the progress functions print them in fairseq's
 * simple / json / tqdm layouts, e.g.
 *   ... | INFO | train_inner | epoch 001:    100 / 1000 loss=9.123, ppl=557.55, wps=3456.7
 *   ... | INFO | train | epoch 001 | loss 9.123 | ppl 557.55 | ...            */
#ifndef FSQ_METERS_H
#define FSQ_METERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* ---- value formatting (Python's round() and "{:g}") ---------------------- */
/* Python's round(x, digits): correctly rounded, ties to even. */
double fsq_round_digits(double x, int digits);
/* Python's "{:g}".format(x) into buf. */
void fsq_format_g(double x, char *buf, size_t size);
/* Python's repr(x) (also str(x) and "{}".format(x)) into buf. */
void fsq_format_repr(double x, char *buf, size_t size);
/* fairseq's utils.get_perplexity(loss, round=2, base=2); inf on overflow. */
double fsq_perplexity(double loss_base2);

/* ---- meters ------------------------------------------------------------- */
typedef struct fsq_meters fsq_meters;

/* A value derived from other meters when read (fairseq's log_derived). */
typedef double (*fsq_meter_derive_fn)(const fsq_meters *meters);

#define FSQ_ROUND_NONE (-1)

fsq_meters *fsq_meters_new(void);
void fsq_meters_free(fsq_meters *m);
void fsq_meters_reset(fsq_meters *m);
/* fairseq's metrics.log_scalar: a weighted average; the meter is created on
 * first use with this priority and rounding (FSQ_ROUND_NONE for none). */
fsq_status fsq_meters_log_scalar(fsq_meters *m, const char *key, double value, double weight,
                                 int priority, int round);
/* metrics.log_speed: events per second since the meter was created/reset. */
fsq_status fsq_meters_log_speed(fsq_meters *m, const char *key, double value, int priority,
                                int round);
/* metrics.log_start_time / log_stop_time: a stopwatch summing durations. */
fsq_status fsq_meters_start_time(fsq_meters *m, const char *key, int priority, int round);
fsq_status fsq_meters_stop_time(fsq_meters *m, const char *key, double weight);
/* A start/stop pair measured elsewhere: adds seconds to the stopwatch. */
fsq_status fsq_meters_add_time(fsq_meters *m, const char *key, double seconds, int priority,
                               int round);
fsq_status fsq_meters_log_derived(fsq_meters *m, const char *key, int priority,
                                  fsq_meter_derive_fn fn);
/* The meter's average (NAN when absent). */
double fsq_meters_avg(const fsq_meters *m, const char *key);
double fsq_meters_sum(const fsq_meters *m, const char *key);

/* One logged statistic: key and its smoothed (rounded) value. */
typedef struct fsq_stat {
  const char *key;
  double value;
} fsq_stat;

/* Smoothed values in priority order, keys starting with '_' left out.
 * Returns the count (at most cap); keys stay owned by the meters. */
size_t fsq_meters_smoothed(const fsq_meters *m, fsq_stat *out, size_t cap);

/* State for checkpoints, as fairseq's MetersDict.state_dict (derived meters
 * are not saved; the owner registers them again after loading). */
fsq_status fsq_meters_state_save(const fsq_meters *m, struct json_object **out);
fsq_status fsq_meters_state_load(fsq_meters *m, struct json_object *state);

/* ---- progress lines ------------------------------------------------------ */
typedef enum fsq_log_format {
  FSQ_LOG_FORMAT_NONE,
  FSQ_LOG_FORMAT_SIMPLE,
  FSQ_LOG_FORMAT_JSON,
  FSQ_LOG_FORMAT_TQDM
} fsq_log_format;

/* "json", "none", "simple", "tqdm", or NULL for fairseq's default (tqdm on a
 * terminal, simple otherwise). -1 for an unknown name. */
int fsq_log_format_parse(const char *name, int stderr_is_tty);

typedef struct fsq_progress {
  fsq_log_format format;
  int64_t log_interval;
  int64_t epoch; /* 0: none */
  int64_t size;  /* batches in the epoch */
  int64_t i;     /* index of the current batch (0-based, as enumerate) */
  char prefix[96];
} fsq_progress;

void fsq_progress_init(fsq_progress *p, fsq_log_format format, int64_t log_interval,
                       int64_t epoch, const char *prefix, int64_t size);
/* Intermediate stats: printed when step (or the batch index) is a positive
 * multiple of log_interval. tag is the logger name ("train_inner"). */
void fsq_progress_log(const fsq_progress *p, const fsq_stat *stats, size_t n, const char *tag,
                      int64_t step);
/* End-of-epoch stats ("train", "valid"). */
void fsq_progress_print(const fsq_progress *p, const fsq_stat *stats, size_t n, const char *tag);
/* The text the two functions above log (without the log prefix). */
void fsq_progress_format_log(const fsq_progress *p, const fsq_stat *stats, size_t n, char *buf,
                             size_t size);
void fsq_progress_format_print(const fsq_progress *p, const fsq_stat *stats, size_t n,
                               const char *tag, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_METERS_H */
