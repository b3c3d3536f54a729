/* generate_internal.h: shared between the files of framework/generate. */
#ifndef FSQ_GENERATE_INTERNAL_H
#define FSQ_GENERATE_INTERNAL_H

#include "generate/fsq_generate.h"

/* build_generator's checks of the options (see fsq_gen_options_from_cfg). */
fsq_status fsq_gen_options_check(const fsq_gen_options *opt);

#endif
