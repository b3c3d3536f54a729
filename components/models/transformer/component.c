/* component.c: the transformer's descriptor: fairseq's TransformerModel
 * flags (fairseq/models/transformer/transformer_config.py) and its named
 * architectures (transformer_legacy.py). As in fairseq, the architecture
 * flags have no defaults of their own: the architecture functions give them,
 * each chaining to base_architecture ("transformer"). */
#include "components/models/transformer/transformer.h"
#include "registry/fsq_component.h"

static const char *const activations[] = {"relu", "gelu", "gelu_fast", "tanh", "linear", NULL};

static const fsq_option options[] = {
    {"activation-fn", FSQ_OPT_CHOICE, NULL, "activation function to use", activations, NULL},
    {"dropout", FSQ_OPT_FLOAT, NULL, "dropout probability", NULL, NULL},
    {"attention-dropout", FSQ_OPT_FLOAT, NULL, "dropout probability for attention weights",
     NULL, NULL},
    {"activation-dropout", FSQ_OPT_FLOAT, NULL, "dropout probability after activation in FFN.",
     NULL, NULL},
    {"encoder-embed-dim", FSQ_OPT_INT, NULL, "encoder embedding dimension", NULL, NULL},
    {"encoder-ffn-embed-dim", FSQ_OPT_INT, NULL, "encoder embedding dimension for FFN", NULL,
     NULL},
    {"encoder-layers", FSQ_OPT_INT, NULL, "num encoder layers", NULL, NULL},
    {"encoder-attention-heads", FSQ_OPT_INT, NULL, "num encoder attention heads", NULL, NULL},
    {"encoder-normalize-before", FSQ_OPT_BOOL, NULL, "apply layernorm before each encoder block",
     NULL, NULL},
    {"encoder-learned-pos", FSQ_OPT_BOOL, NULL,
     "use learned positional embeddings in the encoder", NULL, NULL},
    {"decoder-embed-dim", FSQ_OPT_INT, NULL, "decoder embedding dimension", NULL, NULL},
    {"decoder-ffn-embed-dim", FSQ_OPT_INT, NULL, "decoder embedding dimension for FFN", NULL,
     NULL},
    {"decoder-layers", FSQ_OPT_INT, NULL, "num decoder layers", NULL, NULL},
    {"decoder-attention-heads", FSQ_OPT_INT, NULL, "num decoder attention heads", NULL, NULL},
    {"decoder-normalize-before", FSQ_OPT_BOOL, NULL, "apply layernorm before each decoder block",
     NULL, NULL},
    {"decoder-learned-pos", FSQ_OPT_BOOL, NULL,
     "use learned positional embeddings in the decoder", NULL, NULL},
    {"decoder-output-dim", FSQ_OPT_INT, NULL,
     "decoder output dimension (extra linear layer if different from decoder embed dim)", NULL,
     NULL},
    /* fairseq's TransformerModel builds the decoder's embedding with
       decoder-embed-dim, so this flag (used by language models) changes
       nothing here; it is accepted so that fairseq command lines parse. */
    {"decoder-input-dim", FSQ_OPT_INT, NULL, "decoder input dimension", NULL, NULL},
    {"share-decoder-input-output-embed", FSQ_OPT_BOOL, NULL,
     "share decoder input and output embeddings", NULL, NULL},
    {"share-all-embeddings", FSQ_OPT_BOOL, NULL,
     "share encoder, decoder and output embeddings (requires shared dictionary and embed dim)",
     NULL, NULL},
    {"no-scale-embedding", FSQ_OPT_BOOL, NULL, "if True, dont scale embeddings", NULL, NULL},
    {"layernorm-embedding", FSQ_OPT_BOOL, NULL, "add layernorm to embedding", NULL, NULL},
    {"no-token-positional-embeddings", FSQ_OPT_BOOL, NULL,
     "if True, disables positional embeddings (outside self attention)", NULL, NULL},
    {"max-source-positions", FSQ_OPT_INT, "1024", "max number of tokens in the source sequence",
     NULL, NULL},
    {"max-target-positions", FSQ_OPT_INT, "1024", "max number of tokens in the target sequence",
     NULL, NULL},
    FSQ_OPTION_END};

/* base_architecture, in fairseq's order: a reference reads a value set above. */
static const fsq_arch_preset base_presets[] = {
    {"encoder-embed-dim", "512"},
    {"encoder-ffn-embed-dim", "2048"},
    {"encoder-layers", "6"},
    {"encoder-attention-heads", "8"},
    {"encoder-normalize-before", "False"},
    {"encoder-learned-pos", "False"},
    {"decoder-embed-dim", "@encoder-embed-dim"},
    {"decoder-ffn-embed-dim", "@encoder-ffn-embed-dim"},
    {"decoder-layers", "6"},
    {"decoder-attention-heads", "8"},
    {"decoder-normalize-before", "False"},
    {"decoder-learned-pos", "False"},
    {"attention-dropout", "0.0"},
    {"activation-dropout", "0.0"},
    {"activation-fn", "relu"},
    {"dropout", "0.1"},
    {"share-decoder-input-output-embed", "False"},
    {"share-all-embeddings", "False"},
    {"no-token-positional-embeddings", "False"},
    {"decoder-output-dim", "@decoder-embed-dim"},
    {"decoder-input-dim", "@decoder-embed-dim"},
    {"no-scale-embedding", "False"},
    {"layernorm-embedding", "False"},
    {NULL, NULL}};

static const fsq_arch_preset tiny_presets[] = {
    {"encoder-embed-dim", "64"},   {"encoder-ffn-embed-dim", "64"},
    {"encoder-layers", "2"},       {"encoder-attention-heads", "2"},
    {"decoder-layers", "2"},       {"decoder-attention-heads", "2"},
    {NULL, NULL}};

static const fsq_arch_preset iwslt_presets[] = {
    {"encoder-embed-dim", "512"},      {"encoder-ffn-embed-dim", "1024"},
    {"encoder-attention-heads", "4"},  {"encoder-layers", "6"},
    {"decoder-embed-dim", "512"},      {"decoder-ffn-embed-dim", "1024"},
    {"decoder-attention-heads", "4"},  {"decoder-layers", "6"},
    {NULL, NULL}};

static const fsq_arch_preset no_presets[] = {{NULL, NULL}};

static const fsq_arch_preset vaswani_big_presets[] = {
    {"encoder-embed-dim", "1024"},       {"encoder-ffn-embed-dim", "4096"},
    {"encoder-attention-heads", "16"},   {"encoder-normalize-before", "False"},
    {"decoder-embed-dim", "1024"},       {"decoder-ffn-embed-dim", "4096"},
    {"decoder-attention-heads", "16"},   {"dropout", "0.3"},
    {NULL, NULL}};

static const fsq_arch_preset en_fr_big_presets[] = {{"dropout", "0.1"}, {NULL, NULL}};

static const fsq_arch_preset en_de_big_presets[] = {{"attention-dropout", "0.1"}, {NULL, NULL}};

static const fsq_arch_preset t2t_presets[] = {
    {"encoder-normalize-before", "True"}, {"decoder-normalize-before", "True"},
    {"attention-dropout", "0.1"},         {"activation-dropout", "0.1"},
    {NULL, NULL}};

static const fsq_arch archs[] = {
    {"transformer", NULL, base_presets},
    {"transformer_tiny", "transformer", tiny_presets},
    {"transformer_iwslt_de_en", "transformer", iwslt_presets},
    {"transformer_wmt_en_de", "transformer", no_presets},
    {"transformer_vaswani_wmt_en_de_big", "transformer", vaswani_big_presets},
    {"transformer_vaswani_wmt_en_fr_big", "transformer_vaswani_wmt_en_de_big", en_fr_big_presets},
    {"transformer_wmt_en_de_big", "transformer_vaswani_wmt_en_de_big", en_de_big_presets},
    {"transformer_wmt_en_de_big_t2t", "transformer_vaswani_wmt_en_de_big", t2t_presets},
    FSQ_ARCH_END};

static const fsq_model_ops ops = {
    .build = tf_build,
    .destroy = tf_destroy,
    .forward = tf_forward,
    .max_positions = tf_max_positions,
    .decoder_state_create = tf_decoder_state_create,
    .decoder_state_destroy = tf_decoder_state_destroy,
    .encode = tf_encode_state,
    .reorder = tf_reorder,
    .decode_step = tf_decode_step,
};

static const fsq_component descriptor = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_MODEL,
    .name = "transformer",
    .version = FSQ_COMPONENT_VERSION,
    .description = "Transformer encoder-decoder (Vaswani et al., 2017), fairseq's TransformerModel",
    .options = options,
    .archs = archs,
    .ops_version = FSQ_MODEL_OPS_VERSION,
    .ops = &ops,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &descriptor; }
