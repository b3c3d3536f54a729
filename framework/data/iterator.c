/* iterator.c: fairseq's EpochBatchIterator over fixed batches, shuffled per
 * epoch and sharded per rank (ShardedIterator with empty filler batches).
 * The position is (epoch, batches taken), enough to resume mid-epoch. */
#include "data/fsq_data.h"

#include <stdlib.h>
#include <string.h>

struct fsq_epoch_iter {
  fsq_batches batches; /* a private copy */
  uint64_t seed;
  int shuffle, num_shards, shard_id;
  uint32_t *order; /* [batches.count] this epoch's batch order */
  int64_t epoch;
  size_t index; /* batches of this shard already taken */
};

fsq_status fsq_epoch_iter_new(const fsq_batches *batches, uint64_t seed, int shuffle,
                              int num_shards, int shard_id, fsq_epoch_iter **out) {
  *out = NULL;
  if (num_shards < 1 || shard_id < 0 || shard_id >= num_shards)
    return fsq_error(FSQ_ERR_INVALID, "epoch iterator: shard %d of %d", shard_id, num_shards);
  if (batches->count > UINT32_MAX) return fsq_error(FSQ_ERR_INVALID, "epoch iterator: too many batches");
  if (batches->count > 0 && batches->offsets == NULL)
    return fsq_error(FSQ_ERR_INVALID, "epoch iterator: batches without offsets");
  fsq_epoch_iter *it = calloc(1, sizeof *it);
  size_t n = batches->offsets ? batches->offsets[batches->count] : 0;
  if (it) {
    it->batches.count = batches->count;
    it->batches.indices = malloc((n ? n : 1) * sizeof(uint32_t));
    it->batches.offsets = malloc((batches->count + 1) * sizeof(size_t));
    it->order = malloc((batches->count ? batches->count : 1) * sizeof(uint32_t));
  }
  if (it == NULL || !it->batches.indices || !it->batches.offsets || !it->order) {
    fsq_epoch_iter_free(it);
    return fsq_error(FSQ_ERR_NOMEM, "epoch iterator: out of memory");
  }
  if (n) memcpy(it->batches.indices, batches->indices, n * sizeof(uint32_t));
  if (batches->offsets)
    memcpy(it->batches.offsets, batches->offsets, (batches->count + 1) * sizeof(size_t));
  else
    it->batches.offsets[0] = 0;
  it->seed = seed;
  it->shuffle = shuffle;
  it->num_shards = num_shards;
  it->shard_id = shard_id;
  *out = it;
  return fsq_epoch_iter_begin(it, 1);
}

void fsq_epoch_iter_free(fsq_epoch_iter *it) {
  if (it == NULL) return;
  fsq_batches_free(&it->batches);
  free(it->order);
  free(it);
}

size_t fsq_epoch_iter_len(const fsq_epoch_iter *it) {
  size_t s = (size_t)it->num_shards;
  return (it->batches.count + s - 1) / s;
}

fsq_status fsq_epoch_iter_begin(fsq_epoch_iter *it, int64_t epoch) {
  if (epoch < 1) return fsq_error(FSQ_ERR_INVALID, "epoch iterator: epoch %lld < 1", (long long)epoch);
  it->epoch = epoch;
  it->index = 0;
  if (it->shuffle) {
    fsq_rng rng = fsq_rng_make(it->seed + (uint64_t)epoch, 0x6261746368ull /* "batch" */);
    fsq_rng_permutation(&rng, it->order, it->batches.count);
  } else {
    for (size_t i = 0; i < it->batches.count; i++) it->order[i] = (uint32_t)i;
  }
  return FSQ_OK;
}

int fsq_epoch_iter_next(fsq_epoch_iter *it, const uint32_t **indices, size_t *count) {
  if (it->index >= fsq_epoch_iter_len(it)) return 0;
  size_t k = it->index * (size_t)it->num_shards + (size_t)it->shard_id;
  it->index++;
  if (k >= it->batches.count) { /* this rank ran out: an empty filler batch */
    *indices = it->batches.indices;
    *count = 0;
    return 1;
  }
  size_t b = it->order[k];
  *indices = it->batches.indices + it->batches.offsets[b];
  *count = it->batches.offsets[b + 1] - it->batches.offsets[b];
  return 1;
}

void fsq_epoch_iter_position(const fsq_epoch_iter *it, int64_t *epoch, size_t *index) {
  *epoch = it->epoch;
  *index = it->index;
}

fsq_status fsq_epoch_iter_restore(fsq_epoch_iter *it, int64_t epoch, size_t index) {
  if (index > fsq_epoch_iter_len(it))
    return fsq_error(FSQ_ERR_INVALID, "epoch iterator: position %zu beyond the %zu batches of an epoch",
                     index, fsq_epoch_iter_len(it));
  fsq_status st = fsq_epoch_iter_begin(it, epoch);
  if (st == FSQ_OK) it->index = index;
  return st;
}
