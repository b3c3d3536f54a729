/* bench_checkpoint.c: save and load speed of a checkpoint the size of the
 * standard configuration: a transformer with 3 encoder and 3 decoder layers,
 * d=256, ffn 1024, vocab 8000, decoder input/output embeddings shared
 * (fairseq parameter names and shapes), f32, plus Adam's exp_avg and
 * exp_avg_sq for every parameter.
 *   bench-checkpoint DIR [REPEATS]     (scripts/bench-checkpoint runs it)
 * Prints parameter count, bytes, and the median MB/s of save (including
 * fsync and rename) and load (state-owned, and into caller buffers). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/fsq_checkpoint.h"

#define D 256
#define FFN 1024
#define VOCAB 8000
#define LAYERS 3

typedef struct bench {
  fsq_state *st;
  float *pool; /* every tensor's data, parameters then optimizer state */
  size_t used, cap;
  int64_t params;
} bench;

static void add(bench *b, fsq_ckpt_group g, const char *name, int64_t rows, int64_t cols) {
  int64_t shape[2] = {rows, cols};
  int ndim = cols > 0 ? 2 : 1;
  size_t n = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
  if (b->used + n > b->cap) {
    fprintf(stderr, "bench-checkpoint: pool too small\n");
    exit(1);
  }
  float *x = b->pool + b->used;
  b->used += n;
  if (fsq_state_add(b->st, g, name, FSQ_CKPT_F32, ndim, shape, x, n * sizeof(float),
                    FSQ_CKPT_BORROW) != FSQ_OK) {
    fprintf(stderr, "bench-checkpoint: %s\n", fsq_error_message());
    exit(1);
  }
  if (g == FSQ_CKPT_MODEL) b->params += (int64_t)n;
}

/* A parameter and its two Adam buffers. */
static void param(bench *b, const char *name, int64_t rows, int64_t cols) {
  char s[160];
  add(b, FSQ_CKPT_MODEL, name, rows, cols);
  snprintf(s, sizeof s, "%s.exp_avg", name);
  add(b, FSQ_CKPT_OPTIMIZER, s, rows, cols);
  snprintf(s, sizeof s, "%s.exp_avg_sq", name);
  add(b, FSQ_CKPT_OPTIMIZER, s, rows, cols);
}

static void linear(bench *b, const char *prefix, const char *name, int64_t out, int64_t in) {
  char s[160];
  snprintf(s, sizeof s, "%s.%s.weight", prefix, name);
  param(b, s, out, in);
  snprintf(s, sizeof s, "%s.%s.bias", prefix, name);
  param(b, s, out, 0);
}

static void layer_norm(bench *b, const char *prefix, const char *name) {
  char s[160];
  snprintf(s, sizeof s, "%s.%s.weight", prefix, name);
  param(b, s, D, 0);
  snprintf(s, sizeof s, "%s.%s.bias", prefix, name);
  param(b, s, D, 0);
}

static void attention(bench *b, const char *prefix) {
  static const char *proj[] = {"k_proj", "v_proj", "q_proj", "out_proj"};
  for (int i = 0; i < 4; i++) linear(b, prefix, proj[i], D, D);
}

static void build(bench *b) {
  char p[96], q[128];
  param(b, "encoder.embed_tokens.weight", VOCAB, D);
  for (int l = 0; l < LAYERS; l++) {
    snprintf(p, sizeof p, "encoder.layers.%d", l);
    snprintf(q, sizeof q, "%s.self_attn", p);
    attention(b, q);
    layer_norm(b, p, "self_attn_layer_norm");
    linear(b, p, "fc1", FFN, D);
    linear(b, p, "fc2", D, FFN);
    layer_norm(b, p, "final_layer_norm");
  }
  param(b, "decoder.embed_tokens.weight", VOCAB, D); /* also the output projection */
  for (int l = 0; l < LAYERS; l++) {
    snprintf(p, sizeof p, "decoder.layers.%d", l);
    snprintf(q, sizeof q, "%s.self_attn", p);
    attention(b, q);
    layer_norm(b, p, "self_attn_layer_norm");
    snprintf(q, sizeof q, "%s.encoder_attn", p);
    attention(b, q);
    layer_norm(b, p, "encoder_attn_layer_norm");
    linear(b, p, "fc1", FFN, D);
    linear(b, p, "fc2", D, FFN);
    layer_norm(b, p, "final_layer_norm");
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *t, int n) {
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  return t[n / 2];
}

/* Caller buffers for loading: one block carved in order. */
typedef struct carve {
  unsigned char *base;
  size_t used;
} carve;

static void *next_buffer(void *ctx, fsq_ckpt_group g, const fsq_ckpt_tensor *t) {
  (void)g;
  carve *c = ctx;
  void *p = c->base + c->used;
  c->used += t->nbytes;
  return p;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-checkpoint DIR [REPEATS]\n");
    return 2;
  }
  int repeats = argc > 2 ? atoi(argv[2]) : 5;
  if (repeats < 1 || repeats > 100) repeats = 5;
  bench b = {.cap = (size_t)40 << 20}; /* 40M floats: room for 3 x 13M */
  b.pool = malloc(b.cap * sizeof(float));
  b.st = fsq_state_new();
  if (b.pool == NULL || b.st == NULL) return 1;
  fsq_rng rng = fsq_rng_make(1, 0);
  for (size_t i = 0; i < b.cap; i++) b.pool[i] = fsq_rng_uniform(&rng) - 0.5f;
  build(&b);
  double bytes = (double)b.used * sizeof(float), mb = bytes / 1e6;
  char *path = NULL;
  if (asprintf(&path, "%s/bench_checkpoint.fsq", argv[1]) < 0) return 1;
  double save[100], load[100], into[100];
  unsigned char *dest = malloc(b.used * sizeof(float));
  for (int r = 0; r < repeats; r++) {
    double t0 = fsq_time_now();
    if (fsq_checkpoint_save(b.st, path) != FSQ_OK) goto fail;
    double t1 = fsq_time_now();
    fsq_state *st = NULL;
    if (fsq_checkpoint_load(path, NULL, &st) != FSQ_OK) goto fail;
    double t2 = fsq_time_now();
    fsq_state_free(st);
    carve c = {dest, 0};
    fsq_ckpt_load_options opt = {.dest = next_buffer, .ctx = &c};
    double t3 = fsq_time_now();
    if (fsq_checkpoint_load(path, &opt, &st) != FSQ_OK) goto fail;
    double t4 = fsq_time_now();
    fsq_state_free(st);
    save[r] = t1 - t0;
    load[r] = t2 - t1;
    into[r] = t4 - t3;
  }
  printf("checkpoint: %lld parameters (%zu model + %zu optimizer tensors), %.1f MB of f32 data\n",
         (long long)b.params, fsq_state_count(b.st, FSQ_CKPT_MODEL),
         fsq_state_count(b.st, FSQ_CKPT_OPTIMIZER), mb);
  double s = median(save, repeats), l = median(load, repeats), i = median(into, repeats);
  printf("save (crc32 + write + fsync + rename): %.3f s  %.0f MB/s\n", s, mb / s);
  printf("load into state-owned memory (verify all): %.3f s  %.0f MB/s\n", l, mb / l);
  printf("load into caller buffers (verify all):     %.3f s  %.0f MB/s\n", i, mb / i);
  printf("(median of %d runs; %s)\n", repeats, argv[1]);
  unlink(path);
  free(path);
  free(dest);
  fsq_state_free(b.st);
  free(b.pool);
  return 0;
fail:
  fprintf(stderr, "bench-checkpoint: %s\n", fsq_error_message());
  unlink(path);
  return 1;
}
