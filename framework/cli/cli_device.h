/* cli_device.h: where a program computes, and in what precision. fairseq
 * uses the GPU when one is present unless --cpu is given; fairseq-c adds
 * --device cpu|cuda to ask for one explicitly (and to fail, naming the
 * reason, when it cannot). --fp16 and --bf16 are fairseq's. */
#ifndef FSQ_CLI_DEVICE_H
#define FSQ_CLI_DEVICE_H

#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"

struct json_object;

/* The option for a program's table: {"device", FSQ_OPT_CHOICE, ...}. */
extern const char *const fsq_cli_device_choices[];

/* The backend for cfg's "cpu" and "device" keys: --cpu or --device cpu: the
 * CPU; --device cuda: the first GPU (an error naming the flag when this
 * build has no CUDA or no GPU is found); neither: the GPU when this build
 * has CUDA and a GPU is present, else the CPU. */
fsq_status fsq_cli_device(struct json_object *cfg, const fsq_kernels **out);

/* fairseq's --fp16 and --bf16 (CommonConfig) for a program's table. */
#define FSQ_CLI_PRECISION_OPTIONS \
    {"fp16", FSQ_OPT_BOOL, NULL, "use FP16", NULL, NULL}, \
    {"bf16", FSQ_OPT_BOOL, NULL, "use bfloat16", NULL, NULL}

/* The model's dtype for cfg's "fp16" and "bf16" keys: FSQ_F16, FSQ_BF16,
 * or FSQ_F32 without either; both at once: an error. On the CPU too, as
 * fairseq allows it (the CPU kernels widen 16-bit values to f32 and round
 * what they store: the same numbers as on a GPU, slowly). */
fsq_status fsq_cli_precision(struct json_object *cfg, fsq_dtype *out);

#endif /* FSQ_CLI_DEVICE_H */
