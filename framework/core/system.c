/* system.c: clocks and the framework's thread count. */
#include "core/fsq_core.h"

#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double fsq_time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int env_threads(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0') return 0;
  char *end;
  long n = strtol(v, &end, 10);
  return (*end == '\0' && n > 0 && n < 4096) ? (int)n : 0;
}

int fsq_num_threads(void) {
  int n = env_threads("FSQ_NUM_THREADS");
  if (n == 0) n = env_threads("OMP_NUM_THREADS");
  if (n == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    n = cpus > 0 ? (int)cpus : 1;
  }
  return n;
}
