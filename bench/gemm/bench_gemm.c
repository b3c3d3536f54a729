/* bench_gemm.c: GEMM throughput at transformer shapes, for choosing the CPU
 * BLAS and its threading. Linked with one backend (backend_openblas.c or
 * backend_dnnl.c); scripts/bench-gemm builds and runs it per library.
 *
 * Every row is C[M,N] = op(A)[M,K] op(B)[K,N], row-major, alpha 1, beta 0.
 * A linear layer y = x W^T with x: [T, in], W: [out, in] runs
 *   forward      NT  M=T,   N=out, K=in    y  = x  W^T
 *   backward dx  NN  M=T,   N=in,  K=out   dx = dy W
 *   backward dW  TN  M=out, N=in,  K=T     dW = dy^T x
 * Timing: one untimed warm-up call, one timed call to size a repeat (at
 * least --min-ms), then --repeats repeats; best and median per call, and
 * GFLOP per CPU-second of the whole process (median): with one thread that
 * is the kernel's speed even when other processes take the core away; with
 * more it drops by whatever the threads burn spinning or waiting.
 * Results are checked against a double-precision dot product at a few
 * entries so a wrong layout cannot report a fast number. */
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_gemm.h"

#define MAX_SHAPES 1024
#define MAX_LIST 16
#define MAX_REPEATS 64

typedef struct {
  char role[24]; /* e.g. "ffn1.fwd", "grid", "decode" */
  int ta, tb, m, n, k;
} shape;

typedef struct {
  shape shapes[MAX_SHAPES];
  int nshapes;
  int threads[MAX_LIST], nthreads;
  int repeats;
  double min_ms;
  int use_double;
  int use_gemv; /* rows with ta == 0 as M gemv calls */
  int omp_mix;
  int blas_threads; /* omp-mix only; 0: same as the OpenMP threads */
  const char *label;
} options;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads): spinning or waiting-by-
 * polling threads count, threads descheduled by other processes do not. */
static double cpu_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *msg, const char *arg)
{
  fprintf(stderr, "bench_gemm: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
  exit(2);
}

static void *xalloc(size_t bytes)
{
  size_t rounded = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, rounded ? rounded : 64);
  if (!p)
    die("out of memory", NULL);
  return p;
}

/* ---- how busy the rest of the machine was -------------------------------- */

/* CPU seconds the whole machine spent busy (/proc/stat: user nice system
 * irq softirq steal) and this process spent (all its threads). The
 * difference over a row is work of other processes (or the hypervisor)
 * competing for the cores; it is printed so noisy rows can be recognised. */
typedef struct {
  double machine, self, wall;
} cpu_mark;

static cpu_mark cpu_now(void)
{
  cpu_mark m = {0, 0, now_s()};
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  if (f) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
      m.machine = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                  (double)sysconf(_SC_CLK_TCK);
    fclose(f);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  m.self = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return m;
}

/* Average number of CPUs used by others between two marks. */
static double cpu_others(cpu_mark a, cpu_mark b)
{
  double wall = b.wall - a.wall;
  double others = (b.machine - a.machine) - (b.self - a.self);
  return wall > 0 && others > 0 ? others / wall : 0.0;
}

/* ---- shape sets ---------------------------------------------------------- */

static void add_shape(options *o, const char *role, int ta, int tb, int m, int n,
                      int k)
{
  if (o->nshapes == MAX_SHAPES)
    die("too many shapes", role);
  shape *s = &o->shapes[o->nshapes++];
  snprintf(s->role, sizeof s->role, "%s", role);
  s->ta = ta, s->tb = tb, s->m = m, s->n = n, s->k = k;
}

/* The three GEMMs of one linear layer [in -> out] at T tokens. */
static void add_linear(options *o, const char *name, int t, int in, int out)
{
  char role[24];
  snprintf(role, sizeof role, "%s.fwd", name);
  add_shape(o, role, 0, 1, t, out, in);
  snprintf(role, sizeof role, "%s.dx", name);
  add_shape(o, role, 0, 0, t, in, out);
  snprintf(role, sizeof role, "%s.dW", name);
  add_shape(o, role, 1, 0, out, in, t);
}

static int parse_list(const char *s, int *out, int max)
{
  int n = 0;
  char *end;
  while (*s) {
    long v = strtol(s, &end, 10);
    if (end == s || v <= 0 || v > 1 << 20 || n == max)
      die("bad number list", s);
    out[n++] = (int)v;
    s = *end == ',' ? end + 1 : end;
    if (*end && *end != ',')
      die("bad number list", end);
  }
  return n;
}

/* "NN,NT,TN" -> pairs (ta, tb). */
static int parse_trans(const char *s, int pairs[][2], int max)
{
  int n = 0;
  while (*s) {
    if ((s[0] != 'N' && s[0] != 'T') || (s[1] != 'N' && s[1] != 'T') || n == max)
      die("bad --trans list (want e.g. NN,NT,TN)", s);
    pairs[n][0] = s[0] == 'T', pairs[n][1] = s[1] == 'T';
    n++;
    s += 2;
    if (*s == ',')
      s++;
    else if (*s)
      die("bad --trans list", s);
  }
  return n;
}

typedef struct {
  int tokens[MAX_LIST], ntokens;
  int decode_m[MAX_LIST], ndecode_m;
  int dims[MAX_LIST], ndims;
  int trans[4][2], ntrans;
  int embed, ffn, vocab;
} set_params;

static void add_set(options *o, const char *set, const set_params *p)
{
  if (!strcmp(set, "layers")) {
    for (int i = 0; i < p->ntokens; i++) {
      int t = p->tokens[i];
      add_linear(o, "attn", t, p->embed, p->embed);
      add_linear(o, "ffn1", t, p->embed, p->ffn);
      add_linear(o, "ffn2", t, p->ffn, p->embed);
      add_linear(o, "out", t, p->embed, p->vocab);
    }
  } else if (!strcmp(set, "decode")) {
    /* Forward only, one row per hypothesis: beam search's per-step GEMMs. */
    for (int i = 0; i < p->ndecode_m; i++) {
      int m = p->decode_m[i];
      add_shape(o, "attn.fwd", 0, 1, m, p->embed, p->embed);
      add_shape(o, "ffn1.fwd", 0, 1, m, p->ffn, p->embed);
      add_shape(o, "ffn2.fwd", 0, 1, m, p->embed, p->ffn);
      add_shape(o, "out.fwd", 0, 1, m, p->vocab, p->embed);
    }
  } else if (!strcmp(set, "square")) {
    for (int t = 0; t < p->ntrans; t++)
      for (int i = 0; i < p->ndims; i++)
        add_shape(o, "square", p->trans[t][0], p->trans[t][1], p->dims[i],
                  p->dims[i], p->dims[i]);
  } else if (!strcmp(set, "grid")) {
    for (int t = 0; t < p->ntrans; t++)
      for (int i = 0; i < p->ntokens; i++)
        for (int j = 0; j < p->ndims; j++)
          for (int l = 0; l < p->ndims; l++)
            add_shape(o, "grid", p->trans[t][0], p->trans[t][1], p->tokens[i],
                      p->dims[j], p->dims[l]);
  } else {
    die("unknown --set (layers, decode, square, grid)", set);
  }
}

/* ---- data and checking --------------------------------------------------- */

static void fill(float *x, size_t n, uint32_t seed)
{
  uint32_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; i++) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)((s >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
  }
}

/* Element i of a float or double buffer. */
static double elem(const void *x, size_t i, int dbl)
{
  return dbl ? ((const double *)x)[i] : ((const float *)x)[i];
}

/* Compares 4 entries of C with a double dot product over op(A) and op(B)
 * under the layouts of bench_gemm.h. */
static int check(const shape *s, const void *a, const void *b, const void *c,
                 int dbl)
{
  int is[4] = {0, s->m - 1, s->m / 2, s->m / 3};
  int js[4] = {0, s->n - 1, s->n / 3, s->n / 2};
  for (int e = 0; e < 4; e++) {
    size_t i = (size_t)is[e], j = (size_t)js[e];
    double ref = 0;
    for (size_t p = 0; p < (size_t)s->k; p++) {
      size_t ai = s->ta ? p * (size_t)s->m + i : i * (size_t)s->k + p;
      size_t bi = s->tb ? j * (size_t)s->k + p : p * (size_t)s->n + j;
      ref += elem(a, ai, dbl) * elem(b, bi, dbl);
    }
    double got = elem(c, i * (size_t)s->n + j, dbl);
    if (fabs(got - ref) > 1e-5 * s->k + 1e-4) {
      fprintf(stderr, "bench_gemm: wrong result at C[%zu,%zu] of %s %dx%dx%d: "
              "%g, expected %g\n", i, j, s->role, s->m, s->n, s->k, got, ref);
      return -1;
    }
  }
  return 0;
}

/* ---- timing -------------------------------------------------------------- */

typedef struct {
  const shape *s;
  const void *a, *b;
  void *c;
  int use_double, use_gemv;
} gemm_call;

static void run_gemm(const gemm_call *g)
{
  const shape *s = g->s;
  int lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
  if (g->use_gemv) {
    /* Row i of C [M,N] from row i of A [M,K]: with B stored [N,K] (NT)
     * c_i = B a_i, with B stored [K,N] (NN) c_i = B^T a_i. */
    const float *a = g->a;
    float *c = g->c;
    for (int i = 0; i < s->m; i++)
      bench_backend_impl.sgemv(!s->tb, s->n, s->k, g->b, ldb,
                               a + (size_t)i * s->k, c + (size_t)i * s->n);
    return;
  }
  if (g->use_double)
    bench_backend_impl.dgemm(s->ta, s->tb, s->m, s->n, s->k, g->a, lda, g->b,
                             ldb, g->c, s->n);
  else
    bench_backend_impl.sgemm(s->ta, s->tb, s->m, s->n, s->k, g->a, lda, g->b,
                             ldb, g->c, s->n);
}

static int cmp_double(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Sorts x[0..n-1] and returns its median. */
static double median(double *x, int n)
{
  qsort(x, (size_t)n, sizeof x[0], cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

typedef void (*body_fn)(void *ctx);

typedef struct {
  double best, median; /* wall seconds per call */
  double cpu_median;   /* process CPU seconds per call */
} timing;

/* Warm-up, size a repeat to >= min_ms, then best/median over repeats. */
static timing time_body(body_fn body, void *ctx, const options *o)
{
  double per[MAX_REPEATS], cpu[MAX_REPEATS];
  body(ctx);
  double t0 = now_s();
  body(ctx);
  double one = now_s() - t0;
  long iters = one > 0 ? (long)ceil(o->min_ms * 1e-3 / one) : 1000;
  if (iters < 1)
    iters = 1;
  for (int r = 0; r < o->repeats; r++) {
    double c0 = cpu_s();
    t0 = now_s();
    for (long i = 0; i < iters; i++)
      body(ctx);
    per[r] = (now_s() - t0) / (double)iters;
    cpu[r] = (cpu_s() - c0) / (double)iters;
  }
  timing t = {0, median(per, o->repeats), median(cpu, o->repeats)};
  t.best = per[0]; /* median() sorted it */
  return t;
}

static void gemm_body(void *ctx) { run_gemm(ctx); }

/* ---- our own OpenMP work around a GEMM (oversubscription test) ----------- */

typedef struct {
  gemm_call g;
  float *a;       /* = g.a, writable: [M*K] */
  const float *x; /* [M*K] source of the "layer norm" that writes A */
  size_t na, nc;
  float scale;
} mix_ctx;

/* Stand in for the element-wise kernels around a linear layer: one OpenMP
 * region writes the GEMM's input (like layer norm), one applies ReLU to its
 * output. */
static void omp_pre(const mix_ctx *m)
{
  float *a = m->a;
  const float *x = m->x;
  float scale = m->scale;
  size_t n = m->na;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++)
    a[i] = x[i] * scale;
}

static void omp_post(const mix_ctx *m)
{
  float *c = m->g.c;
  size_t n = m->nc;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++)
    c[i] = c[i] > 0.0f ? c[i] : 0.0f;
}

static void omp_body(void *ctx)
{
  omp_pre(ctx);
  omp_post(ctx);
}

static void mix_body(void *ctx)
{
  mix_ctx *m = ctx;
  omp_pre(m);
  run_gemm(&m->g);
  omp_post(m);
}

/* ---- table rows ---------------------------------------------------------- */

static const char *trans_name(const shape *s, int gemv)
{
  static const char *names[2][2] = {{"NN", "NT"}, {"TN", "TT"}};
  static const char *gemv_names[2] = {"NN/gemv", "NT/gemv"};
  return gemv && !s->ta ? gemv_names[s->tb] : names[s->ta][s->tb];
}

static void print_plain_header(void)
{
  printf("| run | role | op | M | N | K | thr | best GFLOP/s | median GFLOP/s "
         "| best us/call | GFLOP/cpu-s | others |\n");
  printf("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
}

static void print_mix_header(void)
{
  printf("| run | role | M | N | K | omp thr | blas thr | gemm us | omp us "
         "| gemm+omp us | overhead | others |\n");
  printf("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
}

static int bench_plain(const options *o, const shape *s, int thr, void *a,
                       void *b, void *c)
{
  gemm_call g = {s, a, b, c, o->use_double, o->use_gemv && !s->ta};
  bench_backend_impl.set_threads(thr);
  omp_set_num_threads(thr);
  cpu_mark c0 = cpu_now();
  timing t = time_body(gemm_body, &g, o);
  double others = cpu_others(c0, cpu_now());
  double flop = 2.0 * s->m * (double)s->n * s->k;
  printf("| %s | %s | %s | %d | %d | %d | %d | %.1f | %.1f | %.1f | %.1f "
         "| %.2f |\n", o->label, s->role, trans_name(s, g.use_gemv), s->m, s->n, s->k, thr,
         flop / t.best * 1e-9, flop / t.median * 1e-9, t.best * 1e6,
         flop / t.cpu_median * 1e-9, others);
  fflush(stdout);
  return 0;
}

static int bench_mix(const options *o, const shape *s, int thr, void *a,
                     void *b, void *c, const float *x)
{
  int blas = o->blas_threads ? o->blas_threads : thr;
  size_t na = (size_t)s->m * s->k, nc = (size_t)s->m * s->n;
  mix_ctx m = {{s, a, b, c, 0, 0}, a, x, na, nc, 1.0f};
  omp_set_num_threads(thr);
  bench_backend_impl.set_threads(blas);
  /* oneDNN takes its threads from OpenMP: keep the count the user asked. */
  omp_set_num_threads(thr);
  cpu_mark c0 = cpu_now();
  timing tg = time_body(gemm_body, &m.g, o);
  timing tr = time_body(omp_body, &m, o);
  timing tm = time_body(mix_body, &m, o);
  double others = cpu_others(c0, cpu_now());
  double base = tg.median + tr.median;
  printf("| %s | %s | %d | %d | %d | %d | %d | %.1f | %.1f | %.1f | %+.0f%% "
         "| %.2f |\n", o->label, s->role, s->m, s->n, s->k, thr, blas,
         tg.median * 1e6, tr.median * 1e6, tm.median * 1e6,
         (tm.median / base - 1.0) * 100.0, others);
  fflush(stdout);
  return 0;
}

/* Allocates one shape's operands, runs it at every thread count, checks C. */
static int bench_shape(const options *o, const shape *s)
{
  size_t esz = o->use_double ? sizeof(double) : sizeof(float);
  size_t na = (size_t)s->m * s->k, nb = (size_t)s->k * s->n,
         nc = (size_t)s->m * s->n;
  float *a = xalloc(na * esz), *b = xalloc(nb * esz), *c = xalloc(nc * esz);
  float *x = o->omp_mix ? xalloc(na * sizeof(float)) : NULL;
  int rc = 0;
  fill(a, na, 1);
  fill(b, nb, 2);
  if (o->use_double) { /* widen in place, from the end */
    for (size_t i = na; i-- > 0;)
      ((double *)a)[i] = a[i];
    for (size_t i = nb; i-- > 0;)
      ((double *)b)[i] = b[i];
  }
  if (x)
    memcpy(x, a, na * sizeof(float));
  for (int t = 0; t < o->nthreads && rc == 0; t++) {
    if (o->omp_mix)
      rc = bench_mix(o, s, o->threads[t], a, b, c, x);
    else
      rc = bench_plain(o, s, o->threads[t], a, b, c);
    if (rc == 0 && !o->omp_mix) /* omp-mix applies ReLU to C */
      rc = check(s, a, b, c, o->use_double);
  }
  free(a), free(b), free(c), free(x);
  return rc;
}

/* ---- command line -------------------------------------------------------- */

static void usage(void)
{
  puts("usage: bench_gemm [options]\n"
       "  --set NAME       layers | decode | square | grid (repeatable)\n"
       "  --shape MxNxK    one shape, with every --trans (repeatable)\n"
       "  --trans LIST     NN,NT,TN for square/grid/--shape (default NN,NT,TN)\n"
       "  --tokens LIST    M of layers and grid (default 512,1024,2048,4096)\n"
       "  --dims LIST      N,K of grid, size of square (default 256,...,4096)\n"
       "  --decode-m LIST  M of decode (default 1,2,4,8,16,32,64)\n"
       "  --embed/--ffn/--vocab N   layer sizes (default 256/1024/8000)\n"
       "  --threads LIST   thread counts (default 1,2)\n"
       "  --repeats N      timed repeats, best and median reported (default 5)\n"
       "  --min-ms X       minimum length of one repeat (default 20)\n"
       "  --double         dgemm instead of sgemm\n"
       "  --gemv           shapes without A transposed as M sgemv calls\n"
       "  --omp-mix        time an OpenMP region before and after each GEMM\n"
       "  --blas-threads N library threads in --omp-mix (default: --threads)\n"
       "  --label STR      first column of the table (default: library name)\n"
       "  --info           describe the library and exit");
}

static const char *need(int argc, char **argv, int *i)
{
  if (*i + 1 >= argc)
    die("missing value after", argv[*i]);
  return argv[++*i];
}

static void parse_shape(options *o, const char *arg, const set_params *p)
{
  int m, n, k;
  char tail;
  if (sscanf(arg, "%dx%dx%d%c", &m, &n, &k, &tail) != 3 || m <= 0 || n <= 0 ||
      k <= 0)
    die("bad --shape (want MxNxK)", arg);
  for (int t = 0; t < p->ntrans; t++)
    add_shape(o, "shape", p->trans[t][0], p->trans[t][1], m, n, k);
}

static void set_defaults(options *o, set_params *p)
{
  memset(o, 0, sizeof *o);
  memset(p, 0, sizeof *p);
  o->threads[0] = 1, o->threads[1] = 2, o->nthreads = 2;
  o->repeats = 5;
  o->min_ms = 20;
  o->label = bench_backend_impl.name;
  p->ntokens = parse_list("512,1024,2048,4096", p->tokens, MAX_LIST);
  p->ndecode_m = parse_list("1,2,4,8,16,32,64", p->decode_m, MAX_LIST);
  p->ndims = parse_list("256,512,1024,2048,4096", p->dims, MAX_LIST);
  p->ntrans = parse_trans("NN,NT,TN", p->trans, 4);
  p->embed = 256, p->ffn = 1024, p->vocab = 8000;
}

/* Sets and shapes are expanded after all options, so --tokens etc. may
 * come after --set. Returns 1 for --info. */
static int parse_args(int argc, char **argv, options *o)
{
  set_params p;
  const char *sets[MAX_LIST], *shapes[MAX_LIST];
  int nsets = 0, nshp = 0, info = 0;
  set_defaults(o, &p);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--set") && nsets < MAX_LIST) sets[nsets++] = need(argc, argv, &i);
    else if (!strcmp(a, "--shape") && nshp < MAX_LIST) shapes[nshp++] = need(argc, argv, &i);
    else if (!strcmp(a, "--trans")) p.ntrans = parse_trans(need(argc, argv, &i), p.trans, 4);
    else if (!strcmp(a, "--tokens")) p.ntokens = parse_list(need(argc, argv, &i), p.tokens, MAX_LIST);
    else if (!strcmp(a, "--dims")) p.ndims = parse_list(need(argc, argv, &i), p.dims, MAX_LIST);
    else if (!strcmp(a, "--decode-m")) p.ndecode_m = parse_list(need(argc, argv, &i), p.decode_m, MAX_LIST);
    else if (!strcmp(a, "--embed")) p.embed = atoi(need(argc, argv, &i));
    else if (!strcmp(a, "--ffn")) p.ffn = atoi(need(argc, argv, &i));
    else if (!strcmp(a, "--vocab")) p.vocab = atoi(need(argc, argv, &i));
    else if (!strcmp(a, "--threads")) o->nthreads = parse_list(need(argc, argv, &i), o->threads, MAX_LIST);
    else if (!strcmp(a, "--repeats")) o->repeats = atoi(need(argc, argv, &i));
    else if (!strcmp(a, "--min-ms")) o->min_ms = atof(need(argc, argv, &i));
    else if (!strcmp(a, "--double")) o->use_double = 1;
    else if (!strcmp(a, "--gemv")) o->use_gemv = 1;
    else if (!strcmp(a, "--omp-mix")) o->omp_mix = 1;
    else if (!strcmp(a, "--blas-threads")) o->blas_threads = atoi(need(argc, argv, &i));
    else if (!strcmp(a, "--label")) o->label = need(argc, argv, &i);
    else if (!strcmp(a, "--info")) info = 1;
    else if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); exit(0); }
    else die("unknown option (see --help)", a);
  }
  if (o->repeats < 1 || o->repeats > MAX_REPEATS)
    die("--repeats must be 1..64", NULL);
  if (p.embed <= 0 || p.ffn <= 0 || p.vocab <= 0 || o->blas_threads < 0)
    die("layer sizes and --blas-threads must be positive", NULL);
  if (o->use_double && !bench_backend_impl.dgemm)
    die("this library has no double GEMM", bench_backend_impl.name);
  if (o->use_gemv && !bench_backend_impl.sgemv)
    die("this library has no sgemv", bench_backend_impl.name);
  if (o->use_gemv && (o->use_double || o->omp_mix))
    die("--gemv is single precision, without --omp-mix", NULL);
  if (o->use_double && o->omp_mix)
    die("--omp-mix is single precision only", NULL);
  for (int i = 0; i < nsets; i++)
    add_set(o, sets[i], &p);
  for (int i = 0; i < nshp; i++)
    parse_shape(o, shapes[i], &p);
  if (!info && o->nshapes == 0)
    add_set(o, "layers", &p);
  return info;
}

int main(int argc, char **argv)
{
  static options o;
  int info = parse_args(argc, argv, &o);
  bench_backend_impl.describe(stdout);
  printf("precision: %s; repeats %d; min %.0f ms per repeat\n\n",
         o.use_double ? "double" : "single", o.repeats, o.min_ms);
  if (info)
    return 0;
  if (o.omp_mix)
    print_mix_header();
  else
    print_plain_header();
  for (int i = 0; i < o.nshapes; i++)
    if (bench_shape(&o, &o.shapes[i]) != 0)
      return 1;
  return 0;
}
