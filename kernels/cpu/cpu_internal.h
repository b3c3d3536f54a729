/* cpu_internal.h: what the CPU backend's files share (not installed). */
#ifndef FSQ_CPU_INTERNAL_H
#define FSQ_CPU_INTERNAL_H

#include "core/fsq_core.h"
#include "kernels/fsq_kernels.h"

/* Below this many elements a loop stays on one thread: waking the team
 * costs more than the work. */
#define FSQ_PAR_MIN 32768

/* Each ISA copy of cpu_isa.c fills the float kernels of a table. */
void fsq_kcpu_fill_generic(fsq_kernels *k);
void fsq_kcpu_fill_avx2(fsq_kernels *k);
void fsq_kcpu_fill_avx512(fsq_kernels *k);

#endif
