/* dict_internal.h: the dictionary's layout, shared by the files of
 * framework/data that build and sort it. Not installed. */
#ifndef FSQ_DICT_INTERNAL_H
#define FSQ_DICT_INTERNAL_H

#include "data/fsq_data.h"

struct fsq_dictionary {
  /* symbols: chars + offsets[i], lens[i] bytes, NUL-terminated */
  char *chars;
  size_t chars_len, chars_cap;
  size_t *offsets;
  uint32_t *lens;
  int64_t *counts;
  uint64_t *hashes;
  size_t size, cap;
  uint64_t *table; /* open addressing, see dictionary.c; power-of-two size */
  size_t table_cap;
};

uint64_t fsq_dict_hash(const char *s, size_t len);
/* Length of s without trailing Unicode whitespace (str.rstrip()); s is valid UTF-8. */
size_t fsq_rstrip_len(const char *s, size_t len);

#endif
