/* cuda_math.cuh: the f32 / f64 overloads the CUDA kernels call. f32 uses
 * the CPU backend's own approximations (kernels/fsq_kernel_math.h), so both
 * backends compute the same bits and share their edges (exp clamps its
 * argument to [-87.3, 88.7]: exp(-inf) is 1.2e-38; NaN in, NaN out); f64
 * the C library, as the CPU's double kernels. */
#ifndef FSQ_CUDA_MATH_CUH
#define FSQ_CUDA_MATH_CUH

#include "kernels/fsq_kernel_math.h"

__device__ __forceinline__ float fsq_cu_exp(float x) { return fsq_k_expf(x); }
__device__ __forceinline__ float fsq_cu_tanh(float x) { return fsq_k_tanhf(x); }
__device__ __forceinline__ float fsq_cu_erf(float x) { return fsq_k_erff(x); }
__device__ __forceinline__ float fsq_cu_log(float x) { return logf(x); }
__device__ __forceinline__ float fsq_cu_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double fsq_cu_exp(double x) { return exp(x); }
__device__ __forceinline__ double fsq_cu_tanh(double x) { return tanh(x); }
__device__ __forceinline__ double fsq_cu_erf(double x) { return erf(x); }
__device__ __forceinline__ double fsq_cu_log(double x) { return log(x); }
__device__ __forceinline__ double fsq_cu_sqrt(double x) { return sqrt(x); }

#endif /* FSQ_CUDA_MATH_CUH */
