/* fsq_cuda.h: the CUDA backend's runtime pieces: device discovery, checked
 * calls, and the device memory arena (one cudaMalloc, bump allocation per
 * step). Built only with --with-cuda; callers test FSQ_HAVE_CUDA. */
#ifndef FSQ_CUDA_H
#define FSQ_CUDA_H

#include <stddef.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fsq_cuda_device_info {
  int index;
  char name[256];
  size_t total_memory; /* bytes */
  int multiprocessors;
  int major, minor; /* compute capability */
} fsq_cuda_device_info;

/* Number of usable GPUs; 0 (and FSQ_OK) where there is no driver or GPU. */
fsq_status fsq_cuda_device_count(int *count);
fsq_status fsq_cuda_device_info_get(int device, fsq_cuda_device_info *out);

/* Device memory arena: the whole capacity is taken once at creation, so a
 * training step never calls cudaMalloc; reset() frees every allocation. */
typedef struct fsq_cuda_arena fsq_cuda_arena;

fsq_cuda_arena *fsq_cuda_arena_create(int device, size_t capacity);
void fsq_cuda_arena_destroy(fsq_cuda_arena *arena);
/* Device pointer, or NULL with fsq_error set when the arena is full. */
void *fsq_cuda_arena_alloc(fsq_cuda_arena *arena, size_t bytes, size_t align);
void fsq_cuda_arena_reset(fsq_cuda_arena *arena);
size_t fsq_cuda_arena_used(const fsq_cuda_arena *arena);
size_t fsq_cuda_arena_capacity(const fsq_cuda_arena *arena);

/* The CUDA backend table (kernels/fsq_kernels.h) over device buffers: every
 * pointer a kernel takes is device memory, except gemm_batched's offset
 * arrays; shapes, strides and scalars are host values. Kernels run on the
 * default stream of the current device (cudaSetDevice). */
const struct fsq_kernels *fsq_kernels_cuda(void);
/* FSQ_OK, or the first CUDA or cuBLAS failure of a kernel since the last
 * call (the table's functions return nothing), naming the kernel. */
fsq_status fsq_kernels_cuda_status(void);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_CUDA_H */
