/* ffn.c: activations by fairseq name and the position-wise feed-forward
 * block of a transformer layer (fc1, activation, activation dropout, fc2). */
#include "nn/nn_internal.h"

#include <string.h>

int fsq_nn_activation_from_name(const char *name) {
  static const struct {
    const char *name;
    fsq_nn_activation act;
  } table[] = {{"relu", FSQ_NN_RELU},          {"gelu", FSQ_NN_GELU},
               {"gelu_fast", FSQ_NN_GELU_FAST}, {"gelu_accurate", FSQ_NN_GELU_FAST},
               {"tanh", FSQ_NN_TANH},           {"linear", FSQ_NN_LINEAR}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (name && strcmp(name, table[i].name) == 0) return (int)table[i].act;
  return -1;
}

fsq_tensor *fsq_nn_activate(fsq_ctx *ctx, fsq_nn_activation act, fsq_tensor *x) {
  switch (act) {
  case FSQ_NN_RELU: return fsq_relu(ctx, x);
  case FSQ_NN_GELU: return fsq_gelu(ctx, x);
  case FSQ_NN_GELU_FAST: return fsq_gelu_tanh(ctx, x);
  case FSQ_NN_TANH: return fsq_tanh(ctx, x);
  case FSQ_NN_LINEAR: return x;
  }
  fsq_error(FSQ_ERR_INVALID, "nn: unknown activation %d", (int)act);
  return NULL;
}

fsq_status fsq_nn_ffn_build(fsq_nn_ffn *f, fsq_params *p, const char *prefix, int64_t dim,
                            int64_t ffn_dim, fsq_nn_activation act, double activation_dropout,
                            uint64_t seed) {
  char sub[FSQ_NN_NAME_MAX];
  f->activation = act;
  f->activation_dropout = activation_dropout;
  fsq_status st = fsq_nn_join(sub, prefix, "fc1");
  if (st == FSQ_OK) st = fsq_nn_linear_build(&f->fc1, p, sub, dim, ffn_dim, 1, FSQ_NN_INIT_TORCH, seed);
  if (st == FSQ_OK) st = fsq_nn_join(sub, prefix, "fc2");
  if (st == FSQ_OK) st = fsq_nn_linear_build(&f->fc2, p, sub, ffn_dim, dim, 1, FSQ_NN_INIT_TORCH, seed);
  return st;
}

fsq_tensor *fsq_nn_ffn_forward(fsq_ctx *ctx, const fsq_nn_ffn *f, fsq_tensor *x) {
  /* ReLU is fused into fc1 (one stored [.., ffn_dim] activation, not three) */
  fsq_tensor *h = f->activation == FSQ_NN_RELU
                      ? fsq_linear(ctx, x, f->fc1.weight, f->fc1.bias, 1)
                      : fsq_nn_activate(ctx, f->activation, fsq_nn_linear_forward(ctx, &f->fc1, x));
  h = fsq_dropout(ctx, h, f->activation_dropout);
  return fsq_nn_linear_forward(ctx, &f->fc2, h);
}
