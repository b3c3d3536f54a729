/* cli_device.c: the --cpu / --device choice and --fp16 / --bf16 (see
 * cli_device.h). */
#include "cli/cli_device.h"

#include <json-c/json.h>
#include <string.h>

#include "config.h"
#ifdef FSQ_HAVE_CUDA
#include "kernels/cuda/fsq_cuda.h"
#endif

const char *const fsq_cli_device_choices[] = {"cpu", "cuda", NULL};

static int flag_set(struct json_object *cfg, const char *key) {
  json_object *v = NULL;
  return json_object_object_get_ex(cfg, key, &v) && json_object_get_boolean(v);
}

/* The number of GPUs this build can use (0 without CUDA or a driver). */
static int gpu_count(void) {
#ifdef FSQ_HAVE_CUDA
  int n = 0;
  return fsq_cuda_device_count(&n) == FSQ_OK ? n : 0;
#else
  return 0;
#endif
}

static const fsq_kernels *gpu_backend(void) {
#ifdef FSQ_HAVE_CUDA
  return fsq_kernels_cuda();
#else
  return NULL;
#endif
}

fsq_status fsq_cli_device(struct json_object *cfg, const fsq_kernels **out) {
  const char *device = NULL;
  fsq_json_get_string(cfg, "device", &device);
  int cpu = flag_set(cfg, "cpu");
  if (cpu && device != NULL && strcmp(device, "cuda") == 0)
    return fsq_error(FSQ_ERR_INVALID, "--cpu and --device cuda contradict each other");
  if (cpu || (device != NULL && strcmp(device, "cpu") == 0)) {
    *out = fsq_kernels_cpu();
    return FSQ_OK;
  }
  int gpus = gpu_count();
  if (device != NULL && strcmp(device, "cuda") == 0 && gpus == 0)
    return fsq_error(FSQ_ERR_UNSUPPORTED, "--device cuda: %s",
                     gpu_backend() ? "no CUDA device found (driver and GPU visible?)"
                                   : "this build has no CUDA (configure --with-cuda)");
  *out = gpus > 0 ? gpu_backend() : fsq_kernels_cpu();
  return FSQ_OK;
}

fsq_status fsq_cli_precision(struct json_object *cfg, fsq_dtype *out) {
  int fp16 = flag_set(cfg, "fp16"), bf16 = flag_set(cfg, "bf16");
  if (fp16 && bf16) return fsq_error(FSQ_ERR_INVALID, "--fp16 and --bf16 cannot be used together");
  *out = fp16 ? FSQ_F16 : bf16 ? FSQ_BF16 : FSQ_F32;
  return FSQ_OK;
}
