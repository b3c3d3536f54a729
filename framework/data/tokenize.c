/* tokenize.c: fairseq's tokenize_line (re.sub(r"\s+", " ") + strip + split)
 * on UTF-8 bytes, strict UTF-8 validation, and encode_line. */
#include "data/dict_internal.h"

#include <stdlib.h>
#include <string.h>

/* Python's str.isspace() and UTF-8 decoding come from framework/core. */
static inline int is_space_cp(uint32_t c) { return fsq_unicode_isspace(c); }

/* Decodes one code point of valid UTF-8 at s (n bytes left); *w = its length. */
static inline uint32_t decode(const unsigned char *s, size_t n, size_t *w) {
  uint32_t c;
  *w = fsq_utf8_decode((const char *)s, n, &c);
  return c;
}

size_t fsq_tokenize_line(const char *line, size_t len, fsq_token *tokens, size_t cap) {
  const unsigned char *s = (const unsigned char *)line;
  size_t i = 0, n = 0, start = 0;
  int in_token = 0;
  while (i < len) {
    size_t w = 1;
    uint32_t c = s[i] < 0x80 ? s[i] : decode(s + i, len - i, &w);
    if (is_space_cp(c)) {
      if (in_token) {
        if (n < cap) tokens[n] = (fsq_token){line + start, i - start};
        n++;
        in_token = 0;
      }
    } else if (!in_token) {
      start = i;
      in_token = 1;
    }
    i += w;
  }
  if (in_token) {
    if (n < cap) tokens[n] = (fsq_token){line + start, len - start};
    n++;
  }
  return n;
}

size_t fsq_rstrip_len(const char *s, size_t len) {
  size_t end = 0, i = 0;
  while (i < len) {
    size_t w = 1;
    uint32_t c = (unsigned char)s[i] < 0x80 ? (unsigned char)s[i]
                                             : decode((const unsigned char *)s + i, len - i, &w);
    i += w;
    if (!is_space_cp(c)) end = i;
  }
  return end;
}

fsq_status fsq_dictionary_encode_line(const fsq_dictionary *d, const char *line, size_t len,
                                      int32_t **ids, size_t *cap, size_t *n, int64_t *replaced) {
  const unsigned char *s = (const unsigned char *)line;
  size_t i = 0, k = 0, start = 0;
  int in_token = 0;
  for (;;) {
    size_t w = 1;
    int at_end = i >= len;
    uint32_t c = at_end ? ' ' : s[i] < 0x80 ? s[i] : decode(s + i, len - i, &w);
    if (is_space_cp(c)) {
      if (in_token) {
        if (k + 2 > *cap) {
          size_t nc = *cap ? *cap * 2 : 256;
          int32_t *p = realloc(*ids, nc * sizeof *p);
          if (p == NULL) return fsq_error(FSQ_ERR_NOMEM, "encode_line: out of memory");
          *ids = p;
          *cap = nc;
        }
        int32_t idx = fsq_dictionary_find(d, line + start, i - start);
        if (idx < 0) {
          idx = FSQ_DICT_UNK;
          (*replaced)++;
        }
        (*ids)[k++] = idx;
        in_token = 0;
      }
    } else if (!in_token) {
      start = i;
      in_token = 1;
    }
    if (at_end) break;
    i += w;
  }
  if (*cap < k + 1) {
    int32_t *p = realloc(*ids, 256 * sizeof *p);
    if (p == NULL) return fsq_error(FSQ_ERR_NOMEM, "encode_line: out of memory");
    *ids = p;
    *cap = 256;
  }
  (*ids)[k++] = FSQ_DICT_EOS;
  *n = k;
  return FSQ_OK;
}
