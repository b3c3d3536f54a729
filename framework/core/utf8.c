/* utf8.c: strict UTF-8 validation, decoding and Python's whitespace set,
 * shared by the data pipeline (fairseq's tokenize_line) and the scorers. */
#include "core/fsq_core.h"

#include <string.h>

size_t fsq_utf8_decode(const char *s, size_t left, uint32_t *cp) {
  const unsigned char *u = (const unsigned char *)s;
  size_t n = u[0] < 0xC0 ? 1 : u[0] < 0xE0 ? 2 : u[0] < 0xF0 ? 3 : 4;
  if (n > left) n = 1; /* truncated: take the byte alone */
  if (n == 1) {
    *cp = u[0];
    return 1;
  }
  uint32_t c = u[0] & (0x7F >> n);
  for (size_t i = 1; i < n; i++) c = (c << 6) | (u[i] & 0x3F);
  *cp = c;
  return n;
}

/* Length of the valid sequence at u, or 0 (Unicode Table 3-7). */
static size_t valid_at(const unsigned char *u, size_t left) {
  unsigned char c = u[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F; /* no surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (left < n || u[1] < lo || u[1] > hi) return 0;
  for (size_t i = 2; i < n; i++)
    if (u[i] < 0x80 || u[i] > 0xBF) return 0;
  return n;
}

int fsq_utf8_valid(const char *s, size_t len, size_t *bad_offset) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    if (i + 8 <= len) { /* eight ASCII bytes at once */
      uint64_t w;
      memcpy(&w, u + i, 8);
      if ((w & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    size_t n = valid_at(u + i, len - i);
    if (n == 0) {
      if (bad_offset != NULL) *bad_offset = i;
      return 0;
    }
    i += n;
  }
  return 1;
}

int fsq_unicode_isspace(uint32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t fsq_utf8_space(const char *s, size_t left) {
  if (left == 0) return 0;
  unsigned char c = (unsigned char)s[0];
  if (c < 0x80) return fsq_unicode_isspace(c); /* fast path */
  uint32_t cp;
  size_t n = fsq_utf8_decode(s, left, &cp);
  return fsq_unicode_isspace(cp) ? n : 0;
}
