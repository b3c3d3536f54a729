/* dictionary.c: fairseq's Dictionary (fairseq/data/dictionary.py) with an
 * open-addressing hash table from symbol bytes to index. */
#include "data/dict_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const special_words[FSQ_DICT_NSPECIAL] = {"<s>", "<pad>", "</s>", "<unk>"};

static uint64_t mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 33);
}

/* Eight bytes at a time, then murmur3's finalizer. */
uint64_t fsq_dict_hash(const char *s, size_t len) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (len * 0x100000001b3ull);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    h = (h ^ w) * 0x87c37b91114253d5ull;
    h = (h << 31) | (h >> 33);
  }
  if (i < len) {
    uint64_t w = 0;
    memcpy(&w, s + i, len - i);
    h = (h ^ w) * 0x87c37b91114253d5ull;
  }
  return mix(h);
}

/* A table slot: 0 = empty, else the hash's high 32 bits above (index + 1),
 * so that most mismatches are rejected without touching the symbols. */
static uint64_t slot_value(uint64_t h, size_t idx) { return (h & 0xffffffff00000000ull) | (idx + 1); }
static int32_t slot_index(uint64_t v) { return (int32_t)(v & 0xffffffffu) - 1; }

static int grow_table(fsq_dictionary *d) {
  size_t cap = d->table_cap ? d->table_cap * 2 : 64;
  uint64_t *t = calloc(cap, sizeof *t);
  if (t == NULL) return -1;
  /* re-insert the live slots (an overwritten word's old entry has none) */
  for (size_t i = 0; i < d->table_cap; i++) {
    uint64_t v = d->table[i];
    if (v == 0) continue;
    size_t j = d->hashes[slot_index(v)] & (cap - 1);
    while (t[j] != 0) j = (j + 1) & (cap - 1);
    t[j] = v;
  }
  free(d->table);
  d->table = t;
  d->table_cap = cap;
  return 0;
}

/* The table slot holding word, or the empty slot where it would go. */
static size_t find_slot(const fsq_dictionary *d, const char *w, size_t len, uint64_t h) {
  size_t mask = d->table_cap - 1, j = h & mask;
  uint64_t tag = h & 0xffffffff00000000ull;
  for (;;) {
    uint64_t v = d->table[j];
    if (v == 0) return j;
    if ((v & 0xffffffff00000000ull) == tag) {
      int32_t idx = slot_index(v);
      if (d->lens[idx] == len && memcmp(d->chars + d->offsets[idx], w, len) == 0) return j;
    }
    j = (j + 1) & mask;
  }
}

static int append_symbol(fsq_dictionary *d, const char *w, size_t len, int64_t n, uint64_t h) {
  if (d->size == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 64;
    size_t *off = realloc(d->offsets, cap * sizeof *off);
    if (off) d->offsets = off;
    uint32_t *lens = realloc(d->lens, cap * sizeof *lens);
    if (lens) d->lens = lens;
    int64_t *cnt = realloc(d->counts, cap * sizeof *cnt);
    if (cnt) d->counts = cnt;
    uint64_t *hs = realloc(d->hashes, cap * sizeof *hs);
    if (hs) d->hashes = hs;
    if (!off || !lens || !cnt || !hs) return -1;
    d->cap = cap;
  }
  if (d->chars_len + len + 1 > d->chars_cap) {
    size_t cap = d->chars_cap ? d->chars_cap : 1024;
    while (cap < d->chars_len + len + 1) cap *= 2;
    char *c = realloc(d->chars, cap);
    if (c == NULL) return -1;
    d->chars = c;
    d->chars_cap = cap;
  }
  memcpy(d->chars + d->chars_len, w, len);
  d->chars[d->chars_len + len] = '\0';
  d->offsets[d->size] = d->chars_len;
  d->lens[d->size] = (uint32_t)len;
  d->counts[d->size] = n;
  d->hashes[d->size] = h;
  d->chars_len += len + 1;
  d->size++;
  return 0;
}

int32_t fsq_dictionary_add(fsq_dictionary *d, const char *word, size_t len, int64_t n,
                           int overwrite) {
  if (len > UINT32_MAX || d->size >= INT32_MAX) {
    fsq_error(FSQ_ERR_INVALID, "dictionary: symbol or dictionary too large");
    return -1;
  }
  if ((d->size + 1) * 2 > d->table_cap && grow_table(d) != 0) goto nomem;
  uint64_t h = fsq_dict_hash(word, len);
  size_t slot = find_slot(d, word, len, h);
  int32_t idx = slot_index(d->table[slot]);
  if (idx >= 0 && !overwrite) {
    d->counts[idx] += n;
    return idx;
  }
  if (append_symbol(d, word, len, n, h) != 0) goto nomem;
  d->table[slot] = slot_value(h, d->size - 1);
  return (int32_t)(d->size - 1);
nomem:
  fsq_error(FSQ_ERR_NOMEM, "dictionary: out of memory");
  return -1;
}

int32_t fsq_dictionary_find(const fsq_dictionary *d, const char *word, size_t len) {
  if (d->table_cap == 0) return -1;
  return slot_index(d->table[find_slot(d, word, len, fsq_dict_hash(word, len))]);
}

fsq_dictionary *fsq_dictionary_new(void) {
  fsq_dictionary *d = calloc(1, sizeof *d);
  if (d == NULL) {
    fsq_error(FSQ_ERR_NOMEM, "dictionary: out of memory");
    return NULL;
  }
  for (int i = 0; i < FSQ_DICT_NSPECIAL; i++) {
    if (fsq_dictionary_add(d, special_words[i], strlen(special_words[i]), 1, 0) < 0) {
      fsq_dictionary_free(d);
      return NULL;
    }
  }
  return d;
}

void fsq_dictionary_free(fsq_dictionary *d) {
  if (d == NULL) return;
  free(d->table);
  free(d->offsets);
  free(d->lens);
  free(d->counts);
  free(d->hashes);
  free(d->chars);
  free(d);
}

size_t fsq_dictionary_size(const fsq_dictionary *d) { return d->size; }

const char *fsq_dictionary_symbol(const fsq_dictionary *d, size_t index, size_t *len) {
  if (index >= d->size) return NULL;
  if (len) *len = d->lens[index];
  return d->chars + d->offsets[index];
}

int64_t fsq_dictionary_count(const fsq_dictionary *d, size_t index) {
  return index < d->size ? d->counts[index] : 0;
}

fsq_status fsq_dictionary_merge(fsq_dictionary *dst, const fsq_dictionary *src) {
  for (size_t i = 0; i < src->size; i++) {
    if (fsq_dictionary_add(dst, src->chars + src->offsets[i], src->lens[i], src->counts[i], 0) < 0)
      return fsq_error_code();
  }
  return FSQ_OK;
}

fsq_status fsq_dictionary_save(const fsq_dictionary *d, const char *path) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  for (size_t i = FSQ_DICT_NSPECIAL; i < d->size; i++) {
    fwrite(d->chars + d->offsets[i], 1, d->lens[i], f);
    fprintf(f, " %lld\n", (long long)d->counts[i]);
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return fsq_error(FSQ_ERR_IO, "%s: write failed", path);
  return FSQ_OK;
}
