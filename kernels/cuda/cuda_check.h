/* cuda_check.h: turning CUDA runtime errors into fsq_status with the call,
 * the file and line, and CUDA's own description. Private to kernels/cuda. */
#ifndef FSQ_CUDA_CHECK_H
#define FSQ_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "core/fsq_core.h"

static inline fsq_status fsq_cuda_status(cudaError_t err, const char *call, const char *file,
                                         int line) {
  if (err == cudaSuccess) return FSQ_OK;
  fsq_status code = err == cudaErrorMemoryAllocation ? FSQ_ERR_NOMEM : FSQ_ERR_IO;
  return fsq_error(code, "CUDA: %s failed at %s:%d: %s", call, file, line,
                   cudaGetErrorString(err));
}

#define FSQ_CUDA_CHECK(call) fsq_cuda_status((call), #call, __FILE__, __LINE__)

#endif
