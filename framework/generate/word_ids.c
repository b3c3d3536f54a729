/* word_ids.c: the word -> id map of fairseq-score, which encodes every line
 * with a fresh fairseq Dictionary: <s> <pad> </s> <unk> are 0..3, so the
 * literal words "<pad>", "</s>" and "<unk>" get the special ids (and are
 * trimmed or never matched by BLEU, as in fairseq); other words get the
 * next id the first time they are seen. */
#include "generate/scoring_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct word_slot {
  size_t offset; /* into pool; SIZE_MAX = empty */
  size_t len;
  uint64_t hash;
  int32_t id;
} word_slot;

struct fsq_word_ids {
  char *pool; /* every word's bytes, back to back */
  size_t pool_len, pool_cap;
  word_slot *slots;
  size_t cap, count;
  int32_t *ids; /* the last encoded line: [ids_cap] */
  size_t ids_cap;
};

static uint64_t hash_bytes(const char *s, size_t len) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static fsq_status rehash(fsq_word_ids *w, size_t cap) {
  word_slot *slots = malloc(cap * sizeof *slots);
  if (slots == NULL) return fsq_error(FSQ_ERR_NOMEM, "word ids: out of memory");
  for (size_t i = 0; i < cap; i++) slots[i].offset = SIZE_MAX;
  for (size_t i = 0; i < w->cap; i++) {
    if (w->slots[i].offset == SIZE_MAX) continue;
    size_t j = (size_t)w->slots[i].hash & (cap - 1);
    while (slots[j].offset != SIZE_MAX) j = (j + 1) & (cap - 1);
    slots[j] = w->slots[i];
  }
  free(w->slots);
  w->slots = slots;
  w->cap = cap;
  return FSQ_OK;
}

/* The id of word, adding it when absent. */
static fsq_status lookup(fsq_word_ids *w, const char *word, size_t len, int32_t *id) {
  if (2 * (w->count + 1) > w->cap && rehash(w, w->cap ? 2 * w->cap : 64) != FSQ_OK)
    return fsq_error_code();
  uint64_t h = hash_bytes(word, len);
  size_t j = (size_t)h & (w->cap - 1);
  for (; w->slots[j].offset != SIZE_MAX; j = (j + 1) & (w->cap - 1)) {
    word_slot *s = &w->slots[j];
    if (s->hash == h && s->len == len && memcmp(w->pool + s->offset, word, len) == 0) {
      *id = s->id;
      return FSQ_OK;
    }
  }
  if (w->count >= INT32_MAX) return fsq_error(FSQ_ERR_INVALID, "word ids: too many words");
  void *p = w->pool;
  if (fsq_grow(&p, &w->pool_cap, w->pool_len + len + 1, 1) != FSQ_OK) return fsq_error_code();
  w->pool = p;
  memcpy(w->pool + w->pool_len, word, len);
  w->slots[j] = (word_slot){w->pool_len, len, h, (int32_t)w->count};
  w->pool_len += len;
  *id = (int32_t)w->count++;
  return FSQ_OK;
}

fsq_word_ids *fsq_word_ids_new(void) {
  fsq_word_ids *w = calloc(1, sizeof *w);
  if (w == NULL) {
    fsq_error(FSQ_ERR_NOMEM, "word ids: out of memory");
    return NULL;
  }
  static const char *const specials[] = {"<s>", "<pad>", "</s>", "<unk>"};
  for (int i = 0; i < 4; i++) {
    int32_t id;
    if (lookup(w, specials[i], strlen(specials[i]), &id) != FSQ_OK) {
      fsq_word_ids_free(w);
      return NULL;
    }
  }
  return w;
}

void fsq_word_ids_free(fsq_word_ids *w) {
  if (w == NULL) return;
  free(w->pool);
  free(w->slots);
  free(w->ids);
  free(w);
}

size_t fsq_word_ids_count(const fsq_word_ids *w) { return w->count; }

fsq_status fsq_word_ids_encode(fsq_word_ids *w, const char *line, size_t len,
                               const int32_t **ids, size_t *n) {
  size_t count = 0, i = 0;
  for (;;) {
    size_t sp;
    while (i < len && (sp = fsq_utf8_space(line + i, len - i)) > 0) i += sp;
    void *p = w->ids;
    if (fsq_grow(&p, &w->ids_cap, count + 1, sizeof *w->ids) != FSQ_OK) return fsq_error_code();
    w->ids = p;
    if (i >= len) break;
    size_t start = i;
    i += fsq_utf8_word_len(line + i, len - i);
    if (lookup(w, line + start, i - start, &w->ids[count]) != FSQ_OK) return fsq_error_code();
    count++;
  }
  w->ids[count++] = FSQ_WORD_EOS;
  *ids = w->ids;
  *n = count;
  return FSQ_OK;
}
