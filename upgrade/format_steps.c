/* format_steps.c: the table of framework format steps. Each step lives in
 * its own file (upgrade/format_<N>_to_<N+1>.c) and is listed here in order.
 * Format 1 is the first .fsq format, so there is none yet. */
#include "upgrade/fsq_upgrade.h"

const fsq_format_step fsq_format_steps[] = {
    {0, 0, NULL, NULL},
};
