/* bench_allreduce.c: the reducer's throughput and its overlap with compute,
 * run by scripts/bench-allreduce under mpirun (or alone: one rank).
 *
 *   bench_allreduce PARAMS STEPS COMPUTE_MS CAP_MB...
 *
 * Gradients: PARAMS f32 values in one arena, as layers of a transformer
 * would give them (a large matrix, a bias, ...), in backward order.
 * For each bucket cap it prints, on rank 0:
 *   reduce:  mark every gradient ready, wait; bytes / time (algorithm
 *            bandwidth) and 2(N-1)/N * bytes / time (bus bandwidth, what a
 *            ring all-reduce moves through each link)
 *   overlap: a simulated backward of COMPUTE_MS spread over the layers,
 *            marking each gradient as its layer finishes, then wait; the
 *            fraction of the step spent in wait, against the same compute
 *            followed by the whole reduction (no overlap).
 * $POLL_US sets how often the helper thread polls MPI (default 50 us). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/fsq_distributed.h"

static fsq_dist *dist;

static void check(fsq_status st, const char *what) {
  if (st == FSQ_OK) return;
  fprintf(stderr, "bench_allreduce: rank %d: %s: %s\n", fsq_dist_rank(dist), what,
          fsq_error_message());
  fsq_dist_abort(dist, 1);
  exit(1);
}

/* Layer shapes cycle through these sizes: a 512x2048 FFN matrix, its bias,
 * a 512x512 projection, a layer-norm weight. */
static const size_t shapes[] = {1048576, 2048, 262144, 512};

static size_t make_layers(float *arena, size_t params, fsq_grad_buffer *g, size_t cap) {
  size_t n = 0, off = 0;
  while (off < params && n < cap) {
    size_t m = shapes[n % 4];
    if (m > params - off) m = params - off;
    g[n++] = (fsq_grad_buffer){arena + off, m};
    off += m;
  }
  return n;
}

/* About `ms` milliseconds of arithmetic on this core (calibrated once). */
static double spin_rate; /* iterations per millisecond */
static volatile float sink;

static void compute(double ms) {
  long iters = (long)(ms * spin_rate);
  float a = 1.0f;
  for (long i = 0; i < iters; i++) a = a * 0.999999f + 1e-7f;
  sink = a;
}

static void calibrate(void) {
  spin_rate = 1e5;
  double t = fsq_time_now();
  compute(50.0);
  double took = (fsq_time_now() - t) * 1e3;
  spin_rate *= 50.0 / took;
  /* Every rank uses rank 0's rate, so they compute equally long. */
  double rate = fsq_dist_rank(dist) == 0 ? spin_rate : 0.0;
  check(fsq_dist_allreduce_f64(dist, &rate, 1), "calibrate");
  spin_rate = rate;
}

/* One step; returns {step seconds, seconds in wait}. */
static void step(fsq_reducer *r, const fsq_grad_buffer *g, size_t n, double compute_ms,
                 int overlap, double *total, double *waited) {
  check(fsq_dist_barrier(dist), "barrier");
  double t0 = fsq_time_now();
  for (size_t k = 0; k < n; k++) {
    compute(compute_ms * (double)g[k].numel / 1e7); /* time proportional to the layer */
    if (overlap) check(fsq_reducer_mark_ready(r, k), "mark_ready");
  }
  if (!overlap)
    for (size_t k = 0; k < n; k++) check(fsq_reducer_mark_ready(r, k), "mark_ready");
  double t1 = fsq_time_now();
  check(fsq_reducer_wait(r, 0), "wait");
  double t2 = fsq_time_now();
  *total += t2 - t0;
  *waited += t2 - t1;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: bench_allreduce PARAMS STEPS COMPUTE_MS CAP_MB...\n");
    return 2;
  }
  size_t params = strtoull(argv[1], NULL, 10);
  int steps = atoi(argv[2]);
  double compute_ms = atof(argv[3]);
  fsq_dist_options opts;
  fsq_dist_options_default(&opts);
  if (getenv("POLL_US") != NULL) opts.poll_us = atoi(getenv("POLL_US")); /* helper's poll period */
  if (fsq_dist_init(&opts, &dist) != FSQ_OK) {
    fprintf(stderr, "bench_allreduce: %s\n", fsq_error_message());
    return 1;
  }
  float *arena = malloc(params * sizeof(float));
  size_t cap = params / 512 + 8;
  fsq_grad_buffer *g = malloc(cap * sizeof *g);
  for (size_t i = 0; i < params; i++) arena[i] = (float)(i % 7) * 0.5f;
  size_t n = make_layers(arena, params, g, cap);
  size_t layer_numel = 0;
  for (size_t k = 0; k < n; k++) layer_numel += g[k].numel;
  compute_ms = compute_ms * 1e7 / (double)layer_numel; /* per 1e7 values */
  calibrate();
  int size = fsq_dist_size(dist);
  double bytes = (double)params * sizeof(float);
  for (int a = 4; a < argc; a++) {
    double cap_mb = atof(argv[a]);
    fsq_reducer *r;
    check(fsq_reducer_create(dist, g, n, (size_t)(cap_mb * 1024 * 1024), &r), "reducer_create");
    double t = 0, w = 0, t_ov = 0, w_ov = 0, t_seq = 0, w_seq = 0;
    step(r, g, n, 0, 1, &t, &w); /* warm-up */
    t = w = 0;
    for (int s = 0; s < steps; s++) step(r, g, n, 0, 0, &t, &w);
    for (int s = 0; s < steps; s++) step(r, g, n, compute_ms, 1, &t_ov, &w_ov);
    for (int s = 0; s < steps; s++) step(r, g, n, compute_ms, 0, &t_seq, &w_seq);
    if (fsq_dist_rank(dist) == 0) {
      double per = t / steps;
      if (size > 1)
        printf("ranks %d  cap %4.1f MB  %5.1f MB in %3zu buckets  reduce %7.2f ms  "
               "algbw %5.2f GB/s  busbw %5.2f GB/s\n",
               size, cap_mb, bytes / 1e6, fsq_reducer_num_buckets(r), per * 1e3,
               bytes / per / 1e9, 2.0 * (size - 1) / size * bytes / per / 1e9);
      else /* a sum over one rank moves nothing: this is the machinery's cost */
        printf("ranks %d  cap %4.1f MB  %5.1f MB in %3zu buckets  reduce %7.2f ms  (no data moves)\n",
               size, cap_mb, bytes / 1e6, fsq_reducer_num_buckets(r), per * 1e3);
      printf("ranks %d  cap %4.1f MB  step: overlapped %6.1f ms = compute %6.1f + wait %5.1f "
             "(%4.1f%%); sequential %6.1f ms = compute %6.1f + wait %5.1f (%4.1f%%)\n",
             size, cap_mb, t_ov / steps * 1e3, (t_ov - w_ov) / steps * 1e3, w_ov / steps * 1e3,
             100 * w_ov / t_ov, t_seq / steps * 1e3, (t_seq - w_seq) / steps * 1e3,
             w_seq / steps * 1e3, 100 * w_seq / t_seq);
      fflush(stdout);
    }
    fsq_reducer_destroy(r);
  }
  free(g);
  free(arena);
  if (fsq_dist_finalize(dist) != FSQ_OK) {
    fprintf(stderr, "bench_allreduce: finalize: %s\n", fsq_error_message());
    return 1;
  }
  return 0;
}
