/* test_kernels_half.c: the CPU backend's f16 and bf16 storage (cpu_half.c)
 * against its own f32 kernels on the same, rounded, inputs: the cases of
 * kernel_cases.c (which test_cuda_kernels runs on a GPU), in an f16 and a
 * bf16 pass, with the exact rounding rules of fsq_kernels.h. Runs
 * everywhere, so mixed-precision code is checked without a GPU. */
#include "kernel_cases.h"

int main(void) {
  static const fsq_dtype passes[] = {FSQ_F16, FSQ_BF16};
  return fsq_kcases_run("kernels_half", fsq_kernels_cpu(), passes, 2);
}
