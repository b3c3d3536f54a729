/* paths.c: where fairseq's translation task looks for a split's files
 * (load_langpair_dataset / split_exists). */
#include "data/fsq_data.h"

#include <stdio.h>
#include <unistd.h>

static int dataset_exists(const char *prefix) {
  char p[4200];
  snprintf(p, sizeof p, "%s.idx", prefix);
  if (access(p, F_OK) != 0) return 0;
  snprintf(p, sizeof p, "%s.bin", prefix);
  return access(p, F_OK) == 0;
}

fsq_status fsq_data_pair_prefixes(const char *dir, const char *split, const char *src,
                                  const char *tgt, char *src_prefix, char *tgt_prefix,
                                  size_t size) {
  for (int reversed = 0; reversed < 2; reversed++) {
    const char *a = reversed ? tgt : src, *b = reversed ? src : tgt;
    snprintf(src_prefix, size, "%s/%s.%s-%s.%s", dir, split, a, b, src);
    if (!dataset_exists(src_prefix)) continue;
    snprintf(tgt_prefix, size, "%s/%s.%s-%s.%s", dir, split, a, b, tgt);
    return FSQ_OK;
  }
  return fsq_error(FSQ_ERR_NOT_FOUND, "%s: dataset not found: %s.%s-%s.%s or %s.%s-%s.%s (.bin/.idx)",
                   dir, split, src, tgt, src, split, tgt, src, src);
}
