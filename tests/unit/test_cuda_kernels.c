/* test_cuda_kernels.c: every kernel of the CUDA table (fsq_kernels_cuda)
 * against the CPU backend's f32 kernels, in an f32 pass and again in f16
 * and in bf16: the cases of kernel_cases.c, which say the tolerances. The
 * 16-bit passes also check the exact rounding rules of fsq_kernels.h.
 * Without a GPU the suite reports SKIP (exit 77), as CI has none; the same
 * cases run on the CPU's own 16-bit path in test_kernels_half. */
#include <stdio.h>

#include "kernel_cases.h"
#include "kernels/cuda/fsq_cuda.h"

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
  static const fsq_dtype passes[] = {FSQ_F32, FSQ_F16, FSQ_BF16};
  return fsq_kcases_run("cuda_kernels", fsq_kernels_cuda(), passes, 3);
}
