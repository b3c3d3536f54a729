/* cli_text.h: text helpers of the generation programs (fairseq-generate,
 * fairseq-interactive): Dictionary.string and Python's float repr. */
#ifndef FSQ_CLI_TEXT_H
#define FSQ_CLI_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "data/fsq_data.h"
#include "generate/fsq_scoring.h"
#include "registry/fsq_registry.h"

struct json_object;

typedef fsq_text fsq_cli_buf;
#define fsq_cli_buf_free fsq_text_free

/* Dictionary.string(strip_pad(tokens), post_process, escape_unk) into out:
 * pad, </s> and <s> are dropped, <unk> is "<unk>" ("<<unk>>" escaped),
 * words are joined by one space, then data_utils.post_process (symbol NULL:
 * none). tmp is scratch. tokens: [n] */
fsq_status fsq_cli_dict_string(const fsq_dictionary *d, const int64_t *tokens, int64_t n,
                               int escape_unk, const char *post_process, fsq_text *out,
                               fsq_text *tmp);

/* repr(x) of a Python float: the shortest digits that read back as x, fixed
 * notation for exponents -4..15 ("-0.5", "12.0"), else "1e-05", "1.5e+16". */
void fsq_cli_py_float_repr(double x, char *buf, size_t size);

/* fairseq's generation options (GenerationConfig), shared by fairseq-generate
 * and fairseq-interactive. */
#define FSQ_CLI_GENERATION_OPTIONS \
    {"beam", FSQ_OPT_INT, "5", "beam size", NULL, NULL}, \
    {"nbest", FSQ_OPT_INT, "1", "number of hypotheses to output", NULL, NULL}, \
    {"max-len-a", FSQ_OPT_FLOAT, "0", "generate sequences of maximum length ax + b, where x is the source length", NULL, NULL}, \
    {"max-len-b", FSQ_OPT_INT, "200", "generate sequences of maximum length ax + b, where x is the source length", NULL, NULL}, \
    {"min-len", FSQ_OPT_INT, "1", "minimum generation length", NULL, NULL}, \
    {"match-source-len", FSQ_OPT_BOOL, NULL, "generations should match the source length", NULL, NULL}, \
    {"unnormalized", FSQ_OPT_BOOL, NULL, "compare unnormalized hypothesis scores", NULL, NULL}, \
    {"lenpen", FSQ_OPT_FLOAT, "1", "length penalty: <1.0 favors shorter, >1.0 favors longer sentences", NULL, NULL}, \
    {"unkpen", FSQ_OPT_FLOAT, "0", "unknown word penalty: <0 produces more unks, >0 produces fewer", NULL, NULL}, \
    {"score-reference", FSQ_OPT_BOOL, NULL, "just score the reference translation", NULL, NULL}, \
    {"prefix-size", FSQ_OPT_INT, "0", "initialize generation by target prefix of given length", NULL, NULL}, \
    {"no-repeat-ngram-size", FSQ_OPT_INT, "0", "ngram blocking such that this size ngram cannot be repeated in the generation", NULL, NULL}, \
    {"sampling", FSQ_OPT_BOOL, NULL, "sample hypotheses instead of using beam search", NULL, NULL}, \
    {"sampling-topk", FSQ_OPT_INT, "-1", "sample from top K likely next words instead of all words", NULL, NULL}, \
    {"sampling-topp", FSQ_OPT_FLOAT, "-1.0", "sample from the smallest set whose cumulative probability mass exceeds p for next words", NULL, NULL}, \
    {"temperature", FSQ_OPT_FLOAT, "1.0", "temperature for generation", NULL, NULL}, \
    {"diverse-beam-groups", FSQ_OPT_INT, "-1", "number of groups for Diverse Beam Search", NULL, NULL}, \
    {"diverse-beam-strength", FSQ_OPT_FLOAT, "0.5", "strength of diversity penalty for Diverse Beam Search", NULL, NULL}, \
    {"diversity-rate", FSQ_OPT_FLOAT, "-1.0", "strength of diversity penalty for Diverse Siblings Search", NULL, NULL}

/* The options of the chosen task component that the user gave on the
 * command line (they replace the checkpoint's), as a new object. */
struct json_object *fsq_cli_task_overrides(const fsq_config *c, int argc, char **argv);

#endif
