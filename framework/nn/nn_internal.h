/* nn_internal.h: helpers shared by the framework/nn sources. */
#ifndef FSQ_NN_INTERNAL_H
#define FSQ_NN_INTERNAL_H

#include "nn/fsq_nn.h"

#define FSQ_NN_NAME_MAX 512

/* "<prefix>.<name>" (or name alone when prefix is NULL or empty) into buf;
 * FSQ_ERR_INVALID when it does not fit. */
fsq_status fsq_nn_join(char *buf, const char *prefix, const char *name);
/* Registers a float32 parameter <prefix>.<name>; NULL with fsq_error set. */
fsq_tensor *fsq_nn_param(fsq_params *p, const char *prefix, const char *name, int ndim,
                         const int64_t *shape);

#endif
