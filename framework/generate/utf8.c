/* utf8.c: the bits of Python's str that scoring depends on: strict UTF-8
 * word boundaries and str.lower(); validation, decoding and isspace are in
 * framework/core. */
#define _GNU_SOURCE /* newlocale, towlower_l */
#include "generate/scoring_internal.h"

#include <locale.h>
#include <pthread.h>
#include <wctype.h>

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
