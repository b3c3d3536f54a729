/* test_cuda_kernels.c: every kernel of the CUDA table (fsq_kernels_cuda)
 * against the CPU backend on the same random inputs: f32 results within
 * 1e-5 of the tensor's scale (the largest reference magnitude), integer and
 * mask results (casts, argmax, dropout masks, index copies) exactly. Without
 * a GPU the suite reports SKIP (exit 77), as CI has none. */
#include "fsq_test.h"
#include "kernels/cuda/fsq_cuda.h"
#include "kernels/fsq_kernels.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

static const fsq_kernels *cpu, *gpu;

/* A buffer on both sides: h is the CPU backend's, d the GPU's; g receives d
 * for the comparison. */
typedef struct buf {
  void *h, *d, *g;
  size_t bytes;
} buf;

static buf buf_new(size_t bytes) {
  buf b = {calloc(1, bytes ? bytes : 1), NULL, calloc(1, bytes ? bytes : 1), bytes};
  CU_ASSERT_FATAL(b.h != NULL && b.g != NULL);
  CU_ASSERT_EQUAL_FATAL(cudaMalloc(&b.d, bytes ? bytes : 1), cudaSuccess);
  CU_ASSERT_EQUAL_FATAL(cudaMemset(b.d, 0, bytes ? bytes : 1), cudaSuccess);
  return b;
}

static void buf_upload(buf *b) {
  CU_ASSERT_EQUAL(cudaMemcpy(b->d, b->h, b->bytes, cudaMemcpyHostToDevice), cudaSuccess);
}

static void buf_free(buf *b) {
  free(b->h);
  free(b->g);
  cudaFree(b->d);
}

/* n uniform floats in [lo, hi), also on the device. */
static buf buf_f32(size_t n, unsigned seed, float lo, float hi) {
  buf b = buf_new(n * sizeof(float));
  float *x = b.h;
  srand(seed);
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)rand() / ((float)RAND_MAX + 1.0f);
  buf_upload(&b);
  return b;
}

/* n indices in [0, range), also on the device. */
static buf buf_i64(size_t n, unsigned seed, int64_t range) {
  buf b = buf_new(n * sizeof(int64_t));
  int64_t *x = b.h;
  srand(seed);
  for (size_t i = 0; i < n; i++) x[i] = rand() % range;
  buf_upload(&b);
  return b;
}

static void buf_download(buf *b) {
  CU_ASSERT_EQUAL(cudaDeviceSynchronize(), cudaSuccess);
  CU_ASSERT_EQUAL(fsq_kernels_cuda_status(), FSQ_OK);
  CU_ASSERT_EQUAL(cudaMemcpy(b->g, b->d, b->bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}

/* The GPU's f32 result against the CPU's, relative to the CPU's scale. */
static void expect_close(const char *what, buf *b) {
  buf_download(b);
  const float *ref = b->h, *got = b->g;
  size_t n = b->bytes / sizeof(float);
  double scale = 0, err = 0;
  for (size_t i = 0; i < n; i++) {
    if (isinf(ref[i]) || isinf(got[i])) {
      if (ref[i] != got[i]) err = INFINITY;
      continue;
    }
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    double e = fabs((double)ref[i] - (double)got[i]);
    if (e > err || e != e) err = e != e ? INFINITY : e;
  }
  double rel = scale > 0 ? err / scale : err;
  if (!(rel <= TOL)) fprintf(stderr, "%s: relative error %.3g (scale %.3g)\n", what, rel, scale);
  CU_ASSERT(rel <= TOL);
}

static void expect_same(const char *what, buf *b) {
  buf_download(b);
  int same = memcmp(b->h, b->g, b->bytes) == 0;
  if (!same) fprintf(stderr, "%s: GPU bytes differ from the CPU's\n", what);
  CU_ASSERT(same);
}

#define F(b) ((float *)(b).h)
#define D(b) ((b).d)

static void test_gemm_and_batched_gemm(void) {
  const int64_t m = 37, n = 53, k = 29;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      buf a = buf_f32((size_t)(m * k), 1, -1, 1), b = buf_f32((size_t)(k * n), 2, -1, 1);
      buf c = buf_f32((size_t)(m * n), 3, -1, 1);
      int64_t lda = ta ? m : k, ldb = tb ? k : n;
      cpu->gemm(FSQ_F32, ta, tb, m, n, k, 0.7, a.h, lda, b.h, ldb, 0.3, c.h, n);
      gpu->gemm(FSQ_F32, ta, tb, m, n, k, 0.7, a.d, lda, b.d, ldb, 0.3, c.d, n);
      expect_close("gemm", &c);
      buf_free(&a);
      buf_free(&b);
      buf_free(&c);
    }
  /* 3 products at irregular offsets, as attention heads are laid out */
  const int64_t a_off[3] = {0, 700, 350}, b_off[3] = {40, 0, 900}, c_off[3] = {0, 2000, 4000};
  buf a = buf_f32(2000, 4, -1, 1), b = buf_f32(2500, 5, -1, 1), c = buf_new(6000 * sizeof(float));
  cpu->gemm_batched(FSQ_F32, 0, 1, 12, 20, 16, 1.0, a.h, 16, a_off, b.h, 16, b_off, 0.0, c.h, 20,
                    c_off, 3);
  gpu->gemm_batched(FSQ_F32, 0, 1, 12, 20, 16, 1.0, a.d, 16, a_off, b.d, 16, b_off, 0.0, c.d, 20,
                    c_off, 3);
  expect_close("gemm_batched", &c);
  buf_free(&a);
  buf_free(&b);
  buf_free(&c);
}

static void test_copy_cast_fill(void) {
  /* a transposing copy, a broadcast, and a reduction into a stride-0 dst */
  const int64_t shape[3] = {4, 5, 6}, src_t[3] = {1, 4, 20}, dst_c[3] = {30, 6, 1};
  buf x = buf_f32(120, 6, -2, 2), y = buf_new(120 * sizeof(float));
  cpu->copy(FSQ_F32, 3, shape, y.h, dst_c, x.h, src_t, 0);
  gpu->copy(FSQ_F32, 3, shape, y.d, dst_c, x.d, src_t, 0);
  expect_same("copy (transpose)", &y);
  const int64_t bcast[3] = {0, 1, 0}, red[3] = {0, 1, 0};
  cpu->copy(FSQ_F32, 3, shape, y.h, dst_c, x.h, bcast, 1);
  gpu->copy(FSQ_F32, 3, shape, y.d, dst_c, x.d, bcast, 1);
  expect_close("copy (broadcast, accumulate)", &y);
  buf r = buf_f32(5, 7, 0, 1);
  cpu->copy(FSQ_F32, 3, shape, r.h, red, x.h, dst_c, 1);
  gpu->copy(FSQ_F32, 3, shape, r.d, red, x.d, dst_c, 1);
  expect_close("copy (reduce into stride 0)", &r);
  const fsq_dtype to[3] = {FSQ_F16, FSQ_BF16, FSQ_F64};
  for (int i = 0; i < 3; i++) {
    buf c = buf_new(120 * fsq_dtype_size(to[i]));
    cpu->cast(to[i], c.h, FSQ_F32, x.h, 120);
    gpu->cast(to[i], c.d, FSQ_F32, x.d, 120);
    expect_same("cast", &c);
    buf back = buf_new(120 * sizeof(float));
    cpu->cast(FSQ_F32, back.h, to[i], c.h, 120);
    gpu->cast(FSQ_F32, back.d, to[i], c.d, 120);
    expect_same("cast back", &back);
    buf_free(&c);
    buf_free(&back);
  }
  buf i = buf_new(33 * sizeof(double)); /* fill is a float kernel: f32 and f64 */
  cpu->fill(FSQ_F64, i.h, 33, 7.0);
  gpu->fill(FSQ_F64, i.d, 33, 7.0);
  expect_same("fill f64", &i);
  cpu->fill(FSQ_F32, y.h, 120, -0.25);
  gpu->fill(FSQ_F32, y.d, 120, -0.25);
  expect_same("fill f32", &y);
  buf_free(&x);
  buf_free(&y);
  buf_free(&r);
  buf_free(&i);
}

static void test_elementwise(void) {
  const int64_t shape[2] = {9, 11}, full[2] = {11, 1}, row[2] = {0, 1};
  buf a = buf_f32(99, 8, 0.5f, 2), b = buf_f32(11, 9, 0.5f, 2), o = buf_new(99 * sizeof(float));
  for (int op = FSQ_BIN_ADD; op <= FSQ_BIN_DIV; op++) {
    cpu->binary(FSQ_F32, (fsq_binop)op, 2, shape, o.h, a.h, full, b.h, row);
    gpu->binary(FSQ_F32, (fsq_binop)op, 2, shape, o.d, a.d, full, b.d, row);
    expect_close("binary", &o);
  }
  buf x = buf_f32(99, 10, -3, 3), pos = buf_f32(99, 11, 0.1f, 4), dy = buf_f32(99, 12, -1, 1);
  for (int op = FSQ_UN_SCALE; op <= FSQ_UN_LOG; op++) {
    buf *in = op == FSQ_UN_LOG ? &pos : &x;
    buf y = buf_new(99 * sizeof(float)), dx = buf_f32(99, 13, -1, 1);
    cpu->unary(FSQ_F32, (fsq_unop)op, 99, y.h, in->h, 0.5);
    gpu->unary(FSQ_F32, (fsq_unop)op, 99, y.d, in->d, 0.5);
    expect_close("unary", &y);
    cpu->unary_backward(FSQ_F32, (fsq_unop)op, 99, dx.h, dy.h, in->h, y.h, 0.5);
    gpu->unary_backward(FSQ_F32, (fsq_unop)op, 99, dx.d, dy.d, in->d, y.d, 0.5);
    expect_close("unary_backward", &dx);
    buf_free(&y);
    buf_free(&dx);
  }
  cpu->axpy(FSQ_F32, 99, -1.5, x.h, o.h);
  gpu->axpy(FSQ_F32, 99, -1.5, x.d, o.d);
  expect_close("axpy", &o);
  cpu->relu_mask(FSQ_F32, 99, dy.h, x.h);
  gpu->relu_mask(FSQ_F32, 99, dy.d, x.d);
  expect_same("relu_mask", &dy);
  buf mask = buf_new(11);
  for (int j = 0; j < 11; j++) ((uint8_t *)mask.h)[j] = j % 3 == 0;
  buf_upload(&mask);
  cpu->masked_fill(FSQ_F32, 2, shape, o.h, x.h, mask.h, row, -1e9);
  gpu->masked_fill(FSQ_F32, 2, shape, o.d, x.d, mask.d, row, -1e9);
  expect_same("masked_fill", &o);
  buf *all[] = {&a, &b, &o, &x, &pos, &dy, &mask};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_reductions(void) {
  const int64_t O = 3, S = 17, I = 5;
  buf x = buf_f32((size_t)(O * S * I), 14, -4, 4), y = buf_new((size_t)(O * I) * sizeof(float));
  cpu->reduce_sum(FSQ_F32, O, S, I, y.h, x.h, 0.5);
  gpu->reduce_sum(FSQ_F32, O, S, I, y.d, x.d, 0.5);
  expect_close("reduce_sum", &y);
  buf am = buf_new((size_t)(O * I) * sizeof(int64_t));
  cpu->reduce_max(FSQ_F32, O, S, I, y.h, am.h, x.h);
  gpu->reduce_max(FSQ_F32, O, S, I, y.d, am.d, x.d);
  expect_same("reduce_max", &y);
  expect_same("reduce_max argmax", &am);
  buf dy = buf_f32((size_t)(O * I), 15, -1, 1), dx = buf_f32((size_t)(O * S * I), 16, -1, 1);
  cpu->reduce_max_backward(FSQ_F32, O, S, I, dx.h, dy.h, am.h);
  gpu->reduce_max_backward(FSQ_F32, O, S, I, dx.d, dy.d, am.d);
  expect_close("reduce_max_backward", &dx);
  buf *all[] = {&x, &y, &am, &dy, &dx};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_softmax_and_layer_norm(void) {
  const int64_t B = 2, H = 3, T = 4, S = 6, R = B * H * T;
  buf x = buf_f32((size_t)(R * S), 17, -5, 5), mask = buf_new((size_t)(B * S));
  ((uint8_t *)mask.h)[S - 1] = 1; /* batch 0's last key is padding */
  buf_upload(&mask);
  for (int variant = 0; variant < 4; variant++) {
    int log = variant & 1, causal = variant >> 1;
    buf y = buf_new((size_t)(R * S) * sizeof(float)), dy = buf_f32((size_t)(R * S), 18, -1, 1);
    buf dx = buf_f32((size_t)(R * S), 19, -1, 1);
    cpu->softmax(FSQ_F32, R, S, y.h, x.h, mask.h, H * T, T, causal, log);
    gpu->softmax(FSQ_F32, R, S, y.d, x.d, mask.d, H * T, T, causal, log);
    expect_close("softmax", &y);
    cpu->softmax_backward(FSQ_F32, R, S, dx.h, dy.h, y.h, log);
    gpu->softmax_backward(FSQ_F32, R, S, dx.d, dy.d, y.d, log);
    expect_close("softmax_backward", &dx);
    buf_free(&y);
    buf_free(&dy);
    buf_free(&dx);
  }
  const int64_t rows = 33, C = 64;
  buf w = buf_f32(C, 20, 0.5f, 1.5f), b = buf_f32(C, 21, -0.5f, 0.5f);
  buf y = buf_new((size_t)(rows * C) * sizeof(float)), mean = buf_new(rows * sizeof(float));
  buf rstd = buf_new(rows * sizeof(float)), xl = buf_f32((size_t)(rows * C), 22, -3, 3);
  cpu->layer_norm(FSQ_F32, rows, C, y.h, mean.h, rstd.h, xl.h, w.h, b.h, 1e-5);
  gpu->layer_norm(FSQ_F32, rows, C, y.d, mean.d, rstd.d, xl.d, w.d, b.d, 1e-5);
  expect_close("layer_norm", &y);
  expect_close("layer_norm mean", &mean);
  expect_close("layer_norm rstd", &rstd);
  buf dy = buf_f32((size_t)(rows * C), 23, -1, 1), dx = buf_f32((size_t)(rows * C), 24, -1, 1);
  buf dw = buf_f32(C, 25, -1, 1), db = buf_f32(C, 26, -1, 1);
  cpu->layer_norm_backward(FSQ_F32, rows, C, dx.h, dw.h, db.h, dy.h, xl.h, w.h, mean.h, rstd.h);
  gpu->layer_norm_backward(FSQ_F32, rows, C, dx.d, dw.d, db.d, dy.d, xl.d, w.d, mean.d, rstd.d);
  expect_close("layer_norm_backward dx", &dx);
  expect_close("layer_norm_backward dw", &dw);
  expect_close("layer_norm_backward db", &db);
  buf *all[] = {&x, &mask, &w, &b, &y, &mean, &rstd, &xl, &dy, &dx, &dw, &db};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_dropout_matches_the_cpu_mask(void) {
  const int64_t n = 100003; /* not a multiple of any vector width */
  buf x = buf_f32((size_t)n, 27, -1, 1), y = buf_new((size_t)n * sizeof(float));
  for (int acc = 0; acc < 2; acc++) {
    cpu->dropout(FSQ_F32, n, y.h, x.h, 0.1, 1234, 99, acc);
    gpu->dropout(FSQ_F32, n, y.d, x.d, 0.1, 1234, 99, acc);
    expect_same("dropout", &y);
  }
  buf_free(&x);
  buf_free(&y);
}

static void test_embedding_index_select_gather(void) {
  const int64_t V = 11, Dm = 8, N = 40;
  buf w = buf_f32((size_t)(V * Dm), 28, -1, 1), idx = buf_i64((size_t)N, 29, V);
  buf out = buf_new((size_t)(N * Dm) * sizeof(float)), dy = buf_f32((size_t)(N * Dm), 30, -1, 1);
  buf dw = buf_f32((size_t)(V * Dm), 31, -1, 1);
  cpu->embedding(FSQ_F32, N, Dm, out.h, w.h, idx.h, 2.0);
  gpu->embedding(FSQ_F32, N, Dm, out.d, w.d, idx.d, 2.0);
  expect_same("embedding", &out);
  cpu->embedding_backward(FSQ_F32, N, Dm, dw.h, dy.h, idx.h, 1, 2.0);
  gpu->embedding_backward(FSQ_F32, N, Dm, dw.d, dy.d, idx.d, 1, 2.0);
  expect_close("embedding_backward", &dw);
  const int64_t O = 3, S = 5, I = 4, n = 7;
  buf x = buf_f32((size_t)(O * S * I), 32, -1, 1), sel = buf_i64((size_t)n, 33, S);
  buf o = buf_new((size_t)(O * n * I) * sizeof(float)), g = buf_f32((size_t)(O * n * I), 34, -1, 1);
  buf gx = buf_f32((size_t)(O * S * I), 35, -1, 1);
  cpu->index_select(FSQ_F32, O, S, I, o.h, x.h, sel.h, n);
  gpu->index_select(FSQ_F32, O, S, I, o.d, x.d, sel.d, n);
  expect_same("index_select", &o);
  cpu->index_select_backward(FSQ_F32, O, S, I, gx.h, g.h, sel.h, n);
  gpu->index_select_backward(FSQ_F32, O, S, I, gx.d, g.d, sel.d, n);
  expect_close("index_select_backward", &gx);
  buf gi = buf_i64((size_t)(O * n * I), 36, S);
  cpu->gather(FSQ_F32, O, S, I, n, o.h, x.h, gi.h);
  gpu->gather(FSQ_F32, O, S, I, n, o.d, x.d, gi.d);
  expect_same("gather", &o);
  cpu->gather_backward(FSQ_F32, O, S, I, n, gx.h, g.h, gi.h);
  gpu->gather_backward(FSQ_F32, O, S, I, n, gx.d, g.d, gi.d);
  expect_close("gather_backward", &gx);
  buf *all[] = {&w, &idx, &out, &dy, &dw, &x, &sel, &o, &g, &gx, &gi};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

static void test_losses(void) {
  const int64_t N = 13, V = 1000, ignore = 1;
  buf logits = buf_f32((size_t)(N * V), 37, -6, 6), target = buf_i64((size_t)N, 38, V);
  ((int64_t *)target.h)[4] = ignore;
  buf_upload(&target);
  buf lp = buf_new((size_t)(N * V) * sizeof(float));
  cpu->softmax(FSQ_F32, N, V, lp.h, logits.h, NULL, N, 1, 0, 1);
  buf_upload(&lp);
  buf loss = buf_new(sizeof(float)), nll = buf_new(sizeof(float)), lse = buf_new(N * sizeof(float));
  cpu->label_smoothed_nll(FSQ_F32, N, V, lp.h, target.h, 0.1, ignore, loss.h, nll.h);
  gpu->label_smoothed_nll(FSQ_F32, N, V, lp.d, target.d, 0.1, ignore, loss.d, nll.d);
  expect_close("label_smoothed_nll loss", &loss);
  expect_close("label_smoothed_nll nll", &nll);
  buf d = buf_f32((size_t)(N * V), 39, -1, 1);
  cpu->label_smoothed_nll_backward(FSQ_F32, N, V, d.h, target.h, 0.1, ignore, 0.5, 0.25);
  gpu->label_smoothed_nll_backward(FSQ_F32, N, V, d.d, target.d, 0.1, ignore, 0.5, 0.25);
  expect_close("label_smoothed_nll_backward", &d);
  cpu->cross_entropy(FSQ_F32, N, V, logits.h, target.h, 0.1, ignore, lse.h, loss.h, nll.h);
  gpu->cross_entropy(FSQ_F32, N, V, logits.d, target.d, 0.1, ignore, lse.d, loss.d, nll.d);
  expect_close("cross_entropy lse", &lse);
  expect_close("cross_entropy loss", &loss);
  expect_close("cross_entropy nll", &nll);
  for (int acc = 0; acc < 2; acc++) {
    cpu->cross_entropy_backward(FSQ_F32, N, V, d.h, logits.h, lse.h, target.h, 0.1, ignore, 0.5,
                                0.25, acc);
    gpu->cross_entropy_backward(FSQ_F32, N, V, d.d, logits.d, lse.d, target.d, 0.1, ignore, 0.5,
                                0.25, acc);
    expect_close("cross_entropy_backward", &d);
  }
  buf *all[] = {&logits, &target, &lp, &loss, &nll, &lse, &d};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) buf_free(all[i]);
}

int main(void) {
  int n = 0;
  if (fsq_cuda_device_count(&n) != FSQ_OK) {
    fprintf(stderr, "test_cuda_kernels: %s\n", fsq_error_message());
    return 1;
  }
  if (n == 0) {
    printf("test_cuda_kernels: no CUDA device on this machine: skipped (these tests run where a "
           "GPU is)\n");
    return 77;
  }
  cpu = fsq_kernels_cpu();
  gpu = fsq_kernels_cuda();
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_gemm_and_batched_gemm),
      FSQ_TEST_CASE(test_copy_cast_fill),
      FSQ_TEST_CASE(test_elementwise),
      FSQ_TEST_CASE(test_reductions),
      FSQ_TEST_CASE(test_softmax_and_layer_norm),
      FSQ_TEST_CASE(test_dropout_matches_the_cpu_mask),
      FSQ_TEST_CASE(test_embedding_index_select_gather),
      FSQ_TEST_CASE(test_losses),
      FSQ_TEST_END};
  return fsq_test_main("cuda_kernels", cases);
}
