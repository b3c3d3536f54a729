/* test_grads.c: gradient norm and clipping (fairseq's clip_grad_norm_) and
 * the dynamic loss scaler, traced by hand through fairseq's
 * optim/dynamic_loss_scaler.py. */
#include "fsq_test.h"
#include "train/fsq_grads.h"

#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

static void test_grads_norm_and_clip(void) {
  float a[2] = {3, 4}, b[1] = {12};
  fsq_grad_buffer g[2] = {{a, 2}, {b, 1}};
  CU_ASSERT_DOUBLE_EQUAL(fsq_grads_norm(g, 2), 13.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(fsq_grads_clip(g, 2, 0.0), 13.0, 1e-12); /* 0: no clipping */
  CU_ASSERT_EQUAL(a[0], 3.0f);
  CU_ASSERT_DOUBLE_EQUAL(fsq_grads_clip(g, 2, 20.0), 13.0, 1e-12); /* under the bound */
  CU_ASSERT_EQUAL(b[0], 12.0f);
  CU_ASSERT_DOUBLE_EQUAL(fsq_grads_clip(g, 2, 6.5), 13.0, 1e-12);
  CU_ASSERT_DOUBLE_EQUAL(a[0], 3.0 * 6.5 / (13.0 + 1e-6), 1e-6);
  CU_ASSERT_DOUBLE_EQUAL(fsq_grads_norm(g, 2), 6.5, 1e-5);
  b[0] = INFINITY;
  CU_ASSERT(isinf(fsq_grads_norm(g, 2)));
  b[0] = NAN;
  CU_ASSERT(isnan(fsq_grads_clip(g, 2, 1.0)));
}

static void test_grads_norm_of_large_buffer_is_thread_independent(void) {
  size_t n = 300001;
  float *x = malloc(n * sizeof *x);
  double want = 0;
  for (size_t i = 0; i < n; i++) {
    x[i] = (float)((i % 17) - 8) * 0.25f;
    want += (double)x[i] * x[i];
  }
  fsq_grad_buffer g = {x, n};
  double norm = fsq_grads_norm(&g, 1);
  CU_ASSERT_DOUBLE_EQUAL(norm, sqrt(want), 1e-9 * sqrt(want));
  omp_set_num_threads(1);
  CU_ASSERT_EQUAL(fsq_grads_norm(&g, 1), norm); /* bit for bit */
  omp_set_num_threads(2);
  CU_ASSERT_EQUAL(fsq_grads_norm(&g, 1), norm);
  fsq_grads_scale(&g, 1, 2.0f);
  CU_ASSERT_EQUAL(x[n - 1], 2.0f * (float)(((n - 1) % 17) - 8) * 0.25f);
  free(x);
}

static void test_loss_scaler_follows_fairseq(void) {
  fsq_loss_scaler s;
  fsq_loss_scaler_init(&s, 128, 2, 0.0, 0, 1.0);
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, 5.0), FSQ_OVERFLOW_NONE);
  fsq_loss_scaler_update(&s); /* iter 0: (0 - -1) % 2 != 0 */
  CU_ASSERT_EQUAL(s.loss_scale, 128);
  fsq_loss_scaler_update(&s); /* iter 1: (1 - -1) % 2 == 0: grow */
  CU_ASSERT_EQUAL(s.loss_scale, 256);
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, INFINITY), FSQ_OVERFLOW_SKIP); /* iter 2 */
  CU_ASSERT_EQUAL(s.loss_scale, 128);
  CU_ASSERT_EQUAL(s.iter, 3);
  fsq_loss_scaler_update(&s); /* iter 3: (3 - 2) % 2 != 0 */
  CU_ASSERT_EQUAL(s.loss_scale, 128);
  fsq_loss_scaler_update(&s); /* iter 4: (4 - 2) % 2 == 0 */
  CU_ASSERT_EQUAL(s.loss_scale, 256);

  json_object *state = NULL;
  CU_ASSERT_EQUAL(fsq_loss_scaler_save(&s, &state), FSQ_OK);
  fsq_loss_scaler t;
  fsq_loss_scaler_init(&t, 1, 2, 0.0, 0, 1.0);
  CU_ASSERT_EQUAL(fsq_loss_scaler_load(&t, state), FSQ_OK);
  CU_ASSERT_EQUAL(t.loss_scale, 256);
  CU_ASSERT_EQUAL(t.iter, s.iter);
  CU_ASSERT_EQUAL(t.last_overflow_iter, 2);
  json_object_put(state);

  fsq_loss_scaler_init(&s, 2, 100, 0.0, 0, 1.0);
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, NAN), FSQ_OVERFLOW_MIN_REACHED);
  CU_ASSERT_EQUAL(s.loss_scale, 2); /* restored, as fairseq does before raising */
}

static void test_loss_scaler_tolerance_and_threshold(void) {
  fsq_loss_scaler s;
  fsq_loss_scaler_init(&s, 64, 1000, 0.5, 16, 1e-4);
  fsq_loss_scaler_update(&s);
  fsq_loss_scaler_update(&s);
  fsq_loss_scaler_update(&s); /* iter 3, last rescale -1 */
  /* 1 overflow in 4 iterations since the rescale: 0.25 < 0.5, keep the scale */
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, INFINITY), FSQ_OVERFLOW_SKIP);
  CU_ASSERT_EQUAL(s.loss_scale, 64);
  /* 2 in 5: 0.4 < 0.5 */
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, INFINITY), FSQ_OVERFLOW_SKIP);
  CU_ASSERT_EQUAL(s.loss_scale, 64);
  /* 3 in 6: 0.5 >= 0.5: halve */
  CU_ASSERT_EQUAL(fsq_loss_scaler_check(&s, INFINITY), FSQ_OVERFLOW_SKIP);
  CU_ASSERT_EQUAL(s.loss_scale, 32);
  fsq_loss_scaler_init(&s, 20, 1000, 0.0, 16, 1e-4);
  fsq_loss_scaler_check(&s, INFINITY);
  CU_ASSERT_EQUAL(s.loss_scale, 16); /* 10, raised to the threshold */
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_grads_norm_and_clip),
      FSQ_TEST_CASE(test_grads_norm_of_large_buffer_is_thread_independent),
      FSQ_TEST_CASE(test_loss_scaler_follows_fairseq),
      FSQ_TEST_CASE(test_loss_scaler_tolerance_and_threshold),
      FSQ_TEST_END};
  return fsq_test_main("grads", cases);
}
