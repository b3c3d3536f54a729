/* tokenize.c: fairseq's tokenize_line (re.sub(r"\s+", " ") + strip + split)
 * on UTF-8 bytes, strict UTF-8 validation, and encode_line. */
#include "data/dict_internal.h"

#include <stdlib.h>
#include <string.h>

/* ASCII whitespace for Python: \t \n \v \f \r, \x1c-\x1f and space. */
static const unsigned char ascii_space[128] = {
    ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1,
    [0x1c] = 1,  [0x1d] = 1,  [0x1e] = 1,  [0x1f] = 1,  [' '] = 1};

/* Python's str.isspace() set (which is also what \s matches in str patterns). */
static inline int is_space_cp(uint32_t c) {
  if (c < 0x80) return ascii_space[c];
  return c == 0x85 || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
         c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Decodes one code point of valid UTF-8 at s (n bytes left); *w = its length. */
static uint32_t decode(const unsigned char *s, size_t n, size_t *w) {
  unsigned char b = s[0];
  if (b < 0x80 || n < 2) {
    *w = 1;
    return b;
  }
  if (b < 0xe0) {
    *w = 2;
    return ((uint32_t)(b & 0x1f) << 6) | (s[1] & 0x3f);
  }
  if (b < 0xf0 || n < 4) {
    *w = 3;
    return ((uint32_t)(b & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
  }
  *w = 4;
  return ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
         ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

int fsq_utf8_valid(const char *text, size_t len) {
  const unsigned char *s = (const unsigned char *)text;
  size_t i = 0;
  while (i < len) {
    if (i + 8 <= len) { /* eight ASCII bytes at once */
      uint64_t w;
      memcpy(&w, s + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    unsigned char b = s[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    size_t need;
    uint32_t min, c;
    if (b >= 0xc2 && b <= 0xdf) need = 1, min = 0x80, c = b & 0x1f;
    else if (b >= 0xe0 && b <= 0xef) need = 2, min = 0x800, c = b & 0x0f;
    else if (b >= 0xf0 && b <= 0xf4) need = 3, min = 0x10000, c = b & 0x07;
    else return 0;
    if (len - i <= need) return 0;
    for (size_t k = 1; k <= need; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      c = (c << 6) | (s[i + k] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    i += need + 1;
  }
  return 1;
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
