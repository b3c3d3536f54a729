/* cuda_arena.cu: the device memory arena (see fsq_cuda.h). */
#include <stdint.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fsq_cuda.h"

struct fsq_cuda_arena {
  int device;
  unsigned char *base; /* device memory */
  size_t capacity;
  size_t used;
};

fsq_cuda_arena *fsq_cuda_arena_create(int device, size_t capacity) {
  fsq_cuda_arena *a = (fsq_cuda_arena *)calloc(1, sizeof *a);
  if (a == NULL) {
    fsq_error(FSQ_ERR_NOMEM, "CUDA arena: out of host memory");
    return NULL;
  }
  a->device = device;
  a->capacity = capacity;
  if (FSQ_CUDA_CHECK(cudaSetDevice(device)) != FSQ_OK ||
      FSQ_CUDA_CHECK(cudaMalloc((void **)&a->base, capacity)) != FSQ_OK) {
    fsq_error_wrap(fsq_error_code(), "CUDA arena of %zu bytes on device %d", capacity, device);
    free(a);
    return NULL;
  }
  return a;
}

void fsq_cuda_arena_destroy(fsq_cuda_arena *a) {
  if (a == NULL) return;
  cudaFree(a->base);
  free(a);
}

void *fsq_cuda_arena_alloc(fsq_cuda_arena *a, size_t bytes, size_t align) {
  if (align < 256) align = 256; /* cudaMalloc's own alignment, good for vector loads */
  uintptr_t base = (uintptr_t)a->base;
  uintptr_t p = (base + a->used + align - 1) & ~(uintptr_t)(align - 1);
  size_t start = (size_t)(p - base);
  if (start + bytes > a->capacity) {
    fsq_error(FSQ_ERR_NOMEM,
              "CUDA arena on device %d: out of memory: need %zu bytes, %zu of %zu in use",
              a->device, bytes, a->used, a->capacity);
    return NULL;
  }
  a->used = start + bytes;
  return a->base + start;
}

void fsq_cuda_arena_reset(fsq_cuda_arena *a) { a->used = 0; }
size_t fsq_cuda_arena_used(const fsq_cuda_arena *a) { return a->used; }
size_t fsq_cuda_arena_capacity(const fsq_cuda_arena *a) { return a->capacity; }
