/* config.c: the resolved configuration (json, keyed like fairseq's args)
 * into the transformer's hyper-parameters, with fairseq's fallbacks for
 * values an architecture leaves unset. */
#include "components/models/transformer/transformer.h"

#include <json-c/json.h>
#include <string.h>

static int is_null(json_object *cfg, const char *key) {
  json_object *v = NULL;
  return !json_object_object_get_ex(cfg, key, &v) || v == NULL;
}

/* An integer, or fallback when the key is absent or null. */
static fsq_status get_int(json_object *cfg, const char *key, int64_t fallback, int64_t *out) {
  if (is_null(cfg, key)) {
    *out = fallback;
    return FSQ_OK;
  }
  return fsq_json_get_int64(cfg, key, out);
}

/* A bool; absent or null is false (argparse's store_true). */
static fsq_status get_bool(json_object *cfg, const char *key, int *out) {
  if (is_null(cfg, key)) {
    *out = 0;
    return FSQ_OK;
  }
  return fsq_json_get_bool(cfg, key, out);
}

static fsq_status read_side(json_object *cfg, const char *side, tf_side_config *s) {
  static const char *const int_keys[] = {"embed_dim", "ffn_embed_dim", "layers",
                                         "attention_heads"};
  int64_t *ints[] = {&s->embed_dim, &s->ffn_embed_dim, &s->layers, &s->attention_heads};
  char key[64];
  fsq_status st = FSQ_OK;
  for (int i = 0; i < 4 && st == FSQ_OK; i++) {
    snprintf(key, sizeof key, "%s_%s", side, int_keys[i]);
    st = fsq_json_get_int64(cfg, key, ints[i]);
    if (st == FSQ_OK && *ints[i] <= 0)
      st = fsq_error(FSQ_ERR_INVALID, "--%s-%s must be positive", side, int_keys[i]);
  }
  snprintf(key, sizeof key, "%s_normalize_before", side);
  if (st == FSQ_OK) st = get_bool(cfg, key, &s->normalize_before);
  snprintf(key, sizeof key, "%s_learned_pos", side);
  if (st == FSQ_OK) st = get_bool(cfg, key, &s->learned_pos);
  snprintf(key, sizeof key, "max_%s_positions", strcmp(side, "encoder") == 0 ? "source" : "target");
  if (st == FSQ_OK) st = get_int(cfg, key, 1024, &s->max_positions);
  if (st == FSQ_OK && s->embed_dim % s->attention_heads != 0)
    st = fsq_error(FSQ_ERR_INVALID, "--%s-embed-dim %lld is not divisible by --%s-attention-heads %lld",
                   side, (long long)s->embed_dim, side, (long long)s->attention_heads);
  return st;
}

static fsq_status read_flags(json_object *cfg, tf_config *c) {
  static const char *const keys[] = {"share_decoder_input_output_embed", "share_all_embeddings",
                                     "no_scale_embedding", "layernorm_embedding",
                                     "no_token_positional_embeddings"};
  int *flags[] = {&c->share_decoder_input_output_embed, &c->share_all_embeddings,
                  &c->no_scale_embedding, &c->layernorm_embedding,
                  &c->no_token_positional_embeddings};
  fsq_status st = FSQ_OK;
  for (int i = 0; i < 5 && st == FSQ_OK; i++) st = get_bool(cfg, keys[i], flags[i]);
  return st;
}

static fsq_status read_dropouts(json_object *cfg, tf_config *c) {
  static const char *const keys[] = {"dropout", "attention_dropout", "activation_dropout"};
  double *vals[] = {&c->dropout, &c->attention_dropout, &c->activation_dropout};
  for (int i = 0; i < 3; i++) {
    if (is_null(cfg, keys[i])) {
      *vals[i] = 0.0;
      continue;
    }
    fsq_status st = fsq_json_get_double(cfg, keys[i], vals[i]);
    if (st != FSQ_OK) return st;
    if (!(*vals[i] >= 0.0 && *vals[i] < 1.0))
      return fsq_error(FSQ_ERR_INVALID, "--%s must lie in [0, 1)", keys[i]);
  }
  return FSQ_OK;
}

fsq_status tf_config_read(json_object *cfg, tf_config *c) {
  memset(c, 0, sizeof *c);
  fsq_status st = read_side(cfg, "encoder", &c->enc);
  if (st == FSQ_OK) st = read_side(cfg, "decoder", &c->dec);
  if (st == FSQ_OK) st = get_int(cfg, "decoder_output_dim", c->dec.embed_dim, &c->decoder_output_dim);
  if (st == FSQ_OK) st = read_flags(cfg, c);
  if (st == FSQ_OK) st = read_dropouts(cfg, c);
  const char *act = "relu";
  if (st == FSQ_OK && !is_null(cfg, "activation_fn")) st = fsq_json_get_string(cfg, "activation_fn", &act);
  if (st != FSQ_OK) return fsq_error_wrap(st, "transformer");
  int a = fsq_nn_activation_from_name(act);
  if (a < 0) return fsq_error(FSQ_ERR_INVALID, "transformer: unknown --activation-fn %s", act);
  c->activation = (fsq_nn_activation)a;
  if (c->decoder_output_dim <= 0)
    return fsq_error(FSQ_ERR_INVALID, "transformer: --decoder-output-dim must be positive");
  if (c->share_all_embeddings) c->share_decoder_input_output_embed = 1; /* as fairseq */
  return FSQ_OK;
}
