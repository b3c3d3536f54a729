/* utf8.c: the bits of Python's str that scoring depends on: strict UTF-8
 * decoding, str.isspace() (which str.split(), str.strip() and re's \s use)
 * and str.lower(). */
#define _GNU_SOURCE /* newlocale, towlower_l */
#include "generate/scoring_internal.h"

#include <locale.h>
#include <pthread.h>
#include <wctype.h>

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
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
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
  for (size_t i = 0; i < len;) {
    size_t n = valid_at(u + i, len - i);
    if (n == 0) {
      if (bad_offset) *bad_offset = i;
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
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20); /* fast path */
  uint32_t cp;
  size_t n = fsq_utf8_decode(s, left, &cp);
  return fsq_unicode_isspace(cp) ? n : 0;
}

size_t fsq_utf8_word_len(const char *s, size_t left) {
  size_t i = 0;
  while (i < left) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x80) { /* ASCII fast path */
      if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20)) break;
      i++;
      continue;
    }
    uint32_t cp;
    size_t n = fsq_utf8_decode(s + i, left - i, &cp);
    if (fsq_unicode_isspace(cp)) break;
    i += n;
  }
  return i;
}

static locale_t utf8_locale = (locale_t)0;
static pthread_once_t utf8_locale_once = PTHREAD_ONCE_INIT;

static void open_utf8_locale(void) {
  utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
  if (utf8_locale == (locale_t)0) utf8_locale = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
}

static size_t encode(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

fsq_status fsq_utf8_lower(const char *s, size_t len, fsq_text *out) {
  pthread_once(&utf8_locale_once, open_utf8_locale);
  out->len = 0;
  /* lowercase never takes more than 3 bytes per input byte (U+0130: 2 -> 3) */
  if (fsq_text_reserve(out, 2 * len) != FSQ_OK) return fsq_error_code();
  for (size_t i = 0; i < len;) {
    uint32_t c;
    size_t n = fsq_utf8_decode(s + i, len - i, &c);
    i += n;
    if (c == 0x130) { /* SpecialCasing: I WITH DOT ABOVE -> i + COMBINING DOT ABOVE */
      out->len += encode('i', out->data + out->len);
      out->len += encode(0x307, out->data + out->len);
      continue;
    }
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    else if (c >= 0x80 && utf8_locale != (locale_t)0) {
      wint_t l = towlower_l((wint_t)c, utf8_locale);
      if (l <= 0x10FFFF && !(l >= 0xD800 && l <= 0xDFFF)) c = (uint32_t)l; /* e.g. KELVIN -> k */
    }
    out->len += encode(c, out->data + out->len);
  }
  out->data[out->len] = '\0';
  return FSQ_OK;
}
