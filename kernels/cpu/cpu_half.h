/* cpu_half.h: the CPU backend's f16 and bf16 storage (cpu_half.c), for
 * the float entries of cpu_isa.c and cpu_backend.c (not installed). */
#ifndef FSQ_CPU_HALF_H
#define FSQ_CPU_HALF_H

#include "kernels/fsq_kernels.h"

/* The float entries for 16-bit storage, with the CUDA backend's semantics
 * (fsq_kernels.h): operands widened to f32, the backend's own f32 entry
 * run on them, outputs rounded once to nearest even. The memory entries,
 * cast, index_select, gather, adam and sum_squares are NULL: the 16-bit
 * words of the first three move as they are, the last two are f32 only;
 * copy is here for accumulate only (a plain copy moves words). */
extern const fsq_kernels fsq_kcpu_half;

/* Each float entry tests this once, first, and hands 16-bit storage over. */
static inline int fsq_kcpu_is_half(fsq_dtype t) { return t == FSQ_F16 || t == FSQ_BF16; }

/* The CPU table's status entry: FSQ_ERR_NOMEM when the 16-bit path could
 * not grow its scratch since the last call (the entry then did nothing),
 * else FSQ_OK; the f32 and f64 kernels cannot fail. */
fsq_status fsq_kcpu_status(void);

#endif
