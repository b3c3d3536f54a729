/* log.c: fairseq's log line layout. The logger is one of the two pieces of
 * global state the framework allows (the other is the registry). */
#include "core/fsq_core.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static FILE *log_stream;
static fsq_log_level log_level = FSQ_LOG_INFO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_init(void) {
  const char *env = getenv("FSQ_LOG_LEVEL");
  if (env == NULL) return;
  if (strcmp(env, "DEBUG") == 0) log_level = FSQ_LOG_DEBUG;
  else if (strcmp(env, "WARNING") == 0) log_level = FSQ_LOG_WARNING;
  else if (strcmp(env, "ERROR") == 0) log_level = FSQ_LOG_ERROR;
  else if (strcmp(env, "OFF") == 0) log_level = FSQ_LOG_OFF;
}

void fsq_log_set_stream(FILE *stream) { log_stream = stream; }

void fsq_log_set_level(fsq_log_level level) {
  pthread_once(&log_once, log_init);
  log_level = level;
}

fsq_log_level fsq_log_get_level(void) {
  pthread_once(&log_once, log_init);
  return log_level;
}

static const char *level_name(fsq_log_level level) {
  if (level >= FSQ_LOG_ERROR) return "ERROR";
  if (level >= FSQ_LOG_WARNING) return "WARNING";
  if (level >= FSQ_LOG_INFO) return "INFO";
  return "DEBUG";
}

void fsq_time_stamp(char *buf, size_t size) {
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

void fsq_logv(fsq_log_level level, const char *logger, const char *fmt, va_list ap) {
  pthread_once(&log_once, log_init);
  if (level < log_level) return;
  FILE *out = log_stream != NULL ? log_stream : stdout;
  char stamp[32];
  fsq_time_stamp(stamp, sizeof stamp);
  pthread_mutex_lock(&log_lock);
  fprintf(out, "%s | %s | %s | ", stamp, level_name(level), logger);
  vfprintf(out, fmt, ap);
  fputc('\n', out);
  fflush(out);
  pthread_mutex_unlock(&log_lock);
}

void fsq_log(fsq_log_level level, const char *logger, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fsq_logv(level, logger, fmt, ap);
  va_end(ap);
}
