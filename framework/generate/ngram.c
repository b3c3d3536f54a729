/* ngram.c: the n-gram count table both BLEU flavours count with. libbleu keys a std::map by a
 * 64-bit FNV hash alone; we hash the same way but also compare the ids, so a
 * hash collision cannot fake a match. */
#include "generate/scoring_internal.h"

#include <stdlib.h>
#include <string.h>

uint64_t fsq_ngram_hash(const int32_t *seq, uint32_t n) {
  uint64_t h = 14695981039346656037ull;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t v = (uint32_t)seq[i];
    for (int b = 0; b < 4; b++) {
      h ^= (v >> (8 * b)) & 0xffu;
      h *= 0x100000001b3ull;
    }
  }
  return h ^ ((uint64_t)n << 59);
}

fsq_status fsq_ngram_table_reset(fsq_ngram_table *t, size_t expected) {
  size_t want = 16;
  while (want < 2 * expected + 1) want *= 2;
  if (want > t->cap) {
    fsq_ngram_entry *slots = malloc(want * sizeof *slots);
    if (slots == NULL) return fsq_error(FSQ_ERR_NOMEM, "n-gram table: out of memory");
    free(t->slots);
    t->slots = slots;
    t->cap = want;
  }
  memset(t->slots, 0, t->cap * sizeof *t->slots);
  return FSQ_OK;
}

void fsq_ngram_table_free(fsq_ngram_table *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = 0;
}

fsq_ngram_entry *fsq_ngram_table_find(fsq_ngram_table *t, const int32_t *seq, uint32_t n,
                                      int insert) {
  uint64_t h = fsq_ngram_hash(seq, n);
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
    fsq_ngram_entry *e = &t->slots[i];
    if (e->seq == NULL) {
      if (!insert) return NULL;
      e->seq = seq;
      e->hash = h;
      e->n = n;
      return e;
    }
    if (e->hash == h && e->n == n && memcmp(e->seq, seq, n * sizeof *seq) == 0) return e;
  }
}
