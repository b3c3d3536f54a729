/* dict_io.c: reading dict.txt (Dictionary.add_from_file) and
 * Dictionary.finalize's ordering and padding. */
#define _GNU_SOURCE /* memrchr */
#include "data/dict_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Python's int(field) for ASCII text: blanks around, a sign, digits with
 * single underscores between them. */
static int parse_count(const char *s, size_t len, int64_t *out) {
  size_t i = 0;
  while (len > 0 && (s[len - 1] == ' ' || (s[len - 1] >= '\t' && s[len - 1] <= '\r'))) len--;
  while (i < len && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) i++;
  int neg = 0;
  if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i >= len) return -1;
  int64_t v = 0;
  int prev_digit = 0;
  for (; i < len; i++) {
    if (s[i] == '_' && prev_digit && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9') {
      prev_digit = 0;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') return -1;
    if (v > (INT64_MAX - 9) / 10) return -1;
    v = v * 10 + (s[i] - '0');
    prev_digit = 1;
  }
  *out = neg ? -v : v;
  return 0;
}

static fsq_status parse_line(fsq_dictionary *d, const char *line, size_t len, const char *name,
                             size_t lineno) {
  len = fsq_rstrip_len(line, len);
  const char *sp = len ? memrchr(line, ' ', len) : NULL;
  int overwrite = 0;
  const char *field = sp ? sp + 1 : NULL;
  size_t field_len = sp ? (size_t)(line + len - field) : 0;
  size_t word_len = sp ? (size_t)(sp - line) : 0;
  if (sp && field_len == 18 && memcmp(field, "#fairseq:overwrite", 18) == 0) {
    overwrite = 1;
    sp = word_len ? memrchr(line, ' ', word_len) : NULL;
    field = sp ? sp + 1 : NULL;
    field_len = sp ? (size_t)(line + word_len - field) : 0;
    word_len = sp ? (size_t)(sp - line) : 0;
  }
  int64_t count;
  if (sp == NULL || parse_count(field, field_len, &count) != 0)
    return fsq_error(FSQ_ERR_FORMAT,
                     "%s:%zu: incorrect dictionary format, expected '<token> <cnt> [flags]': "
                     "\"%.*s\"",
                     name, lineno, (int)(len > 200 ? 200 : len), line);
  if (!overwrite && fsq_dictionary_find(d, line, word_len) >= 0)
    return fsq_error(FSQ_ERR_FORMAT,
                     "%s:%zu: duplicate word '%.*s' (add #fairseq:overwrite to replace it)",
                     name, lineno, (int)word_len, line);
  if (fsq_dictionary_add(d, line, word_len, count, overwrite) < 0) return fsq_error_code();
  return FSQ_OK;
}

fsq_status fsq_dictionary_parse(fsq_dictionary *d, const char *text, size_t len, const char *name) {
  if (!fsq_utf8_valid(text, len, NULL))
    return fsq_error(FSQ_ERR_FORMAT, "%s: incorrect encoding (not UTF-8)", name);
  size_t pos = 0, lineno = 0;
  while (pos < len) {
    /* universal newlines, as Python's text mode reads them */
    size_t end = pos;
    while (end < len && text[end] != '\n' && text[end] != '\r') end++;
    size_t next = end + (end < len);
    if (end < len && text[end] == '\r' && next < len && text[next] == '\n') next++;
    fsq_status st = parse_line(d, text + pos, end - pos, name, ++lineno);
    if (st != FSQ_OK) return st;
    pos = next;
  }
  return FSQ_OK;
}

fsq_status fsq_dictionary_load(const char *path, fsq_dictionary **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY);
  if (fd < 0) return fsq_error(errno == ENOENT ? FSQ_ERR_NOT_FOUND : FSQ_ERR_IO, "%s: %s", path,
                               strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    close(fd);
    return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  }
  size_t size = (size_t)sb.st_size;
  void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  close(fd);
  if (size && map == MAP_FAILED) return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  fsq_dictionary *d = fsq_dictionary_new();
  fsq_status st = d ? fsq_dictionary_parse(d, map, size, path) : FSQ_ERR_NOMEM;
  if (size) munmap(map, size);
  if (st != FSQ_OK) {
    fsq_dictionary_free(d);
    return st;
  }
  *out = d;
  return FSQ_OK;
}

typedef struct entry {
  const char *sym;
  uint32_t len;
  int64_t count;
} entry;

static int cmp_symbol(const entry *a, const entry *b) {
  uint32_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->sym, b->sym, n);
  if (c != 0) return c;
  return (a->len > b->len) - (a->len < b->len);
}

static int by_symbol_then_count(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  int c = cmp_symbol(a, b);
  return c != 0 ? c : (a->count > b->count) - (a->count < b->count);
}

static int by_count_desc_then_symbol(const void *pa, const void *pb) {
  const entry *a = pa, *b = pb;
  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return cmp_symbol(a, b);
}

/* Counter(dict(sorted(zip(symbols, counts)))).most_common(): a symbol seen
 * twice keeps its larger count; ties in count go by symbol (code points,
 * which is byte order in UTF-8). Returns the number of entries left. */
static size_t ranked_entries(const fsq_dictionary *d, entry *e) {
  size_t n = 0;
  for (size_t i = FSQ_DICT_NSPECIAL; i < d->size; i++)
    e[n++] = (entry){d->chars + d->offsets[i], d->lens[i], d->counts[i]};
  qsort(e, n, sizeof *e, by_symbol_then_count);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m > 0 && cmp_symbol(&e[m - 1], &e[i]) == 0)
      e[m - 1] = e[i];
    else
      e[m++] = e[i];
  }
  qsort(e, m, sizeof *e, by_count_desc_then_symbol);
  return m;
}

fsq_status fsq_dictionary_finalize(fsq_dictionary *d, int64_t threshold, int64_t nwords,
                                   int64_t padding_factor) {
  if (nwords <= 0) nwords = (int64_t)d->size;
  entry *e = malloc((d->size + 1) * sizeof *e);
  fsq_dictionary *nd = calloc(1, sizeof *nd);
  if (e == NULL || nd == NULL) {
    free(e);
    free(nd);
    return fsq_error(FSQ_ERR_NOMEM, "dictionary: out of memory");
  }
  size_t m = ranked_entries(d, e);
  int64_t keep = nwords - FSQ_DICT_NSPECIAL;
  fsq_status st = FSQ_OK;
  for (size_t i = 0; i < FSQ_DICT_NSPECIAL && st == FSQ_OK; i++)
    if (fsq_dictionary_add(nd, d->chars + d->offsets[i], d->lens[i], d->counts[i], 1) < 0)
      st = fsq_error_code();
  for (size_t i = 0; st == FSQ_OK && i < m && (int64_t)i < keep; i++) {
    if (e[i].count < threshold) break;
    if (fsq_dictionary_add(nd, e[i].sym, e[i].len, e[i].count, 1) < 0) st = fsq_error_code();
  }
  free(e);
  if (st != FSQ_OK) {
    fsq_dictionary_free(nd);
    return st;
  }
  /* swap the new contents in, keeping the caller's handle */
  fsq_dictionary old = *d;
  *d = *nd;
  *nd = old;
  fsq_dictionary_free(nd);
  return fsq_dictionary_pad_to_multiple(d, padding_factor);
}

fsq_status fsq_dictionary_pad_to_multiple(fsq_dictionary *d, int64_t padding_factor) {
  if (padding_factor <= 1) return FSQ_OK;
  for (int64_t i = 0; d->size % (uint64_t)padding_factor != 0; i++) {
    char sym[32];
    int len = snprintf(sym, sizeof sym, "madeupword%04lld", (long long)i);
    if (fsq_dictionary_add(d, sym, (size_t)len, 0, 0) < 0) return fsq_error_code();
  }
  return FSQ_OK;
}
