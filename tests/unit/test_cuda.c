/* test_cuda.c: device discovery and the device memory arena. Without a GPU
 * the suite reports SKIP (exit 77) with a note, as CI has none. */
#include "fsq_test.h"
#include "kernels/cuda/fsq_cuda.h"

#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

static void test_cuda_device_info_is_plausible(void) {
  fsq_cuda_device_info info;
  CU_ASSERT_EQUAL_FATAL(fsq_cuda_device_info_get(0, &info), FSQ_OK);
  CU_ASSERT(strlen(info.name) > 0);
  CU_ASSERT(info.total_memory > 0);
  CU_ASSERT(info.multiprocessors > 0);
  CU_ASSERT(info.major >= 7);
}

static void test_cuda_arena_allocates_aligned_and_refuses_overflow(void) {
  fsq_cuda_arena *a = fsq_cuda_arena_create(0, 1 << 20);
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  unsigned char *p = fsq_cuda_arena_alloc(a, 1000, 256);
  unsigned char *q = fsq_cuda_arena_alloc(a, 4096, 1024);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(q);
  CU_ASSERT_EQUAL((size_t)q % 1024, 0);
  CU_ASSERT(q >= p + 1000);
  unsigned char host[4096], back[4096];
  for (int i = 0; i < 4096; i++) host[i] = (unsigned char)(i * 7);
  CU_ASSERT_EQUAL(cudaMemcpy(q, host, sizeof host, cudaMemcpyHostToDevice), cudaSuccess);
  CU_ASSERT_EQUAL(cudaMemcpy(back, q, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
  CU_ASSERT_EQUAL(memcmp(host, back, sizeof host), 0);
  CU_ASSERT_PTR_NULL(fsq_cuda_arena_alloc(a, 2 << 20, 256));
  CU_ASSERT_EQUAL(fsq_error_code(), FSQ_ERR_NOMEM);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "out of memory"));
  fsq_cuda_arena_reset(a);
  CU_ASSERT_EQUAL(fsq_cuda_arena_used(a), 0);
  CU_ASSERT_PTR_EQUAL(fsq_cuda_arena_alloc(a, 1000, 256), p);
  fsq_cuda_arena_destroy(a);
}

int main(void) {
  int n = 0;
  if (fsq_cuda_device_count(&n) != FSQ_OK) {
    fprintf(stderr, "test_cuda: %s\n", fsq_error_message());
    return 1;
  }
  if (n == 0) {
    printf("test_cuda: no CUDA device on this machine: skipped (these tests run where a GPU is)\n");
    return 77;
  }
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_cuda_device_info_is_plausible),
      FSQ_TEST_CASE(test_cuda_arena_allocates_aligned_and_refuses_overflow),
      FSQ_TEST_END};
  return fsq_test_main("cuda", cases);
}
