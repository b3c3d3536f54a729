/* cli_text.h: text helpers of the generation programs (fairseq-generate,
 * fairseq-interactive): Dictionary.string and Python's float repr. */
#ifndef FSQ_CLI_TEXT_H
#define FSQ_CLI_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "data/fsq_data.h"
#include "generate/fsq_scoring.h"

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

#endif
