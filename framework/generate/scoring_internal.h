/* scoring_internal.h: what the scoring files share and nobody else needs:
 * an n-gram count table over int32 sequences and buffer growth. */
#ifndef FSQ_SCORING_INTERNAL_H
#define FSQ_SCORING_INTERNAL_H

#include "generate/fsq_scoring.h"

/* One distinct n-gram: seq points into the caller's id array. */
typedef struct fsq_ngram_entry {
  const int32_t *seq; /* NULL = empty slot */
  uint64_t hash;
  uint32_t n;
  uint64_t count; /* occurrences in the sequence the table was built from */
  uint64_t cur;   /* occurrences in the reference being scanned */
  uint64_t best;  /* maximum of cur over the references seen */
} fsq_ngram_entry;

/* Open addressing; capacity grows but never shrinks, so a scorer reused
 * sentence after sentence stops allocating once it has seen the longest. */
typedef struct fsq_ngram_table {
  fsq_ngram_entry *slots;
  size_t cap; /* power of two */
} fsq_ngram_table;

/* Empties the table, sized for at least `expected` distinct n-grams. */
fsq_status fsq_ngram_table_reset(fsq_ngram_table *t, size_t expected);
void fsq_ngram_table_free(fsq_ngram_table *t);
uint64_t fsq_ngram_hash(const int32_t *seq, uint32_t n);
/* Finds seq[0..n); with insert, adds it (count 0) when absent. NULL if absent. */
fsq_ngram_entry *fsq_ngram_table_find(fsq_ngram_table *t, const int32_t *seq, uint32_t n,
                                      int insert);

/* Makes room for len+extra+1 bytes. */
fsq_status fsq_text_reserve(fsq_text *text, size_t extra);
fsq_status fsq_text_append(fsq_text *text, const char *s, size_t len);
/* out = in.replace(from, to), Python's non-overlapping left-to-right replace. */
fsq_status fsq_text_replace(const fsq_text *in, const char *from, const char *to, fsq_text *out);
/* Grows an array of elem-sized items to hold at least need of them. */
fsq_status fsq_grow(void **items, size_t *cap, size_t need, size_t elem);

/* str.strip() (left and right), lstrip() or rstrip(): s[*start..*end)
 * without the Unicode whitespace at the chosen ends. */
void fsq_utf8_strip(const char *s, size_t len, int left, int right, size_t *start, size_t *end);

/* Byte length of the next word (up to whitespace or end) at s. */
size_t fsq_utf8_word_len(const char *s, size_t left);

/* fsq_tokenize_13a with the caller's two scratch buffers (no allocation
 * once they are large enough). */
fsq_status fsq_tokenize_13a_with(const char *line, size_t len, fsq_text *out, fsq_text *a,
                                 fsq_text *b);

#endif
