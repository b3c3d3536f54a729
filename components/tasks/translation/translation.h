/* translation.h: what the two files of the translation task share: the task
 * itself (translation.c: options, languages, dictionaries) and its splits
 * (splits.c: datasets, batches, collation). */
#ifndef FSQ_TASK_TRANSLATION_H
#define FSQ_TASK_TRANSLATION_H

#include "train/fsq_model.h"

#define TRANSLATION_LOGGER "fairseq.tasks.translation"

/* One loaded split ("train", "valid1" ...): its datasets and iterator. */
typedef struct translation_split {
  char *name;
  fsq_indexed *src, *tgt; /* tgt NULL when the split has no target file */
  fsq_pair_dataset pair;
  fsq_epoch_iter *iter;   /* NULL until get_batch_iterator */
} translation_split;

struct fsq_task {
  char *data;               /* the data directory */
  char *src_lang, *tgt_lang;
  int left_pad_source, left_pad_target;
  int64_t max_source_positions, max_target_positions;
  fsq_dictionary *src_dict, *tgt_dict;
  translation_split **splits; /* [nsplits], owned */
  size_t nsplits;
  fsq_arena *arena;           /* collated arrays, reset by every collate */
};

void translation_splits_free(fsq_task *t);
fsq_status translation_get_batch_iterator(fsq_task *t, const char *split,
                                          const fsq_batch_spec *spec, fsq_epoch_iter **out);
size_t translation_dataset_size(const fsq_task *t, const char *split);
fsq_status translation_collate(fsq_task *t, const char *split, const uint32_t *indices,
                               size_t count, fsq_ctx *ctx, fsq_sample *out);

#endif /* FSQ_TASK_TRANSLATION_H */
