/* kernel_cases.h: one table of kernel cases (kernel_cases.c), run against
 * any backend: every float kernel of the backend under test against the CPU
 * backend's f32 kernels on the same inputs, in f32 and in the 16-bit
 * storage types. test_kernels_half runs it on the CPU's own f16/bf16 path
 * (everywhere, CI included), test_cuda_kernels on the CUDA backend (where a
 * GPU is). */
#ifndef FSQ_TEST_KERNEL_CASES_H
#define FSQ_TEST_KERNEL_CASES_H

#include "fsq_test.h"
#include "kernels/fsq_kernels.h"

/* Runs the cases against dev once per dtype of passes (FSQ_F32, FSQ_F16,
 * FSQ_BF16; the f32 pass also checks cast) as the suite named suite, and
 * returns fsq_test_main's result. */
int fsq_kcases_run(const char *suite, const fsq_kernels *dev, const fsq_dtype *passes,
                   int npasses);

#endif
