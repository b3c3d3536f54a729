/* fenced_backend.c: see fenced_backend.h. Allocation is a bump pointer over
 * one reserved region (never reused: tests are short), page-aligned so that
 * nothing of the host shares a page with device data. A freed block's pages
 * are given back to the kernel (MADV_DONTNEED): the fence is an mprotect of
 * the whole region around every kernel call, and its cost follows the
 * pages still mapped, so freed blocks would otherwise make every later call
 * of a long test slower. */
#include "fenced_backend.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define REGION_BYTES ((size_t)4 << 30)
#define PAGE ((size_t)4096)

static unsigned char *region;
static size_t region_top; /* bytes handed out, page-rounded */
static uint32_t *block_pages; /* [REGION_BYTES / PAGE]: a block's pages, by its first page */
static size_t live;
static int open_depth;
static const fsq_kernels *cpu;
static fsq_kernels fenced;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fence_open(void) {
  if (open_depth++ == 0 && region_top) mprotect(region, region_top, PROT_READ | PROT_WRITE);
}

static void fence_close(void) {
  if (--open_depth == 0 && region_top) mprotect(region, region_top, PROT_NONE);
}

static void *mem_alloc(size_t bytes) {
  size_t size = (bytes + PAGE - 1) / PAGE * PAGE;
  if (size == 0) size = PAGE;
  if (size > REGION_BYTES - region_top) return NULL;
  void *p = region + region_top;
  block_pages[region_top / PAGE] = (uint32_t)(size / PAGE);
  region_top += size;
  live++;
  return p;
}

static void mem_free(void *p) {
  if (p == NULL) return;
  live--;
  size_t first = (size_t)((unsigned char *)p - region) / PAGE;
  madvise(p, (size_t)block_pages[first] * PAGE, MADV_DONTNEED); /* never reused */
  block_pages[first] = 0;
}

static void mem_zero(void *p, size_t bytes) {
  fence_open();
  memset(p, 0, bytes);
  fence_close();
}

static void mem_move(void *dst, const void *src, size_t bytes) {
  fence_open();
  memcpy(dst, src, bytes);
  fence_close();
}

/* Each kernel: the CPU one with the region opened around it. */
#define FENCED(name, params, args)                                                             \
  static void fenced_##name params {                                                         \
    fence_open();                                                                              \
    cpu->name args;                                                                            \
    fence_close();                                                                             \
  }

FENCED(gemm,
       (fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
        const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
        int64_t ldc),
       (t, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
FENCED(gemm_batched,
       (fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
        const void *a, int64_t lda, const int64_t *ao, const void *b, int64_t ldb,
        const int64_t *bo, double beta, void *c, int64_t ldc, const int64_t *co, int64_t batch),
       (t, ta, tb, m, n, k, alpha, a, lda, ao, b, ldb, bo, beta, c, ldc, co, batch))
FENCED(copy,
       (fsq_dtype t, int nd, const int64_t *shape, void *dst, const int64_t *ds,
        const void *src, const int64_t *ss, int acc),
       (t, nd, shape, dst, ds, src, ss, acc))
FENCED(cast, (fsq_dtype dt, void *dst, fsq_dtype st, const void *src, int64_t n),
       (dt, dst, st, src, n))
FENCED(fill, (fsq_dtype t, void *dst, int64_t n, double v), (t, dst, n, v))
FENCED(binary,
       (fsq_dtype t, fsq_binop op, int nd, const int64_t *shape, void *out, const void *a,
        const int64_t *as, const void *b, const int64_t *bs),
       (t, op, nd, shape, out, a, as, b, bs))
FENCED(unary, (fsq_dtype t, fsq_unop op, int64_t n, void *y, const void *x, double alpha),
       (t, op, n, y, x, alpha))
FENCED(unary_backward,
       (fsq_dtype t, fsq_unop op, int64_t n, void *dx, const void *dy, const void *x,
        const void *y, double alpha),
       (t, op, n, dx, dy, x, y, alpha))
FENCED(axpy, (fsq_dtype t, int64_t n, double alpha, const void *x, void *y),
       (t, n, alpha, x, y))
FENCED(softmax,
       (fsq_dtype t, int64_t rows, int64_t s, void *y, const void *x, const uint8_t *mask,
        int64_t rpb, int64_t tl, int causal, int log),
       (t, rows, s, y, x, mask, rpb, tl, causal, log))
FENCED(softmax_backward,
       (fsq_dtype t, int64_t rows, int64_t s, void *dx, const void *dy, const void *y, int log),
       (t, rows, s, dx, dy, y, log))
FENCED(layer_norm,
       (fsq_dtype t, int64_t rows, int64_t c, void *y, void *mean, void *rstd, const void *x,
        const void *w, const void *b, double eps),
       (t, rows, c, y, mean, rstd, x, w, b, eps))
FENCED(layer_norm_backward,
       (fsq_dtype t, int64_t rows, int64_t c, void *dx, void *dw, void *db, const void *dy,
        const void *x, const void *w, const void *mean, const void *rstd),
       (t, rows, c, dx, dw, db, dy, x, w, mean, rstd))
FENCED(dropout,
       (fsq_dtype t, int64_t n, void *y, const void *x, double p, uint64_t seed,
        uint64_t stream, int acc),
       (t, n, y, x, p, seed, stream, acc))
FENCED(embedding,
       (fsq_dtype t, int64_t n, int64_t d, void *out, const void *w, const int64_t *idx,
        double scale),
       (t, n, d, out, w, idx, scale))
FENCED(embedding_backward,
       (fsq_dtype t, int64_t n, int64_t d, void *dw, const void *dy, const int64_t *idx,
        int64_t pad, double scale),
       (t, n, d, dw, dy, idx, pad, scale))
FENCED(index_select,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, void *out, const void *x,
        const int64_t *idx, int64_t n),
       (t, o, s, i, out, x, idx, n))
FENCED(index_select_backward,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, void *dx, const void *dy,
        const int64_t *idx, int64_t n),
       (t, o, s, i, dx, dy, idx, n))
FENCED(gather,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, int64_t n, void *out, const void *x,
        const int64_t *idx),
       (t, o, s, i, n, out, x, idx))
FENCED(gather_backward,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, int64_t n, void *dx, const void *dy,
        const int64_t *idx),
       (t, o, s, i, n, dx, dy, idx))
FENCED(reduce_sum,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, void *y, const void *x, double scale),
       (t, o, s, i, y, x, scale))
FENCED(reduce_max,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, void *y, int64_t *am, const void *x),
       (t, o, s, i, y, am, x))
FENCED(reduce_max_backward,
       (fsq_dtype t, int64_t o, int64_t s, int64_t i, void *dx, const void *dy,
        const int64_t *am),
       (t, o, s, i, dx, dy, am))
FENCED(masked_fill,
       (fsq_dtype t, int nd, const int64_t *shape, void *out, const void *x,
        const uint8_t *mask, const int64_t *ms, double v),
       (t, nd, shape, out, x, mask, ms, v))
FENCED(label_smoothed_nll,
       (fsq_dtype t, int64_t n, int64_t v, const void *lp, const int64_t *tg, double eps,
        int64_t ign, void *loss, void *nll),
       (t, n, v, lp, tg, eps, ign, loss, nll))
FENCED(label_smoothed_nll_backward,
       (fsq_dtype t, int64_t n, int64_t v, void *dlp, const int64_t *tg, double eps,
        int64_t ign, double gl, double gn),
       (t, n, v, dlp, tg, eps, ign, gl, gn))
FENCED(cross_entropy,
       (fsq_dtype t, int64_t n, int64_t v, const void *lg, const int64_t *tg, double eps,
        int64_t ign, void *lse, void *loss, void *nll),
       (t, n, v, lg, tg, eps, ign, lse, loss, nll))
FENCED(cross_entropy_backward,
       (fsq_dtype t, int64_t n, int64_t v, void *dlg, const void *lg, const void *lse,
        const int64_t *tg, double eps, int64_t ign, double gl, double gn, int acc),
       (t, n, v, dlg, lg, lse, tg, eps, ign, gl, gn, acc))
FENCED(relu_mask, (fsq_dtype t, int64_t n, void *g, const void *y), (t, n, g, y))
FENCED(adam,
       (int64_t n, float *p, const float *g, float *m, float *v, double lr, double b1,
        double b2, double eps, double wd, int64_t step, double gs),
       (n, p, g, m, v, lr, b1, b2, eps, wd, step, gs))
FENCED(sum_squares, (int64_t n, const float *x, double *out), (n, x, out))

static void init(void) {
  void *r = mmap(NULL, REGION_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (r == MAP_FAILED) return;
  block_pages = calloc(REGION_BYTES / PAGE, sizeof *block_pages);
  if (block_pages == NULL) {
    munmap(r, REGION_BYTES);
    return;
  }
  region = r;
  cpu = fsq_kernels_cpu();
  fenced = *cpu;
  fenced.name = "fenced-cpu";
  fenced.host = 0;
  fenced.mem_alloc = mem_alloc;
  fenced.mem_free = mem_free;
  fenced.mem_zero = mem_zero;
  fenced.mem_upload = mem_move;
  fenced.mem_download = mem_move;
#define SET(name) fenced.name = fenced_##name
  SET(gemm), SET(gemm_batched), SET(copy), SET(cast), SET(fill), SET(binary), SET(unary);
  SET(unary_backward), SET(axpy), SET(softmax), SET(softmax_backward), SET(layer_norm);
  SET(layer_norm_backward), SET(dropout), SET(embedding), SET(embedding_backward);
  SET(index_select), SET(index_select_backward), SET(gather), SET(gather_backward);
  SET(reduce_sum), SET(reduce_max), SET(reduce_max_backward), SET(masked_fill);
  SET(label_smoothed_nll), SET(label_smoothed_nll_backward), SET(cross_entropy);
  SET(cross_entropy_backward), SET(relu_mask), SET(adam), SET(sum_squares);
#undef SET
}

const fsq_kernels *fsq_test_fenced_kernels(void) {
  pthread_once(&once, init);
  return region ? &fenced : NULL;
}

size_t fsq_test_fenced_live(void) { return live; }
