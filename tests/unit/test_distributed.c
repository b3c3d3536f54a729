/* test_distributed.c: the world of size 1 (collectives are the identity,
 * nothing needs MPI) and the reducer's bookkeeping: buckets by cap, in-place
 * or packed, mark_ready order, wait, --update-freq's sync switch. The two-rank
 * behaviour is tested by tests/e2e/test_distributed.sh under mpirun. */
#include "fsq_test.h"
#include "train/fsq_distributed.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fsq_dist *open_world(void) {
  /* Started by make check, not mpirun: a world of size 1 in every build. */
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMIX_RANK");
  unsetenv("PMI_RANK");
  unsetenv("PMI_SIZE");
  fsq_dist *d = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_dist_init(NULL, &d), FSQ_OK);
  return d;
}

static void test_dist_without_mpirun_is_world_of_one(void) {
  fsq_dist *d = open_world();
  CU_ASSERT_EQUAL(fsq_dist_rank(d), 0);
  CU_ASSERT_EQUAL(fsq_dist_size(d), 1);
  CU_ASSERT_EQUAL(fsq_dist_local_rank(d), 0);
  CU_ASSERT_EQUAL(fsq_dist_local_size(d), 1);
  CU_ASSERT_FALSE(fsq_dist_uses_mpi(d));
  CU_ASSERT_EQUAL(fsq_dist_check(d), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_barrier(d), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_dist_collectives_of_one_rank_are_identity(void) {
  fsq_dist *d = open_world();
  float x[3] = {1.5f, -2.0f, 3.25f};
  double y[2] = {1e300, -7.0};
  char bytes[5] = "abcd";
  CU_ASSERT_EQUAL(fsq_dist_allreduce_f32(d, x, 3), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_allreduce_f64(d, y, 2), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_broadcast(d, bytes, 5, 0), FSQ_OK);
  CU_ASSERT(x[0] == 1.5f && x[1] == -2.0f && x[2] == 3.25f);
  CU_ASSERT(y[0] == 1e300 && y[1] == -7.0);
  CU_ASSERT_STRING_EQUAL(bytes, "abcd");
  CU_ASSERT_EQUAL(fsq_dist_broadcast(d, bytes, 5, 1), FSQ_ERR_INVALID); /* no rank 1 */
  CU_ASSERT_EQUAL(fsq_dist_check_same(d, bytes, 5, "configuration"), FSQ_OK);
  double sum = 0;
  int finite = 0;
  CU_ASSERT_EQUAL(fsq_dist_sum_finite(d, 2.5, &sum, &finite), FSQ_OK);
  CU_ASSERT(sum == 2.5 && finite);
  CU_ASSERT_EQUAL(fsq_dist_sum_finite(d, NAN, &sum, &finite), FSQ_OK);
  CU_ASSERT(isnan(sum) && !finite);
  CU_ASSERT_EQUAL(fsq_dist_sum_finite(d, -INFINITY, &sum, &finite), FSQ_OK);
  CU_ASSERT_FALSE(finite);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_reducer_fills_buckets_up_to_cap(void) {
  fsq_dist *d = open_world();
  /* One arena in backward order: 3, 5, 2, 40, 1, 1 floats. */
  float arena[52];
  size_t sizes[6] = {3, 5, 2, 40, 1, 1};
  fsq_grad_buffer g[6];
  size_t off = 0;
  for (int i = 0; i < 6; i++) {
    g[i] = (fsq_grad_buffer){arena + off, sizes[i]};
    off += sizes[i];
  }
  fsq_reducer *r = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_reducer_create(d, g, 6, 10 * sizeof(float), &r), FSQ_OK);
  /* {3,5,2} = 10 fits; 40 is over the cap: alone; {1,1}. */
  CU_ASSERT_EQUAL(fsq_reducer_num_buckets(r), 3);
  size_t want[6] = {0, 0, 0, 1, 2, 2};
  for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(fsq_reducer_bucket_of(r, i), want[i]);
  for (size_t k = 0; k < 3; k++) CU_ASSERT_TRUE(fsq_reducer_bucket_in_place(r, k));
  fsq_reducer_destroy(r);
  /* A cap below every buffer: one bucket per buffer. */
  CU_ASSERT_EQUAL_FATAL(fsq_reducer_create(d, g, 6, 1, &r), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_num_buckets(r), 6);
  fsq_reducer_destroy(r);
  CU_ASSERT_EQUAL(fsq_reducer_create(d, g, 6, 0, &r), FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_reducer_packs_buckets_that_are_not_contiguous(void) {
  fsq_dist *d = open_world();
  float a[4] = {1, 2, 3, 4}, b[2] = {5, 6}, c[8];
  fsq_grad_buffer g[3] = {{a, 4}, {b, 2}, {c, 3}}; /* a and b are separate arrays */
  fsq_reducer *r = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_reducer_create(d, g, 3, 1 << 20, &r), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_num_buckets(r), 1);
  CU_ASSERT_FALSE(fsq_reducer_bucket_in_place(r, 0));
  for (size_t i = 0; i < 3; i++) CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, i), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  CU_ASSERT(a[3] == 4 && b[1] == 6); /* the sum over one rank leaves them as they were */
  fsq_reducer_destroy(r);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_reducer_starts_buckets_in_order_as_they_become_ready(void) {
  fsq_dist *d = open_world();
  float arena[6];
  fsq_grad_buffer g[3] = {{arena, 2}, {arena + 2, 2}, {arena + 4, 2}};
  fsq_reducer *r = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_reducer_create(d, g, 3, 2 * sizeof(float), &r), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_num_buckets(r), 3);
  for (int step = 0; step < 2; step++) {
    CU_ASSERT_EQUAL(fsq_reducer_buckets_started(r), 0);
    /* Bucket 1 is ready first but must wait for bucket 0: ranks start
     * their reductions in the same order. */
    CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 1), FSQ_OK);
    CU_ASSERT_EQUAL(fsq_reducer_buckets_started(r), 0);
    CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 0), FSQ_OK);
    CU_ASSERT_EQUAL(fsq_reducer_buckets_started(r), 2);
    CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 0), FSQ_ERR_INVALID); /* twice */
    CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_ERR_INVALID);    /* 2 never marked */
    CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "gradient 2 (bucket 2)"));
    CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 2), FSQ_OK);
    CU_ASSERT_EQUAL(fsq_reducer_buckets_completed(r), 3);
    CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  }
  fsq_reducer_stats s = fsq_reducer_get_stats(r);
  CU_ASSERT_EQUAL(s.buckets, 3);
  CU_ASSERT_EQUAL(s.steps, 2);
  CU_ASSERT_EQUAL(s.started_before_wait, 6);
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 3), FSQ_ERR_INVALID);
  /* mark_rest: what backward never reached, after the ones it did */
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 1), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_mark_rest(r), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_buckets_started(r), 3);
  CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_mark_rest(r), FSQ_OK); /* all of them */
  CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_get_stats(r).steps, 4);
  fsq_reducer_destroy(r);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_reducer_without_sync_only_accumulates(void) {
  fsq_dist *d = open_world();
  float x[4] = {0};
  fsq_grad_buffer g[2] = {{x, 2}, {x + 2, 2}};
  fsq_reducer *r = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_reducer_create(d, g, 2, 4, &r), FSQ_OK);
  fsq_reducer_set_sync(r, 0); /* sub-batches before the last of --update-freq */
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 0), FSQ_OK); /* no bookkeeping at all */
  CU_ASSERT_EQUAL(fsq_reducer_buckets_started(r), 0);
  CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  fsq_reducer_set_sync(r, 1);
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 1), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_mark_ready(r, 0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_wait(r, 1.0), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_reducer_get_stats(r).steps, 1);
  fsq_reducer_destroy(r);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

static void test_dist_nccl_answers_when_not_built(void) {
  if (fsq_dist_nccl_available()) return; /* test_distributed_nccl covers GPU builds */
  fsq_dist *d = open_world();
  CU_ASSERT_EQUAL(fsq_dist_nccl_init(d, 0), FSQ_ERR_UNSUPPORTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "built without CUDA"));
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_dist_without_mpirun_is_world_of_one),
      FSQ_TEST_CASE(test_dist_collectives_of_one_rank_are_identity),
      FSQ_TEST_CASE(test_reducer_fills_buckets_up_to_cap),
      FSQ_TEST_CASE(test_reducer_packs_buckets_that_are_not_contiguous),
      FSQ_TEST_CASE(test_reducer_starts_buckets_in_order_as_they_become_ready),
      FSQ_TEST_CASE(test_reducer_without_sync_only_accumulates),
      FSQ_TEST_CASE(test_dist_nccl_answers_when_not_built),
      FSQ_TEST_END,
  };
  return fsq_test_main("distributed", cases);
}
