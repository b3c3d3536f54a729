/* binarize.h: text files to word counts and token ids, in parallel chunks.
 * Internal to framework/data (fairseq-preprocess uses it through
 * fsq_preprocess_run). */
#ifndef FSQ_BINARIZE_H
#define FSQ_BINARIZE_H

#include "data/fsq_data.h"

typedef struct fsq_text {
  const char *path;
  const char *data; /* mmap of the whole file */
  size_t size;
} fsq_text;

/* Maps a non-empty regular file; an empty one is an error. */
fsq_status fsq_text_open(const char *path, fsq_text *t);
void fsq_text_close(fsq_text *t);

/* One chunk's encoded lines: tokens [ntok], sizes [nitems]. */
typedef struct fsq_binarized {
  int32_t *tokens;
  int32_t *sizes;
  size_t ntok, nitems, tok_cap, items_cap;
  int64_t nunk; /* words replaced by <unk> */
} fsq_binarized;

typedef struct fsq_binarize_stats {
  int64_t nseq, ntok, nunk; /* lines, tokens (with </s>), words replaced by <unk> */
} fsq_binarize_stats;

/* Text each worker encodes per round before the results are written. */
#define FSQ_SEGMENT_BYTES ((size_t)32 << 20)

/* Adds every word of the file (and one </s> per line) to d's counts. */
fsq_status fsq_binarize_count(const fsq_text *t, int workers, fsq_dictionary *d);
/* Encodes every line (Dictionary.encode_line, </s> appended) into w, in
 * file order whatever the number of workers; segment_bytes per worker and
 * round (0: FSQ_SEGMENT_BYTES). */
fsq_status fsq_binarize_encode(const fsq_text *t, int workers, size_t segment_bytes,
                               const fsq_dictionary *d, fsq_indexed_writer *w,
                               fsq_binarize_stats *stats);

#endif
