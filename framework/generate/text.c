/* text.c: growable buffers and the str methods the scoring files share
 * (replace, strip), on bytes: their arguments here are ASCII or whole
 * UTF-8 sequences, so byte matching equals code point matching. */
#include "generate/scoring_internal.h"

#include <stdlib.h>
#include <string.h>

fsq_status fsq_grow(void **items, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return FSQ_OK;
  size_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *p = realloc(*items, c * elem);
  if (p == NULL) return fsq_error(FSQ_ERR_NOMEM, "scoring: out of memory");
  *items = p;
  *cap = c;
  return FSQ_OK;
}

fsq_status fsq_text_reserve(fsq_text *text, size_t extra) {
  void *p = text->data;
  fsq_status st = fsq_grow(&p, &text->cap, text->len + extra + 1, 1);
  text->data = p;
  return st;
}

fsq_status fsq_text_append(fsq_text *text, const char *s, size_t len) {
  if (fsq_text_reserve(text, len) != FSQ_OK) return fsq_error_code();
  memcpy(text->data + text->len, s, len);
  text->len += len;
  text->data[text->len] = '\0';
  return FSQ_OK;
}

void fsq_text_free(fsq_text *text) {
  free(text->data);
  text->data = NULL;
  text->len = text->cap = 0;
}

/* str.replace(from, to) of in into out: memchr to the next candidate, then
 * copy whole runs, since most lines hold no occurrence at all. */
fsq_status fsq_text_replace(const fsq_text *in, const char *from, const char *to, fsq_text *out) {
  size_t flen = strlen(from), tlen = strlen(to);
  if (flen == 0) return fsq_error(FSQ_ERR_INTERNAL, "text: replacing the empty string");
  out->len = 0;
  if (fsq_text_reserve(out, in->len) != FSQ_OK) return fsq_error_code();
  size_t i = 0, copied = 0;
  while (i + flen <= in->len) {
    const char *hit = memchr(in->data + i, from[0], in->len - flen + 1 - i);
    if (hit == NULL) break;
    i = (size_t)(hit - in->data);
    if (memcmp(hit, from, flen) != 0) {
      i++;
      continue;
    }
    if (fsq_text_append(out, in->data + copied, i - copied) != FSQ_OK ||
        fsq_text_append(out, to, tlen) != FSQ_OK)
      return fsq_error_code();
    i += flen;
    copied = i;
  }
  return fsq_text_append(out, in->data + copied, in->len - copied);
}

void fsq_utf8_strip(const char *s, size_t len, int left, int right, size_t *start, size_t *end) {
  size_t i = 0, keep = 0, first = len;
  while (i < len) {
    size_t sp = fsq_utf8_space(s + i, len - i);
    if (sp > 0) {
      i += sp;
      continue;
    }
    uint32_t cp;
    if (first == len) first = i;
    i += fsq_utf8_decode(s + i, len - i, &cp);
    keep = i;
  }
  if (first == len) first = keep = left ? len : 0; /* all whitespace */
  *start = left ? first : 0;
  *end = right ? keep : len;
  if (*end < *start) *end = *start;
}
