/* cpu_half.c: f16 and bf16 storage for the CPU backend's float entries
 * (cpu_half.h). Each entry widens the 16-bit operands it reads, and the
 * outputs it adds into, to f32 scratch, runs the CPU table's own f32 entry
 * there, and rounds the outputs once, to nearest even. That is what the
 * CUDA backend computes, so mixed-precision training runs, and is tested,
 * on machines without a GPU. A checking path, not a fast one: every call
 * moves its operands through scratch.
 *
 * Exactly what the f32 kernel reads or writes is widened: matrices with a
 * leading dimension and strided operands are packed densely (stride-0 dims
 * stay stride 0, so broadcasts and reductions run as they would), and the
 * scatter-adds of embedding and index_select widen only the rows their
 * indices name, so an element the f32 kernel does not write keeps its bits
 * (but for gather_backward and reduce_max_backward, which round all of dx
 * back: every value survives that, a NaN's payload aside). The f32
 * outputs of 16-bit kernels (layer_norm's mean and rstd, the losses,
 * cross_entropy's lse) and the u8 and i64 operands pass straight through. */
#include "kernels/cpu/cpu_half.h"
#include "kernels/cpu/cpu_internal.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- scratch ------------------------------------------------------------- */
/* Grow-only buffers, one per slot, owned by this file for the life of the
 * process: never shrunk and never freed (they stay reachable, so leak
 * checkers keep quiet), so a call allocates only when it is the largest yet.
 * An entry gives each operand its own slot. One lock covers a whole call:
 * calls come from one thread, and a second caller would wait rather than
 * overwrite the first one's scratch. */
enum { SLOTS = 6 };
static struct {
  void *p;
  size_t cap;
} slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
/* A failed call does nothing; status() reports the first failure since it
 * was last asked. */
typedef struct failure {
  fsq_status code; /* FSQ_OK: none */
  const char *entry, *why;
} failure;
static failure call; /* of the entry holding the lock */
static failure first;

static void begin(const char *entry) {
  pthread_mutex_lock(&slots_lock);
  call = (failure){FSQ_OK, entry, NULL};
}

static void fail(fsq_status code, const char *why) {
  if (call.code != FSQ_OK) return;
  call.code = code;
  call.why = why;
}

/* The call has its scratch (and valid arguments) so far. */
static int ok(void) { return call.code == FSQ_OK; }

static void end(void) {
  if (call.code != FSQ_OK && first.code == FSQ_OK) first = call;
  pthread_mutex_unlock(&slots_lock);
}

fsq_status fsq_kcpu_status(void) {
  pthread_mutex_lock(&slots_lock);
  failure f = first;
  first.code = FSQ_OK;
  pthread_mutex_unlock(&slots_lock);
  if (f.code == FSQ_OK) return FSQ_OK;
  return fsq_error(f.code, "CPU kernels: %s (f16/bf16): %s", f.entry, f.why);
}

/* bytes of slot's scratch, 64-byte aligned; NULL (and the call failed)
 * when out of memory. Growth is by half again at least, so sizes creeping
 * up (batches of every length) do not allocate on every call. */
static void *scratch(int slot, size_t bytes) {
  if (bytes < 64) bytes = 64; /* never NULL for an empty operand */
  if (bytes > slots[slot].cap) {
    size_t cap = slots[slot].cap + slots[slot].cap / 2;
    if (cap < bytes) cap = bytes;
    void *p = NULL;
    if (posix_memalign(&p, 64, cap) != 0) {
      fail(FSQ_ERR_NOMEM, "out of memory for its f32 copies");
      return NULL;
    }
    free(slots[slot].p); /* the old contents are dead: no realloc copy */
    slots[slot].p = p;
    slots[slot].cap = cap;
  }
  return slots[slot].p;
}

static float *floats(int slot, int64_t n) { return scratch(slot, (size_t)n * sizeof(float)); }
static int64_t *indices(int slot, int64_t n) { return scratch(slot, (size_t)n * sizeof(int64_t)); }

/* The f32 kernels of this processor's ISA. */
static const fsq_kernels *f32k(void) { return fsq_kernels_cpu(); }

/* ---- widening and rounding ------------------------------------------------ */
static inline float h2f(fsq_dtype t, uint16_t h) {
  return t == FSQ_F16 ? fsq_k_f16_to_f32(h) : fsq_k_bf16_to_f32(h);
}
static inline uint16_t f2h(fsq_dtype t, float f) {
  return t == FSQ_F16 ? fsq_k_f32_to_f16(f) : fsq_k_f32_to_bf16(f);
}

/* f[i] = h[i] widened; n elements. */
static void to_f32(fsq_dtype t, float *f, const void *h_, int64_t n) {
  const uint16_t *h = h_;
#pragma omp parallel for if (n >= FSQ_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) f[i] = h2f(t, h[i]);
}

/* h[i] = f[i] rounded; n elements. */
static void from_f32(fsq_dtype t, void *h_, const float *f, int64_t n) {
  uint16_t *h = h_;
#pragma omp parallel for if (n >= FSQ_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) h[i] = f2h(t, f[i]);
}

/* n elements of h widened into slot's scratch; NULL for an absent operand
 * (h NULL) or when out of memory. */
static float *widen(int slot, fsq_dtype t, const void *h, int64_t n) {
  if (!h) return NULL;
  float *f = floats(slot, n);
  if (f) to_f32(t, f, h, n);
  return f;
}

/* A matrix: rows x cols of h (leading dimension ld) <-> f packed (ld = cols). */
static void mat_to_f32(fsq_dtype t, float *f, const void *h, int64_t rows, int64_t cols,
                       int64_t ld) {
  for (int64_t r = 0; r < rows; r++) to_f32(t, f + r * cols, (const uint16_t *)h + r * ld, cols);
}
static void mat_from_f32(fsq_dtype t, void *h, int64_t ld, const float *f, int64_t rows,
                         int64_t cols) {
  for (int64_t r = 0; r < rows; r++) from_f32(t, (uint16_t *)h + r * ld, f + r * cols, cols);
}

/* Rows of [O, S, I] named by rows[0..count) <-> f: [O, count, I]. */
static void rows_to_f32(fsq_dtype t, float *f, const void *h, int64_t outer, int64_t s,
                        int64_t inner, const int64_t *rows, int64_t count) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t r = 0; r < count; r++)
      to_f32(t, f + (o * count + r) * inner, (const uint16_t *)h + (o * s + rows[r]) * inner,
             inner);
}
static void rows_from_f32(fsq_dtype t, void *h, const float *f, int64_t outer, int64_t s,
                          int64_t inner, const int64_t *rows, int64_t count) {
  for (int64_t o = 0; o < outer; o++)
    for (int64_t r = 0; r < count; r++)
      from_f32(t, (uint16_t *)h + (o * s + rows[r]) * inner, f + (o * count + r) * inner, inner);
}

/* The distinct values of idx[0..n) other than skip, in order of first
 * appearance, into slot 3 (rows); cidx (slot 4) gets each position's place
 * among them, -1 where idx is skip. Slot 5 maps a row to its place. The
 * scatter-adds widen just these rows and run on the compacted copy, so
 * repeated indices still meet in one f32 sum. Returns the count, or -1
 * when out of memory. */
static int64_t distinct_rows(const int64_t *idx, int64_t n, int64_t skip, int64_t **rows,
                             int64_t **cidx) {
  int64_t top = -1, count = 0;
  for (int64_t i = 0; i < n; i++)
    if (idx[i] != skip && idx[i] > top) top = idx[i];
  int64_t *r = indices(3, n), *c = indices(4, n), *place = indices(5, top + 1);
  if (!ok()) return -1;
  for (int64_t j = 0; j <= top; j++) place[j] = -1;
  for (int64_t i = 0; i < n; i++) {
    if (idx[i] == skip) {
      c[i] = -1;
      continue;
    }
    if (place[idx[i]] < 0) {
      place[idx[i]] = count;
      r[count++] = idx[i];
    }
    c[i] = place[idx[i]];
  }
  *rows = r;
  *cidx = c;
  return count;
}

/* ---- strided operands ------------------------------------------------------ */
static int64_t numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  return n;
}

/* A strided operand over shape, packed densely for the f32 kernel: the dims
 * it steps through get row-major strides over themselves alone; those it
 * does not (stride 0: a broadcast source, a destination summed into) keep
 * stride 0, so the f32 kernel broadcasts or reduces as it would have, and
 * each element is widened and rounded once. Returns the packed count. */
static int64_t dense_strides(int ndim, const int64_t *shape, const int64_t *st, int64_t *dense) {
  int64_t count = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    dense[d] = st[d] ? count : 0;
    if (st[d]) count *= shape[d];
  }
  return count;
}

/* Moves the (strided, dense) offsets to the next element in row-major
 * order, stepping over stride-0 dims; 0 after the last. Every dim > 0. */
static int next_element(int ndim, const int64_t *shape, const int64_t *st, const int64_t *dense,
                        int64_t *ix, int64_t *off, int64_t *doff) {
  for (int d = ndim - 1; d >= 0; d--) {
    if (st[d] == 0) continue;
    if (++ix[d] < shape[d]) {
      *off += st[d];
      *doff += dense[d];
      return 1;
    }
    *off -= st[d] * (shape[d] - 1);
    *doff -= dense[d] * (shape[d] - 1);
    ix[d] = 0;
  }
  return 0;
}

static void strided_to_f32(fsq_dtype t, float *f, const void *h_, int ndim, const int64_t *shape,
                           const int64_t *st, const int64_t *dense) {
  const uint16_t *h = h_;
  int64_t ix[FSQ_KMAX_DIMS] = {0}, off = 0, doff = 0;
  do f[doff] = h2f(t, h[off]);
  while (next_element(ndim, shape, st, dense, ix, &off, &doff));
}

static void strided_from_f32(fsq_dtype t, void *h_, const float *f, int ndim,
                             const int64_t *shape, const int64_t *st, const int64_t *dense) {
  uint16_t *h = h_;
  int64_t ix[FSQ_KMAX_DIMS] = {0}, off = 0, doff = 0;
  do h[off] = f2h(t, f[doff]);
  while (next_element(ndim, shape, st, dense, ix, &off, &doff));
}

/* Strided entries take at most FSQ_KMAX_DIMS dims (as the CUDA backend's). */
static int dims_ok(int ndim) {
  if (ndim <= FSQ_KMAX_DIMS) return 1;
  fail(FSQ_ERR_INVALID, "more dims than FSQ_KMAX_DIMS");
  return 0;
}

/* ---- GEMM ------------------------------------------------------------------ */
/* The stored shape of op(X): [rows, cols], transposed when trans is set. */
typedef struct mat_dims {
  int64_t rows, cols;
} mat_dims;
static mat_dims stored(int trans, int64_t rows, int64_t cols) {
  return trans ? (mat_dims){cols, rows} : (mat_dims){rows, cols};
}
/* BLAS wants a leading dimension of at least 1, also for empty operands. */
static int64_t ld_of(mat_dims m) { return m.cols > 0 ? m.cols : 1; }

/* C is widened only when beta reads it, and rounded once after alpha AB +
 * beta C is complete in f32. */
static void h_gemm(fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k, double alpha,
                   const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                   int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  mat_dims da = stored(ta, m, k), db = stored(tb, k, n);
  begin("gemm");
  float *fa = floats(0, da.rows * da.cols), *fb = floats(1, db.rows * db.cols);
  float *fc = floats(2, m * n);
  if (ok()) {
    mat_to_f32(t, fa, a, da.rows, da.cols, lda);
    mat_to_f32(t, fb, b, db.rows, db.cols, ldb);
    if (beta != 0) mat_to_f32(t, fc, c, m, n, ldc);
    f32k()->gemm(FSQ_F32, ta, tb, m, n, k, alpha, fa, ld_of(da), fb, ld_of(db), beta, fc, n);
    mat_from_f32(t, c, ldc, fc, m, n);
  }
  end();
}

/* Each product's operands are packed one after another, with offsets to
 * match, so overlapping a's and b's (shared by products) are simply packed
 * once per product. */
static void h_gemm_batched(fsq_dtype t, int ta, int tb, int64_t m, int64_t n, int64_t k,
                           double alpha, const void *a, int64_t lda, const int64_t *a_off,
                           const void *b, int64_t ldb, const int64_t *b_off, double beta,
                           void *c, int64_t ldc, const int64_t *c_off, int64_t batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  mat_dims da = stored(ta, m, k), db = stored(tb, k, n);
  int64_t sa = da.rows * da.cols, sb = db.rows * db.cols, sc = m * n;
  begin("gemm_batched");
  float *fa = floats(0, batch * sa), *fb = floats(1, batch * sb), *fc = floats(2, batch * sc);
  int64_t *off = indices(3, 3 * batch);
  if (ok()) {
    const uint16_t *ha = a, *hb = b;
    for (int64_t i = 0; i < batch; i++) {
      mat_to_f32(t, fa + i * sa, ha + a_off[i], da.rows, da.cols, lda);
      mat_to_f32(t, fb + i * sb, hb + b_off[i], db.rows, db.cols, ldb);
      if (beta != 0) mat_to_f32(t, fc + i * sc, (const uint16_t *)c + c_off[i], m, n, ldc);
      off[i] = i * sa;
      off[batch + i] = i * sb;
      off[2 * batch + i] = i * sc;
    }
    f32k()->gemm_batched(FSQ_F32, ta, tb, m, n, k, alpha, fa, ld_of(da), off, fb, ld_of(db),
                         off + batch, beta, fc, n, off + 2 * batch, batch);
    for (int64_t i = 0; i < batch; i++)
      mat_from_f32(t, (uint16_t *)c + c_off[i], ldc, fc + i * sc, m, n);
  }
  end();
}

/* ---- elementwise ------------------------------------------------------------ */
/* A plain copy moves 16-bit words (cpu_isa.c); this is the accumulating one:
 * a destination summed into (stride 0) gets one f32 sum, rounded once. */
static void h_copy(fsq_dtype t, int ndim, const int64_t *shape, void *dst, const int64_t *ds,
                   const void *src, const int64_t *ss, int accumulate) {
  if (numel(ndim, shape) == 0) return;
  int64_t dd[FSQ_KMAX_DIMS], sd[FSQ_KMAX_DIMS];
  begin("copy");
  if (dims_ok(ndim)) {
    float *fd = floats(0, dense_strides(ndim, shape, ds, dd));
    float *fs = floats(1, dense_strides(ndim, shape, ss, sd));
    if (ok()) {
      strided_to_f32(t, fd, dst, ndim, shape, ds, dd);
      strided_to_f32(t, fs, src, ndim, shape, ss, sd);
      f32k()->copy(FSQ_F32, ndim, shape, fd, dd, fs, sd, accumulate);
      strided_from_f32(t, dst, fd, ndim, shape, ds, dd);
    }
  }
  end();
}

/* The value rounds to f32 first (the f32 kernel's), then once to t. */
static void h_fill(fsq_dtype t, void *dst_, int64_t n, double value) {
  uint16_t *dst = dst_, v = f2h(t, (float)value);
#pragma omp parallel for if (n >= FSQ_PAR_MIN) schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = v;
}

static void h_binary(fsq_dtype t, fsq_binop op, int ndim, const int64_t *shape, void *out,
                     const void *a, const int64_t *as, const void *b, const int64_t *bs) {
  int64_t n = numel(ndim, shape);
  if (n == 0) return;
  int64_t ad[FSQ_KMAX_DIMS], bd[FSQ_KMAX_DIMS];
  begin("binary");
  if (dims_ok(ndim)) {
    float *fa = floats(0, dense_strides(ndim, shape, as, ad));
    float *fb = floats(1, dense_strides(ndim, shape, bs, bd)), *fo = floats(2, n);
    if (ok()) {
      strided_to_f32(t, fa, a, ndim, shape, as, ad);
      strided_to_f32(t, fb, b, ndim, shape, bs, bd);
      f32k()->binary(FSQ_F32, op, ndim, shape, fo, fa, ad, fb, bd);
      from_f32(t, out, fo, n);
    }
  }
  end();
}

static void h_unary(fsq_dtype t, fsq_unop op, int64_t n, void *y, const void *x, double alpha) {
  begin("unary");
  float *f = widen(0, t, x, n);
  if (ok()) {
    f32k()->unary(FSQ_F32, op, n, f, f, alpha); /* in place, which unary allows */
    from_f32(t, y, f, n);
  }
  end();
}

/* x or y may be NULL when op does not read it. */
static void h_unary_backward(fsq_dtype t, fsq_unop op, int64_t n, void *dx, const void *dy,
                             const void *x, const void *y, double alpha) {
  begin("unary_backward");
  float *fdx = widen(0, t, dx, n), *fdy = widen(1, t, dy, n);
  float *fx = widen(2, t, x, n), *fy = widen(3, t, y, n);
  if (ok()) {
    f32k()->unary_backward(FSQ_F32, op, n, fdx, fdy, fx, fy, alpha);
    from_f32(t, dx, fdx, n);
  }
  end();
}

static void h_axpy(fsq_dtype t, int64_t n, double alpha, const void *x, void *y) {
  begin("axpy");
  float *fx = widen(0, t, x, n), *fy = widen(1, t, y, n);
  if (ok()) {
    f32k()->axpy(FSQ_F32, n, alpha, fx, fy);
    from_f32(t, y, fy, n);
  }
  end();
}

static void h_relu_mask(fsq_dtype t, int64_t n, void *g, const void *y) {
  begin("relu_mask");
  float *fg = widen(0, t, g, n), *fy = widen(1, t, y, n);
  if (ok()) {
    f32k()->relu_mask(FSQ_F32, n, fg, fy);
    from_f32(t, g, fg, n);
  }
  end();
}

/* x and out are contiguous; the mask is u8 and is read where it lies. */
static void h_masked_fill(fsq_dtype t, int ndim, const int64_t *shape, void *out, const void *x,
                          const uint8_t *mask, const int64_t *ms, double value) {
  int64_t n = numel(ndim, shape);
  begin("masked_fill");
  float *f = widen(0, t, x, n);
  if (ok()) {
    f32k()->masked_fill(FSQ_F32, ndim, shape, f, f, mask, ms, value); /* elementwise: in place */
    from_f32(t, out, f, n);
  }
  end();
}

static void h_dropout(fsq_dtype t, int64_t n, void *y, const void *x, double p, uint64_t seed,
                      uint64_t stream, int accumulate) {
  begin("dropout");
  float *fx = widen(0, t, x, n), *fy = accumulate ? widen(1, t, y, n) : floats(1, n);
  if (ok()) {
    f32k()->dropout(FSQ_F32, n, fy, fx, p, seed, stream, accumulate);
    from_f32(t, y, fy, n);
  }
  end();
}

/* ---- softmax, layer norm ------------------------------------------------------- */
static void h_softmax(fsq_dtype t, int64_t rows, int64_t s, void *y, const void *x,
                      const uint8_t *mask, int64_t rpb, int64_t t_len, int causal, int log) {
  begin("softmax");
  float *fx = widen(0, t, x, rows * s), *fy = floats(1, rows * s);
  if (ok()) {
    f32k()->softmax(FSQ_F32, rows, s, fy, fx, mask, rpb, t_len, causal, log);
    from_f32(t, y, fy, rows * s);
  }
  end();
}

static void h_softmax_backward(fsq_dtype t, int64_t rows, int64_t s, void *dx, const void *dy,
                               const void *y, int log) {
  int64_t n = rows * s;
  begin("softmax_backward");
  float *fdx = widen(0, t, dx, n), *fdy = widen(1, t, dy, n), *fy = widen(2, t, y, n);
  if (ok()) {
    f32k()->softmax_backward(FSQ_F32, rows, s, fdx, fdy, fy, log);
    from_f32(t, dx, fdx, n);
  }
  end();
}

/* mean and rstd are f32 already (fsq_kernels.h): the f32 kernel writes them. */
static void h_layer_norm(fsq_dtype t, int64_t rows, int64_t c, void *y, void *mean, void *rstd,
                         const void *x, const void *w, const void *b, double eps) {
  begin("layer_norm");
  float *fx = widen(0, t, x, rows * c), *fw = widen(1, t, w, c), *fb = widen(2, t, b, c);
  float *fy = floats(3, rows * c);
  if (ok()) {
    f32k()->layer_norm(FSQ_F32, rows, c, fy, mean, rstd, fx, fw, fb, eps);
    from_f32(t, y, fy, rows * c);
  }
  end();
}

/* dx, dw and db accumulate, each summed in f32 and rounded once. */
static void h_layer_norm_backward(fsq_dtype t, int64_t rows, int64_t c, void *dx, void *dw,
                                  void *db, const void *dy, const void *x, const void *w,
                                  const void *mean, const void *rstd) {
  int64_t n = rows * c;
  begin("layer_norm_backward");
  float *fdx = widen(0, t, dx, n), *fdw = widen(1, t, dw, c), *fdb = widen(2, t, db, c);
  float *fdy = widen(3, t, dy, n), *fx = widen(4, t, x, n), *fw = widen(5, t, w, c);
  if (ok()) {
    f32k()->layer_norm_backward(FSQ_F32, rows, c, fdx, fdw, fdb, fdy, fx, fw, mean, rstd);
    if (dx) from_f32(t, dx, fdx, n);
    if (dw) from_f32(t, dw, fdw, c);
    if (db) from_f32(t, db, fdb, c);
  }
  end();
}

/* ---- embedding, index_select, gather --------------------------------------------- */
/* The rows idx names are widened in order, so the f32 kernel reads row i. */
static void h_embedding(fsq_dtype t, int64_t n, int64_t d, void *out, const void *w,
                        const int64_t *idx, double scale) {
  begin("embedding");
  float *f = floats(0, n * d);
  int64_t *ident = indices(1, n);
  if (ok()) {
    rows_to_f32(t, f, w, 1, 0, d, idx, n);
    for (int64_t i = 0; i < n; i++) ident[i] = i;
    f32k()->embedding(FSQ_F32, n, d, f, f, ident, scale); /* row i into row i: in place */
    from_f32(t, out, f, n * d);
  }
  end();
}

/* The rows named (padding aside) are compacted; padding positions get
 * index -1, which the compacted copy's kernel skips. */
static void h_embedding_backward(fsq_dtype t, int64_t n, int64_t d, void *dw, const void *dy,
                                 const int64_t *idx, int64_t pad, double scale) {
  int64_t *rows = NULL, *cidx = NULL;
  begin("embedding_backward");
  int64_t count = distinct_rows(idx, n, pad, &rows, &cidx);
  float *fdw = count >= 0 ? floats(0, count * d) : NULL, *fdy = widen(1, t, dy, n * d);
  if (ok()) {
    rows_to_f32(t, fdw, dw, 1, 0, d, rows, count);
    f32k()->embedding_backward(FSQ_F32, n, d, fdw, fdy, cidx, -1, scale);
    rows_from_f32(t, dw, fdw, 1, 0, d, rows, count);
  }
  end();
}

/* As embedding_backward, over each outer slice; no valid index is -1. */
static void h_index_select_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                                    void *dx, const void *dy, const int64_t *idx, int64_t n) {
  int64_t *rows = NULL, *cidx = NULL;
  begin("index_select_backward");
  int64_t count = distinct_rows(idx, n, -1, &rows, &cidx);
  float *fdx = count >= 0 ? floats(0, outer * count * inner) : NULL;
  float *fdy = widen(1, t, dy, outer * n * inner);
  if (ok()) {
    rows_to_f32(t, fdx, dx, outer, s, inner, rows, count);
    f32k()->index_select_backward(FSQ_F32, outer, count, inner, fdx, fdy, cidx, n);
    rows_from_f32(t, dx, fdx, outer, s, inner, rows, count);
  }
  end();
}

/* gather's indices address single elements of dx: [O, S, I], all of it. */
static void h_gather_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, int64_t n,
                              void *dx, const void *dy, const int64_t *idx) {
  begin("gather_backward");
  float *fdx = widen(0, t, dx, outer * s * inner), *fdy = widen(1, t, dy, outer * n * inner);
  if (ok()) {
    f32k()->gather_backward(FSQ_F32, outer, s, inner, n, fdx, fdy, idx);
    from_f32(t, dx, fdx, outer * s * inner);
  }
  end();
}

/* ---- reductions -------------------------------------------------------------------- */
static void h_reduce_sum(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                         const void *x, double scale) {
  begin("reduce_sum");
  float *fx = widen(0, t, x, outer * s * inner), *fy = floats(1, outer * inner);
  if (ok()) {
    f32k()->reduce_sum(FSQ_F32, outer, s, inner, fy, fx, scale);
    from_f32(t, y, fy, outer * inner);
  }
  end();
}

/* y is one of x's values, so its rounding is exact. */
static void h_reduce_max(fsq_dtype t, int64_t outer, int64_t s, int64_t inner, void *y,
                         int64_t *argmax, const void *x) {
  begin("reduce_max");
  float *fx = widen(0, t, x, outer * s * inner), *fy = floats(1, outer * inner);
  if (ok()) {
    f32k()->reduce_max(FSQ_F32, outer, s, inner, fy, argmax, fx);
    from_f32(t, y, fy, outer * inner);
  }
  end();
}

static void h_reduce_max_backward(fsq_dtype t, int64_t outer, int64_t s, int64_t inner,
                                  void *dx, const void *dy, const int64_t *argmax) {
  begin("reduce_max_backward");
  float *fdx = widen(0, t, dx, outer * s * inner), *fdy = widen(1, t, dy, outer * inner);
  if (ok()) {
    f32k()->reduce_max_backward(FSQ_F32, outer, s, inner, fdx, fdy, argmax);
    from_f32(t, dx, fdx, outer * s * inner);
  }
  end();
}

/* ---- losses: loss, nll and lse are f32 already (fsq_kernels.h) ---------------------- */
static void h_ls_nll(fsq_dtype t, int64_t n, int64_t v, const void *lp, const int64_t *target,
                     double eps, int64_t ignore, void *loss, void *nll) {
  begin("label_smoothed_nll");
  float *f = widen(0, t, lp, n * v);
  if (ok()) f32k()->label_smoothed_nll(FSQ_F32, n, v, f, target, eps, ignore, loss, nll);
  end();
}

static void h_ls_nll_backward(fsq_dtype t, int64_t n, int64_t v, void *dlp,
                              const int64_t *target, double eps, int64_t ignore, double g_loss,
                              double g_nll) {
  begin("label_smoothed_nll_backward");
  float *f = widen(0, t, dlp, n * v);
  if (ok()) {
    f32k()->label_smoothed_nll_backward(FSQ_F32, n, v, f, target, eps, ignore, g_loss, g_nll);
    from_f32(t, dlp, f, n * v);
  }
  end();
}

static void h_cross_entropy(fsq_dtype t, int64_t n, int64_t v, const void *x,
                            const int64_t *target, double eps, int64_t ignore, void *lse,
                            void *loss, void *nll) {
  begin("cross_entropy");
  float *f = widen(0, t, x, n * v);
  if (ok())
    f32k()->cross_entropy(FSQ_F32, n, v, f, target, eps, ignore, lse, loss, nll);
  end();
}

static void h_cross_entropy_backward(fsq_dtype t, int64_t n, int64_t v, void *dx, const void *x,
                                     const void *lse, const int64_t *target, double eps,
                                     int64_t ignore, double g_loss, double g_nll,
                                     int accumulate) {
  begin("cross_entropy_backward");
  float *fdx = accumulate ? widen(0, t, dx, n * v) : floats(0, n * v);
  float *fx = widen(1, t, x, n * v);
  if (ok()) {
    f32k()->cross_entropy_backward(FSQ_F32, n, v, fdx, fx, lse, target, eps, ignore, g_loss,
                                   g_nll, accumulate);
    from_f32(t, dx, fdx, n * v);
  }
  end();
}

const fsq_kernels fsq_kcpu_half = {
    .name = "cpu-half",
    .gemm = h_gemm,
    .gemm_batched = h_gemm_batched,
    .copy = h_copy,
    .fill = h_fill,
    .binary = h_binary,
    .unary = h_unary,
    .unary_backward = h_unary_backward,
    .axpy = h_axpy,
    .softmax = h_softmax,
    .softmax_backward = h_softmax_backward,
    .layer_norm = h_layer_norm,
    .layer_norm_backward = h_layer_norm_backward,
    .dropout = h_dropout,
    .embedding = h_embedding,
    .embedding_backward = h_embedding_backward,
    .index_select_backward = h_index_select_backward,
    .gather_backward = h_gather_backward,
    .reduce_sum = h_reduce_sum,
    .reduce_max = h_reduce_max,
    .reduce_max_backward = h_reduce_max_backward,
    .masked_fill = h_masked_fill,
    .label_smoothed_nll = h_ls_nll,
    .label_smoothed_nll_backward = h_ls_nll_backward,
    .cross_entropy = h_cross_entropy,
    .cross_entropy_backward = h_cross_entropy_backward,
    .relu_mask = h_relu_mask,
};
