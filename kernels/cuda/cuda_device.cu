/* cuda_device.cu: which GPUs there are, with checked CUDA calls. */
#include <string.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fsq_cuda.h"

fsq_status fsq_cuda_device_count(int *count) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  /* No driver or no device is an answer (zero GPUs), not a failure. */
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    *count = 0;
    return FSQ_OK;
  }
  fsq_status st = FSQ_CUDA_CHECK(err);
  *count = st == FSQ_OK ? n : 0;
  return st;
}

fsq_status fsq_cuda_device_info_get(int device, fsq_cuda_device_info *out) {
  cudaDeviceProp prop;
  fsq_status st = FSQ_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (st != FSQ_OK) return st;
  memset(out, 0, sizeof *out);
  out->index = device;
  strncpy(out->name, prop.name, sizeof out->name - 1);
  out->total_memory = prop.totalGlobalMem;
  out->multiprocessors = prop.multiProcessorCount;
  out->major = prop.major;
  out->minor = prop.minor;
  return FSQ_OK;
}
