/* kernel_cases.c: see kernel_cases.h. Every float kernel of the backend
 * under test (dev) against the CPU backend's f32 kernels (cpu) on the same
 * random inputs, in passes of one dtype each: f32, f16, bf16. The reference
 * always runs in f32; in the 16-bit passes the inputs are rounded to the
 * pass's dtype first, so both sides see the same values, and the
 * reference's result is rounded the same way before the comparison. f32
 * results lie within 1e-5 of the tensor's scale (the largest reference
 * magnitude), 16-bit ones within 1e-2; integer and mask results (casts,
 * argmax, dropout masks, index copies) match exactly in every dtype. The
 * 16-bit passes also check the rounding rules of fsq_kernels.h exactly, on
 * values that tell one rounding from two. */
#include "kernel_cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5      /* the f32 pass */
#define TOL_HALF 1e-2 /* the f16 and bf16 passes */

static const fsq_kernels *cpu, *dev;
/* The dtype dev's float kernels run in for this pass; the reference runs in
 * f32 on the same values. */
static fsq_dtype dt = FSQ_F32;

/* A buffer on both sides: h is the reference's (host memory), d dev's (its
 * own memory, through its table); g receives d for the comparison. A float
 * buffer (t F32, F16 or BF16) keeps n f32 values in h and n elements of
 * dtype t in d; a raw one (t U8: indices, masks, argmax, f64) holds the
 * same bytes on both sides. */
typedef struct buf {
  void *h, *d, *g;
  size_t n;      /* elements (bytes for raw buffers) */
  fsq_dtype t;   /* FSQ_U8: raw */
  size_t bytes;  /* of h */
  size_t dbytes; /* of d and g */
} buf;

static buf buf_alloc(size_t n, fsq_dtype t, size_t bytes, size_t dbytes) {
  buf b = {calloc(1, bytes ? bytes : 1), dev->mem_alloc(dbytes ? dbytes : 1),
           calloc(1, dbytes ? dbytes : 1), n, t, bytes, dbytes};
  CU_ASSERT_FATAL(b.h != NULL && b.d != NULL && b.g != NULL);
  dev->mem_zero(b.d, dbytes ? dbytes : 1);
  return b;
}

/* Zeroed raw bytes. */
static buf buf_new(size_t bytes) { return buf_alloc(bytes, FSQ_U8, bytes, bytes); }

/* n zeros of dtype t (F32, F16 or BF16). */
static buf buf_zeros_t(size_t n, fsq_dtype t) {
  return buf_alloc(n, t, n * sizeof(float), n * fsq_dtype_size(t));
}

/* n zeros in the pass's dtype. */
static buf buf_zeros(size_t n) { return buf_zeros_t(n, dt); }

/* v rounded to t (round to nearest even, as dev's 16-bit stores). */
static float round_to(fsq_dtype t, float v) {
  if (t == FSQ_F16) return fsq_f16_to_f32(fsq_f32_to_f16(v));
  if (t == FSQ_BF16) return fsq_bf16_to_f32(fsq_f32_to_bf16(v));
  return v;
}

/* Element i of g (what dev wrote) as f32. */
static float got_at(const buf *b, size_t i) {
  if (b->t == FSQ_F16) return fsq_f16_to_f32(((const uint16_t *)b->g)[i]);
  if (b->t == FSQ_BF16) return fsq_bf16_to_f32(((const uint16_t *)b->g)[i]);
  return ((const float *)b->g)[i];
}

/* h to dev. A float buffer's h is first rounded to its dtype in place, so
 * the reference computes on exactly the values dev reads. */
static void buf_upload(buf *b) {
  const void *src = b->h;
  if (b->t == FSQ_F16 || b->t == FSQ_BF16) {
    float *x = b->h;
    uint16_t *w = b->g;
    for (size_t i = 0; i < b->n; i++) {
      x[i] = round_to(b->t, x[i]);
      w[i] = b->t == FSQ_F16 ? fsq_f32_to_f16(x[i]) : fsq_f32_to_bf16(x[i]);
    }
    src = w;
  }
  dev->mem_upload(b->d, src, b->dbytes);
}

/* A result that feeds the next call (a forward's output into its backward,
 * an output accumulated into): in a 16-bit pass the reference's, rounded,
 * becomes both sides' input, since each side's own would differ by the
 * rounding and the next comparison would no longer be on the same inputs.
 * The f32 pass keeps feeding each side its own result, as it always did. */
static void share(buf *b) {
  if (b->t == FSQ_F16 || b->t == FSQ_BF16) buf_upload(b);
}

static void buf_free(buf *b) {
  free(b->h);
  free(b->g);
  dev->mem_free(b->d);
}

/* n uniform floats in [lo, hi) in the pass's dtype, also in d. */
static buf buf_rand(size_t n, unsigned seed, float lo, float hi) {
  buf b = buf_zeros(n);
  float *x = b.h;
  srand(seed);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rand() / ((float)RAND_MAX + 1.0f);
  buf_upload(&b);
  return b;
}

/* n indices in [0, range), also in d. */
static buf buf_i64(size_t n, unsigned seed, int64_t range) {
  buf b = buf_new(n * sizeof(int64_t));
  int64_t *x = b.h;
  srand(seed);
  for (size_t i = 0; i < n; i++) x[i] = rand() % range;
  buf_upload(&b);
  return b;
}

/* d into g, once every kernel before has finished (mem_download's promise). */
static void buf_download(buf *b) {
  dev->mem_download(b->g, b->d, b->dbytes);
  CU_ASSERT_EQUAL(dev->status(), FSQ_OK);
}

/* dev's result against the reference rounded to the buffer's dtype,
 * relative to the reference's scale, within tol. */
static void expect_within(const char *what, buf *b, double tol) {
  buf_download(b);
  const float *ref = b->h;
  double scale = 0, err = 0;
  for (size_t i = 0; i < b->n; i++) {
    float r = round_to(b->t, ref[i]), got = got_at(b, i);
    if (isinf(r) || isinf(got)) {
      if (r != got) err = INFINITY;
      continue;
    }
    if (fabs(r) > scale) scale = fabs(r);
    double e = fabs((double)r - (double)got);
    if (e > err || e != e) err = e != e ? INFINITY : e;
  }
  double rel = scale > 0 ? err / scale : err;
  if (!(rel <= tol))
    fprintf(stderr, "%s (%s, %s): relative error %.3g (scale %.3g)\n", what, dev->name,
            fsq_dtype_name(dt), rel, scale);
  CU_ASSERT(rel <= tol);
}

/* Within the pass's tolerance. */
static void expect_close(const char *what, buf *b) {
  expect_within(what, b, dt == FSQ_F32 ? TOL : TOL_HALF);
}

/* Bit for bit: raw and f32 buffers as stored, 16-bit ones against the
 * reference rounded to their dtype. */
static void expect_same(const char *what, buf *b) {
  buf_download(b);
  int same = 1;
  if (b->t == FSQ_F16 || b->t == FSQ_BF16) {
    const float *ref = b->h;
    const uint16_t *got = b->g;
    for (size_t i = 0; i < b->n && same; i++) {
      uint16_t r = b->t == FSQ_F16 ? fsq_f32_to_f16(ref[i]) : fsq_f32_to_bf16(ref[i]);
      same = r == got[i];
    }
  } else {
    same = memcmp(b->h, b->g, b->bytes) == 0;
  }
  if (!same)
    fprintf(stderr, "%s (%s, %s): bytes differ from the reference's\n", what, dev->name,
            fsq_dtype_name(dt));
  CU_ASSERT(same);
}

/* With pad 3, every leading dimension exceeds its matrix's columns: what
 * lies between the rows is read by neither side and must stay as it was. */
static void test_gemm_and_batched_gemm(void) {
  const int64_t m = 37, n = 53, k = 29;
  for (int pad = 0; pad <= 3; pad += 3)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        buf a = buf_rand((size_t)((ta ? k : m) * lda), 1, -1, 1);
        buf b = buf_rand((size_t)((tb ? n : k) * ldb), 2, -1, 1);
        buf c = buf_rand((size_t)(m * ldc), 3, -1, 1);
        cpu->gemm(FSQ_F32, ta, tb, m, n, k, 0.7, a.h, lda, b.h, ldb, 0.3, c.h, ldc);
        dev->gemm(dt, ta, tb, m, n, k, 0.7, a.d, lda, b.d, ldb, 0.3, c.d, ldc);
        expect_close("gemm", &c);
        buf_free(&a);
        buf_free(&b);
        buf_free(&c);
      }
  /* 3 products at irregular offsets, as attention heads are laid out */
  const int64_t a_off[3] = {0, 700, 350}, b_off[3] = {40, 0, 900}, c_off[3] = {0, 2000, 4000};
  buf a = buf_rand(2000, 4, -1, 1), b = buf_rand(2500, 5, -1, 1), c = buf_zeros(6000);
  cpu->gemm_batched(FSQ_F32, 0, 1, 12, 20, 16, 1.0, a.h, 16, a_off, b.h, 16, b_off, 0.0, c.h, 20,
                    c_off, 3);
  dev->gemm_batched(dt, 0, 1, 12, 20, 16, 1.0, a.d, 16, a_off, b.d, 16, b_off, 0.0, c.d, 20,
                    c_off, 3);
  expect_close("gemm_batched", &c);
  /* evenly spaced products: the strided-batched call */
  const int64_t sa_off[3] = {0, 192, 384}, sb_off[3] = {0, 320, 640}, sc_off[3] = {0, 240, 480};
  cpu->gemm_batched(FSQ_F32, 1, 0, 12, 20, 16, 0.5, a.h, 12, sa_off, b.h, 20, sb_off, 0.0, c.h,
                    20, sc_off, 3);
  dev->gemm_batched(dt, 1, 0, 12, 20, 16, 0.5, a.d, 12, sa_off, b.d, 20, sb_off, 0.0, c.d, 20,
                    sc_off, 3);
  expect_close("gemm_batched (strided)", &c);
  buf_free(&a);
  buf_free(&b);
  buf_free(&c);
}

static void test_copy_and_fill(void) {
  /* a transposing copy, a broadcast, and a reduction into a stride-0 dst */
  const int64_t shape[3] = {4, 5, 6}, src_t[3] = {1, 4, 20}, dst_c[3] = {30, 6, 1};
  buf x = buf_rand(120, 6, -2, 2), y = buf_zeros(120);
  cpu->copy(FSQ_F32, 3, shape, y.h, dst_c, x.h, src_t, 0);
  dev->copy(dt, 3, shape, y.d, dst_c, x.d, src_t, 0);
  expect_same("copy (transpose)", &y);
  const int64_t bcast[3] = {0, 1, 0}, red[3] = {0, 1, 0};
  cpu->copy(FSQ_F32, 3, shape, y.h, dst_c, x.h, bcast, 1);
  dev->copy(dt, 3, shape, y.d, dst_c, x.d, bcast, 1);
  expect_close("copy (broadcast, accumulate)", &y);
  buf r = buf_rand(5, 7, 0, 1);
  cpu->copy(FSQ_F32, 3, shape, r.h, red, x.h, dst_c, 1);
  dev->copy(dt, 3, shape, r.d, red, x.d, dst_c, 1);
  expect_close("copy (reduce into stride 0)", &r);
  cpu->fill(FSQ_F32, y.h, 120, -0.25);
  dev->fill(dt, y.d, 120, -0.25);
  expect_same("fill", &y);
  if (dt == FSQ_F32) { /* fill is a float kernel: f64 too, checked once */
    buf f = buf_new(33 * sizeof(double));
    cpu->fill(FSQ_F64, f.h, 33, 7.0);
    dev->fill(FSQ_F64, f.d, 33, 7.0);
    expect_same("fill f64", &f);
    buf_free(&f);
  }
  buf_free(&x);
  buf_free(&y);
  buf_free(&r);
}

/* cast takes every dtype pair, so it runs once, from and back to f32. */
static void test_cast(void) {
  dt = FSQ_F32; /* x is f32 on both sides */
  buf x = buf_rand(120, 6, -2, 2);
  const fsq_dtype to[3] = {FSQ_F16, FSQ_BF16, FSQ_F64};
  for (int i = 0; i < 3; i++) {
    buf c = buf_new(120 * fsq_dtype_size(to[i]));
    cpu->cast(to[i], c.h, FSQ_F32, x.h, 120);
    dev->cast(to[i], c.d, FSQ_F32, x.d, 120);
    expect_same("cast", &c);
    buf back = buf_new(120 * sizeof(float));
    cpu->cast(FSQ_F32, back.h, to[i], c.h, 120);
    dev->cast(FSQ_F32, back.d, to[i], c.d, 120);
    expect_same("cast back", &back);
    buf_free(&c);
    buf_free(&back);
  }
  buf_free(&x);
}

static void test_elementwise(void) {
  const int64_t shape[2] = {9, 11}, full[2] = {11, 1}, row[2] = {0, 1};
  buf a = buf_rand(99, 8, 0.5f, 2), b = buf_rand(11, 9, 0.5f, 2), o = buf_zeros(99);
  for (int op = FSQ_BIN_ADD; op <= FSQ_BIN_DIV; op++) {
    cpu->binary(FSQ_F32, (fsq_binop)op, 2, shape, o.h, a.h, full, b.h, row);
    dev->binary(dt, (fsq_binop)op, 2, shape, o.d, a.d, full, b.d, row);
    expect_close("binary", &o);
  }
  buf x = buf_rand(99, 10, -3, 3), pos = buf_rand(99, 11, 0.1f, 4), dy = buf_rand(99, 12, -1, 1);
  for (int op = FSQ_UN_SCALE; op <= FSQ_UN_LOG; op++) {
    buf *in = op == FSQ_UN_LOG ? &pos : &x;
    buf y = buf_zeros(99), dx = buf_rand(99, 13, -1, 1);
    cpu->unary(FSQ_F32, (fsq_unop)op, 99, y.h, in->h, 0.5);
    dev->unary(dt, (fsq_unop)op, 99, y.d, in->d, 0.5);
    expect_close("unary", &y);
    share(&y);
    cpu->unary_backward(FSQ_F32, (fsq_unop)op, 99, dx.h, dy.h, in->h, y.h, 0.5);
    dev->unary_backward(dt, (fsq_unop)op, 99, dx.d, dy.d, in->d, y.d, 0.5);
    expect_close("unary_backward", &dx);
    buf_free(&y);
    buf_free(&dx);
  }
  share(&o);
  cpu->axpy(FSQ_F32, 99, -1.5, x.h, o.h);
  dev->axpy(dt, 99, -1.5, x.d, o.d);
  expect_close("axpy", &o);
  cpu->relu_mask(FSQ_F32, 99, dy.h, x.h);
  dev->relu_mask(dt, 99, dy.d, x.d);
  expect_same("relu_mask", &dy);
  buf mask = buf_new(11);
  for (int j = 0; j < 11; j++) ((uint8_t *)mask.h)[j] = j % 3 == 0;
  buf_upload(&mask);
  /* -1e9 is -inf in f16 on both sides (the reference is rounded too) */
  cpu->masked_fill(FSQ_F32, 2, shape, o.h, x.h, mask.h, row, -1e9);
  dev->masked_fill(dt, 2, shape, o.d, x.d, mask.d, row, -1e9);
  expect_same("masked_fill", &o);
  buf *all[] = {&a, &b, &o, &x, &pos, &dy, &mask};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_reductions(void) {
  const int64_t O = 3, S = 17, I = 5;
  buf x = buf_rand((size_t)(O * S * I), 14, -4, 4), y = buf_zeros((size_t)(O * I));
  cpu->reduce_sum(FSQ_F32, O, S, I, y.h, x.h, 0.5);
  dev->reduce_sum(dt, O, S, I, y.d, x.d, 0.5);
  expect_close("reduce_sum", &y);
  buf am = buf_new((size_t)(O * I) * sizeof(int64_t));
  cpu->reduce_max(FSQ_F32, O, S, I, y.h, am.h, x.h);
  dev->reduce_max(dt, O, S, I, y.d, am.d, x.d);
  expect_same("reduce_max", &y);
  expect_same("reduce_max argmax", &am);
  buf dy = buf_rand((size_t)(O * I), 15, -1, 1), dx = buf_rand((size_t)(O * S * I), 16, -1, 1);
  cpu->reduce_max_backward(FSQ_F32, O, S, I, dx.h, dy.h, am.h);
  dev->reduce_max_backward(dt, O, S, I, dx.d, dy.d, am.d);
  expect_close("reduce_max_backward", &dx);
  buf *all[] = {&x, &y, &am, &dy, &dx};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_softmax_and_layer_norm(void) {
  const int64_t B = 2, H = 3, T = 4, S = 6, R = B * H * T;
  buf x = buf_rand((size_t)(R * S), 17, -5, 5), mask = buf_new((size_t)(B * S));
  ((uint8_t *)mask.h)[S - 1] = 1; /* batch 0's last key is padding */
  buf_upload(&mask);
  for (int variant = 0; variant < 4; variant++) {
    int log = variant & 1, causal = variant >> 1;
    buf y = buf_zeros((size_t)(R * S)), dy = buf_rand((size_t)(R * S), 18, -1, 1);
    buf dx = buf_rand((size_t)(R * S), 19, -1, 1);
    cpu->softmax(FSQ_F32, R, S, y.h, x.h, mask.h, H * T, T, causal, log);
    dev->softmax(dt, R, S, y.d, x.d, mask.d, H * T, T, causal, log);
    expect_close("softmax", &y);
    buf xi = buf_rand((size_t)(R * S), 17, -5, 5); /* x's values, overwritten */
    cpu->softmax(FSQ_F32, R, S, xi.h, xi.h, mask.h, H * T, T, causal, log);
    dev->softmax(dt, R, S, xi.d, xi.d, mask.d, H * T, T, causal, log);
    expect_close("softmax in place", &xi);
    buf_free(&xi);
    share(&y);
    cpu->softmax_backward(FSQ_F32, R, S, dx.h, dy.h, y.h, log);
    dev->softmax_backward(dt, R, S, dx.d, dy.d, y.d, log);
    expect_close("softmax_backward", &dx);
    buf_free(&y);
    buf_free(&dy);
    buf_free(&dx);
  }
  /* mean and rstd are f32 in every pass (fsq_kernels.h) */
  const int64_t rows = 33, C = 64;
  buf w = buf_rand(C, 20, 0.5f, 1.5f), b = buf_rand(C, 21, -0.5f, 0.5f);
  buf y = buf_zeros((size_t)(rows * C)), mean = buf_zeros_t(rows, FSQ_F32);
  buf rstd = buf_zeros_t(rows, FSQ_F32), xl = buf_rand((size_t)(rows * C), 22, -3, 3);
  cpu->layer_norm(FSQ_F32, rows, C, y.h, mean.h, rstd.h, xl.h, w.h, b.h, 1e-5);
  dev->layer_norm(dt, rows, C, y.d, mean.d, rstd.d, xl.d, w.d, b.d, 1e-5);
  expect_close("layer_norm", &y);
  expect_close("layer_norm mean", &mean);
  expect_close("layer_norm rstd", &rstd);
  buf dy = buf_rand((size_t)(rows * C), 23, -1, 1), dx = buf_rand((size_t)(rows * C), 24, -1, 1);
  buf dw = buf_rand(C, 25, -1, 1), db = buf_rand(C, 26, -1, 1);
  cpu->layer_norm_backward(FSQ_F32, rows, C, dx.h, dw.h, db.h, dy.h, xl.h, w.h, mean.h, rstd.h);
  dev->layer_norm_backward(dt, rows, C, dx.d, dw.d, db.d, dy.d, xl.d, w.d, mean.d, rstd.d);
  expect_close("layer_norm_backward dx", &dx);
  expect_close("layer_norm_backward dw", &dw);
  expect_close("layer_norm_backward db", &db);
  buf *all[] = {&x, &mask, &w, &b, &y, &mean, &rstd, &xl, &dy, &dx, &dw, &db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* Both sides compute x * scale in f32 and dev rounds it once, so the
 * rounded reference matches bit for bit in every dtype: the same elements
 * are kept, with the same values. */
static void test_dropout_matches_the_cpu_mask(void) {
  const int64_t n = 100003; /* not a multiple of any vector width */
  buf x = buf_rand((size_t)n, 27, -1, 1), y = buf_zeros((size_t)n);
  for (int acc = 0; acc < 2; acc++) {
    share(&y);
    cpu->dropout(FSQ_F32, n, y.h, x.h, 0.1, 1234, 99, acc);
    dev->dropout(dt, n, y.d, x.d, 0.1, 1234, 99, acc);
    expect_same("dropout", &y);
  }
  buf_free(&x);
  buf_free(&y);
}

static void test_embedding_index_select_gather(void) {
  const int64_t V = 11, Dm = 8, N = 40;
  buf w = buf_rand((size_t)(V * Dm), 28, -1, 1), idx = buf_i64((size_t)N, 29, V);
  buf out = buf_zeros((size_t)(N * Dm)), dy = buf_rand((size_t)(N * Dm), 30, -1, 1);
  buf dw = buf_rand((size_t)(V * Dm), 31, -1, 1);
  cpu->embedding(FSQ_F32, N, Dm, out.h, w.h, idx.h, 2.0);
  dev->embedding(dt, N, Dm, out.d, w.d, idx.d, 2.0);
  expect_same("embedding", &out);
  cpu->embedding_backward(FSQ_F32, N, Dm, dw.h, dy.h, idx.h, 1, 2.0);
  dev->embedding_backward(dt, N, Dm, dw.d, dy.d, idx.d, 1, 2.0);
  expect_close("embedding_backward", &dw);
  const int64_t O = 3, S = 5, I = 4, n = 7;
  buf x = buf_rand((size_t)(O * S * I), 32, -1, 1), sel = buf_i64((size_t)n, 33, S);
  buf o = buf_zeros((size_t)(O * n * I)), g = buf_rand((size_t)(O * n * I), 34, -1, 1);
  buf gx = buf_rand((size_t)(O * S * I), 35, -1, 1);
  cpu->index_select(FSQ_F32, O, S, I, o.h, x.h, sel.h, n);
  dev->index_select(dt, O, S, I, o.d, x.d, sel.d, n);
  expect_same("index_select", &o);
  cpu->index_select_backward(FSQ_F32, O, S, I, gx.h, g.h, sel.h, n);
  dev->index_select_backward(dt, O, S, I, gx.d, g.d, sel.d, n);
  expect_close("index_select_backward", &gx);
  share(&gx);
  buf gi = buf_i64((size_t)(O * n * I), 36, S);
  cpu->gather(FSQ_F32, O, S, I, n, o.h, x.h, gi.h);
  dev->gather(dt, O, S, I, n, o.d, x.d, gi.d);
  expect_same("gather", &o);
  cpu->gather_backward(FSQ_F32, O, S, I, n, gx.h, g.h, gi.h);
  dev->gather_backward(dt, O, S, I, n, gx.d, g.d, gi.d);
  expect_close("gather_backward", &gx);
  buf *all[] = {&w, &idx, &out, &dy, &dw, &x, &sel, &o, &g, &gx, &gi};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* With 16-bit lprobs or logits, lse, loss and nll are f32 (fsq_kernels.h);
 * the gradients keep the pass's dtype. */
static void test_losses(void) {
  const int64_t N = 13, V = 1000, ignore = 1;
  buf logits = buf_rand((size_t)(N * V), 37, -6, 6), target = buf_i64((size_t)N, 38, V);
  ((int64_t *)target.h)[4] = ignore;
  buf_upload(&target);
  buf lp = buf_zeros((size_t)(N * V));
  cpu->softmax(FSQ_F32, N, V, lp.h, logits.h, NULL, N, 1, 0, 1);
  buf_upload(&lp);
  buf loss = buf_zeros_t(1, FSQ_F32), nll = buf_zeros_t(1, FSQ_F32);
  buf lse = buf_zeros_t((size_t)N, FSQ_F32);
  cpu->label_smoothed_nll(FSQ_F32, N, V, lp.h, target.h, 0.1, ignore, loss.h, nll.h);
  dev->label_smoothed_nll(dt, N, V, lp.d, target.d, 0.1, ignore, loss.d, nll.d);
  expect_close("label_smoothed_nll loss", &loss);
  expect_close("label_smoothed_nll nll", &nll);
  buf d = buf_rand((size_t)(N * V), 39, -1, 1);
  cpu->label_smoothed_nll_backward(FSQ_F32, N, V, d.h, target.h, 0.1, ignore, 0.5, 0.25);
  dev->label_smoothed_nll_backward(dt, N, V, d.d, target.d, 0.1, ignore, 0.5, 0.25);
  expect_close("label_smoothed_nll_backward", &d);
  cpu->cross_entropy(FSQ_F32, N, V, logits.h, target.h, 0.1, ignore, lse.h, loss.h, nll.h);
  dev->cross_entropy(dt, N, V, logits.d, target.d, 0.1, ignore, lse.d, loss.d, nll.d);
  expect_close("cross_entropy lse", &lse);
  expect_close("cross_entropy loss", &loss);
  expect_close("cross_entropy nll", &nll);
  for (int acc = 0; acc < 2; acc++) {
    share(&d);
    cpu->cross_entropy_backward(FSQ_F32, N, V, d.h, logits.h, lse.h, target.h, 0.1, ignore, 0.5,
                                0.25, acc);
    dev->cross_entropy_backward(dt, N, V, d.d, logits.d, lse.d, target.d, 0.1, ignore, 0.5,
                                0.25, acc);
    expect_close("cross_entropy_backward", &d);
  }
  buf *all[] = {&logits, &target, &lp, &loss, &nll, &lse, &d};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* ---- the rounding rules of 16-bit storage (fsq_kernels.h), exactly ---------- */

/* n copies of v (representable in the pass's dtype), also in d. */
static buf buf_const(size_t n, float v) {
  buf b = buf_zeros(n);
  for (size_t i = 0; i < n; i++) ((float *)b.h)[i] = v;
  buf_upload(&b);
  return b;
}

/* n copies of the index v, also in d. */
static buf buf_index(size_t n, int64_t v) {
  buf b = buf_new(n * sizeof(int64_t));
  for (size_t i = 0; i < n; i++) ((int64_t *)b.h)[i] = v;
  buf_upload(&b);
  return b;
}

/* C = A B + C with C = 1 + u (u: the unit in the last place at 1) and
 * AB = (1 - 2^-2q) u / 2, just under half of u and not representable: the
 * exact sum rounds down to C, while rounding AB first (to u / 2) would make
 * a tie, which rounds to even, 1 + 2u. q keeps the deficit within f32. */
static void test_gemm_rounds_c_once(void) {
  int p = dt == FSQ_F16 ? 10 : 7, q = dt == FSQ_F16 ? 6 : 7;
  float u = ldexpf(1, -p), av = 1 + ldexpf(1, -q), bv = (1 - ldexpf(1, -q)) * u / 2;
  buf a = buf_const(2, av), b = buf_const(2, bv), c = buf_const(2, 1 + u);
  cpu->gemm(FSQ_F32, 0, 0, 1, 1, 1, 1.0, a.h, 1, b.h, 1, 1.0, c.h, 1);
  dev->gemm(dt, 0, 0, 1, 1, 1, 1.0, a.d, 1, b.d, 1, 1.0, c.d, 1);
  float twice = round_to(dt, round_to(dt, av * bv) + (1 + u));
  CU_ASSERT(round_to(dt, ((float *)c.h)[0]) != twice); /* the case tells the two apart */
  expect_same("gemm: C rounds once", &c);
  share(&c);
  const int64_t off[2] = {0, 1};
  cpu->gemm_batched(FSQ_F32, 0, 1, 1, 1, 1, 1.0, a.h, 1, off, b.h, 1, off, 1.0, c.h, 1, off, 2);
  dev->gemm_batched(dt, 0, 1, 1, 1, 1, 1.0, a.d, 1, off, b.d, 1, off, 1.0, c.d, 1, off, 2);
  expect_same("gemm_batched: C rounds once", &c);
  buf_free(&a);
  buf_free(&b);
  buf_free(&c);
}

/* 64 terms of 2^-12 added into 1: one f32 sum rounded once gives 1 + 2^-6
 * in both dtypes, while rounding at every addition would keep 1. The terms
 * of each output element come from positions that repeat one index (or
 * from a reduced dim), so a scatter-add must gather them before rounding. */
enum { REPEATS = 64, WIDTH = 4 };

static void test_scatter_adds_sum_in_f32(void) {
  CU_ASSERT(round_to(dt, 1 + ldexpf(1, -12)) == 1); /* each term alone is lost */
  const size_t n = (size_t)REPEATS * WIDTH;
  buf dy = buf_const(n + WIDTH, ldexpf(1, -12)), row2 = buf_index(n, 2);
  /* embedding: REPEATS + 1 positions into dw: [3, WIDTH], all at row 2 but
   * one at row 0, the padding, which adds nothing */
  buf idx = buf_index(REPEATS + 1, 2), dw = buf_const(3 * WIDTH, 1);
  ((int64_t *)idx.h)[3] = 0;
  buf_upload(&idx);
  cpu->embedding_backward(FSQ_F32, REPEATS + 1, WIDTH, dw.h, dy.h, idx.h, 0, 1.0);
  dev->embedding_backward(dt, REPEATS + 1, WIDTH, dw.d, dy.d, idx.d, 0, 1.0);
  expect_same("embedding_backward: repeated rows", &dw);
  /* index_select: dy: [2, REPEATS, WIDTH / 2] into dx: [2, 3, WIDTH / 2] */
  buf dx = buf_const(3 * WIDTH, 1);
  cpu->index_select_backward(FSQ_F32, 2, 3, WIDTH / 2, dx.h, dy.h, row2.h, REPEATS);
  dev->index_select_backward(dt, 2, 3, WIDTH / 2, dx.d, dy.d, row2.d, REPEATS);
  expect_same("index_select_backward: repeated rows", &dx);
  /* gather: dy: [1, REPEATS, WIDTH] into dx: [1, 3, WIDTH] */
  share(&dx);
  cpu->gather_backward(FSQ_F32, 1, 3, WIDTH, REPEATS, dx.h, dy.h, row2.h);
  dev->gather_backward(dt, 1, 3, WIDTH, REPEATS, dx.d, dy.d, row2.d);
  expect_same("gather_backward: repeated rows", &dx);
  /* accumulating copies into a stride-0 dst: [WIDTH], reduced over a
   * leading dim, then over the last one */
  buf r = buf_const(WIDTH, 1);
  const int64_t lead[2] = {REPEATS, WIDTH}, lead_dst[2] = {0, 1}, lead_src[2] = {WIDTH, 1};
  cpu->copy(FSQ_F32, 2, lead, r.h, lead_dst, dy.h, lead_src, 1);
  dev->copy(dt, 2, lead, r.d, lead_dst, dy.d, lead_src, 1);
  expect_same("copy: accumulate over a leading dim", &r);
  share(&r);
  const int64_t last[2] = {WIDTH, REPEATS}, last_dst[2] = {1, 0}, last_src[2] = {REPEATS, 1};
  cpu->copy(FSQ_F32, 2, last, r.h, last_dst, dy.h, last_src, 1);
  dev->copy(dt, 2, last, r.d, last_dst, dy.d, last_src, 1);
  expect_same("copy: accumulate over the last dim", &r);
  /* layer_norm's db: dy summed over REPEATS rows */
  buf x = buf_rand(n, 44, -1, 1), y = buf_zeros(n), db = buf_const(WIDTH, 1);
  buf mean = buf_zeros_t(REPEATS, FSQ_F32), rstd = buf_zeros_t(REPEATS, FSQ_F32);
  cpu->layer_norm(FSQ_F32, REPEATS, WIDTH, y.h, mean.h, rstd.h, x.h, NULL, NULL, 1e-5);
  dev->layer_norm(dt, REPEATS, WIDTH, y.d, mean.d, rstd.d, x.d, NULL, NULL, 1e-5);
  cpu->layer_norm_backward(FSQ_F32, REPEATS, WIDTH, NULL, NULL, db.h, dy.h, x.h, NULL, mean.h,
                           rstd.h);
  dev->layer_norm_backward(dt, REPEATS, WIDTH, NULL, NULL, db.d, dy.d, x.d, NULL, mean.d,
                           rstd.d);
  expect_same("layer_norm_backward: db", &db);
  buf *all[] = {&dy, &row2, &idx, &dw, &dx, &r, &x, &y, &db, &mean, &rstd};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* Rows of 63 ones and one 1 + 2^-7 (then twice that): the mean, 1 + 2^-13,
 * is exact in f32 and in neither 16-bit type, and so is the variance; with
 * eps 0, rstd = 2^13 / sqrt(63) is 1032.1, which 16-bit storage would move
 * by 1e-4 of itself. */
static void test_layer_norm_statistics_stay_f32(void) {
  enum { C = 64 };
  buf x = buf_zeros(2 * C), y = buf_zeros(2 * C);
  for (int j = 0; j < 2 * C; j++) {
    float v = j % C == 5 ? 1 + ldexpf(1, -7) : 1;
    ((float *)x.h)[j] = j < C ? v : 2 * v;
  }
  buf_upload(&x);
  buf mean = buf_zeros_t(2, FSQ_F32), rstd = buf_zeros_t(2, FSQ_F32);
  cpu->layer_norm(FSQ_F32, 2, C, y.h, mean.h, rstd.h, x.h, NULL, NULL, 0.0);
  dev->layer_norm(dt, 2, C, y.d, mean.d, rstd.d, x.d, NULL, NULL, 0.0);
  CU_ASSERT(((float *)mean.h)[0] == 1 + ldexpf(1, -13));
  expect_same("layer_norm mean (f32)", &mean);
  expect_within("layer_norm rstd (f32)", &rstd, TOL);
  expect_close("layer_norm", &y);
  buf *all[] = {&x, &y, &mean, &rstd};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

/* ---- the table ----------------------------------------------------------------- */
/* Every case runs once per pass through a wrapper that sets dt first (a
 * fatal assertion leaves a case early, without cleanup). */
#define FSQ_KCASES(X)                                                                            \
  X(test_gemm_and_batched_gemm)                                                                  \
  X(test_copy_and_fill)                                                                          \
  X(test_elementwise)                                                                            \
  X(test_reductions)                                                                             \
  X(test_softmax_and_layer_norm)                                                                 \
  X(test_dropout_matches_the_cpu_mask)                                                           \
  X(test_embedding_index_select_gather)                                                          \
  X(test_losses)
/* The rounding rules, which only 16-bit storage has. */
#define FSQ_KCASES_HALF(X)                                                                       \
  X(test_gemm_rounds_c_once)                                                                     \
  X(test_scatter_adds_sum_in_f32)                                                                \
  X(test_layer_norm_statistics_stay_f32)

#define IN_DTYPE(fn, t, suffix)                                                                  \
  static void fn##_##suffix(void) {                                                              \
    dt = t;                                                                                      \
    fn();                                                                                        \
  }
#define IN_F32(fn) IN_DTYPE(fn, FSQ_F32, f32)
#define IN_16BIT(fn) IN_DTYPE(fn, FSQ_F16, f16) IN_DTYPE(fn, FSQ_BF16, bf16)
#define CASE_F32(fn) FSQ_TEST_CASE(fn##_f32),
#define CASE_F16(fn) FSQ_TEST_CASE(fn##_f16),
#define CASE_BF16(fn) FSQ_TEST_CASE(fn##_bf16),

FSQ_KCASES(IN_F32)
FSQ_KCASES(IN_16BIT)
FSQ_KCASES_HALF(IN_16BIT)

static const fsq_test_case cases_f32[] = {FSQ_KCASES(CASE_F32) FSQ_TEST_CASE(test_cast),
                                          FSQ_TEST_END};
static const fsq_test_case cases_f16[] = {FSQ_KCASES(CASE_F16) FSQ_KCASES_HALF(CASE_F16)
                                              FSQ_TEST_END};
static const fsq_test_case cases_bf16[] = {FSQ_KCASES(CASE_BF16) FSQ_KCASES_HALF(CASE_BF16)
                                               FSQ_TEST_END};

static size_t count_cases(const fsq_test_case *c) {
  size_t n = 0;
  while (c[n].name) n++;
  return n;
}

int fsq_kcases_run(const char *suite, const fsq_kernels *backend, const fsq_dtype *passes,
                   int npasses) {
  static fsq_test_case all[3 * (sizeof cases_bf16 / sizeof cases_bf16[0])];
  size_t n = 0;
  cpu = fsq_kernels_cpu();
  dev = backend;
  for (int i = 0; i < npasses; i++) {
    const fsq_test_case *pass = passes[i] == FSQ_F32   ? cases_f32
                                : passes[i] == FSQ_F16 ? cases_f16
                                                       : cases_bf16;
    size_t k = count_cases(pass);
    if (n + k + 1 > sizeof all / sizeof all[0]) return 1; /* a pass given twice */
    memcpy(all + n, pass, k * sizeof *pass);
    n += k;
  }
  all[n] = (fsq_test_case)FSQ_TEST_END;
  return fsq_test_main(suite, all);
}
