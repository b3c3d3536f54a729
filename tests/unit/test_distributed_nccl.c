/* test_distributed_nccl.c: NCCL's communicator bootstrapped through fsq_dist
 * in a world of one rank, and an in-place all-reduce on the device (the sum
 * over one rank is the buffer itself). Needs a GPU: without one the suite
 * reports SKIP (exit 77), as CI has none. Multi-rank NCCL is not tested. */
#include "fsq_test.h"
#include "train/fsq_distributed.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

static void test_nccl_one_rank_allreduce_is_identity(void) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("PMIX_RANK");
  fsq_dist *d = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_dist_init(NULL, &d), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_nccl_allreduce_f32(d, NULL, 0, NULL), FSQ_ERR_INVALID); /* before init */
  CU_ASSERT_EQUAL_FATAL(fsq_dist_nccl_init(d, -1), FSQ_OK);
  enum { N = 1000 };
  float host[N], back[N];
  for (int i = 0; i < N; i++) host[i] = (float)i * 0.25f - 3.0f;
  float *dev = NULL;
  CU_ASSERT_EQUAL_FATAL(cudaMalloc((void **)&dev, sizeof host), cudaSuccess);
  CU_ASSERT_EQUAL(cudaMemcpy(dev, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
  CU_ASSERT_EQUAL(fsq_dist_nccl_allreduce_f32(d, dev, N, NULL), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_dist_nccl_synchronize(d), FSQ_OK);
  CU_ASSERT_EQUAL(cudaMemcpy(back, dev, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
  int same = 1;
  for (int i = 0; i < N; i++) same &= back[i] == host[i];
  CU_ASSERT_TRUE(same);
  cudaFree(dev);
  CU_ASSERT_EQUAL(fsq_dist_finalize(d), FSQ_OK);
}

int main(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    printf("test_distributed_nccl: no CUDA device on this machine: skipped (runs where a GPU is)\n");
    return 77;
  }
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_nccl_one_rank_allreduce_is_identity),
      FSQ_TEST_END};
  return fsq_test_main("distributed_nccl", cases);
}
