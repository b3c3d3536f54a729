/* post_process.c: fairseq's data_utils.post_process, which --post-process
 * and --remove-bpe apply to detokenize generated text: subword-nmt "@@ "
 * continuations, sentencepiece's U+2581 word marks, wordpiece "_", letter
 * "|", "_EOW" word ends and "<SIL>" silence tokens. */
#include "generate/scoring_internal.h"

#include <string.h>

/* sentence.replace(" ", "").replace(mark, " ").strip() */
static fsq_status join_pieces(fsq_text *a, fsq_text *b, const char *mark, fsq_text *out) {
  if (fsq_text_replace(a, " ", "", b) != FSQ_OK || fsq_text_replace(b, mark, " ", a) != FSQ_OK)
    return fsq_error_code();
  size_t start, end;
  fsq_utf8_strip(a->data, a->len, 1, 1, &start, &end);
  out->len = 0;
  return fsq_text_append(out, a->data + start, end - start);
}

/* sentence.replace("<SIL>", ""), re.sub(" +", " ", sentence).strip() */
static fsq_status drop_silence(fsq_text *a, fsq_text *b, fsq_text *out) {
  if (fsq_text_replace(a, "<SIL>", "", b) != FSQ_OK) return fsq_error_code();
  a->len = 0;
  for (size_t i = 0; i < b->len; i++)
    if (!(b->data[i] == ' ' && i > 0 && b->data[i - 1] == ' ') &&
        fsq_text_append(a, b->data + i, 1) != FSQ_OK)
      return fsq_error_code();
  size_t start, end;
  fsq_utf8_strip(a->data, a->len, 1, 1, &start, &end);
  out->len = 0;
  return fsq_text_append(out, a->data + start, end - start);
}

/* (sentence + " ").replace(symbol, "").rstrip() */
static fsq_status drop_bpe(fsq_text *a, fsq_text *b, const char *symbol, fsq_text *out) {
  if (fsq_text_append(a, " ", 1) != FSQ_OK || fsq_text_replace(a, symbol, "", b) != FSQ_OK)
    return fsq_error_code();
  size_t start, end;
  fsq_utf8_strip(b->data, b->len, 0, 1, &start, &end);
  out->len = 0;
  return fsq_text_append(out, b->data, end);
}

fsq_status fsq_post_process(const char *sentence, size_t len, const char *symbol, fsq_text *out) {
  fsq_text a = {0}, b = {0};
  fsq_status st = fsq_text_append(&a, sentence, len);
  if (st != FSQ_OK) return st;
  if (symbol == NULL || strcmp(symbol, "none") == 0) {
    out->len = 0;
    st = fsq_text_append(out, a.data, a.len);
  } else if (strcmp(symbol, "sentencepiece") == 0) {
    st = join_pieces(&a, &b, "\xe2\x96\x81", out);
  } else if (strcmp(symbol, "wordpiece") == 0) {
    st = join_pieces(&a, &b, "_", out);
  } else if (strcmp(symbol, "letter") == 0) {
    st = join_pieces(&a, &b, "|", out);
  } else if (strcmp(symbol, "_EOW") == 0) {
    st = join_pieces(&a, &b, "_EOW", out);
  } else if (strcmp(symbol, "silence") == 0) {
    st = drop_silence(&a, &b, out);
  } else if (strcmp(symbol, "subword_nmt") == 0 || strcmp(symbol, "@@ ") == 0 ||
             strcmp(symbol, "@@") == 0) {
    st = drop_bpe(&a, &b, strcmp(symbol, "subword_nmt") == 0 ? "@@ " : symbol, out);
  } else {
    st = fsq_error(FSQ_ERR_INVALID, "Unknown post_process option: %s", symbol);
  }
  fsq_text_free(&a);
  fsq_text_free(&b);
  return st;
}
