/* batching.c: ordered_indices, filter_by_size and batch_by_size as fairseq
 * does them (data_utils.py, data_utils_fast.pyx: batch_by_size_fn). */
#include "data/fsq_data.h"

#include <stdlib.h>
#include <string.h>

typedef struct order_key {
  int64_t primary, secondary;
  uint32_t tie; /* permutation rank or index */
  uint32_t index;
} order_key;

static int by_key(const void *pa, const void *pb) {
  const order_key *a = pa, *b = pb;
  if (a->primary != b->primary) return a->primary < b->primary ? -1 : 1;
  if (a->secondary != b->secondary) return a->secondary < b->secondary ? -1 : 1;
  return (a->tie > b->tie) - (a->tie < b->tie);
}

fsq_status fsq_data_ordered_indices(size_t n, const int64_t *primary, const int64_t *secondary,
                                    int shuffle, uint64_t seed, uint32_t **out) {
  *out = NULL;
  if (n > UINT32_MAX) return fsq_error(FSQ_ERR_INVALID, "ordered_indices: too many examples");
  order_key *k = malloc((n ? n : 1) * sizeof *k);
  uint32_t *perm = malloc((n ? n : 1) * sizeof *perm);
  if (k == NULL || perm == NULL) {
    free(k);
    free(perm);
    return fsq_error(FSQ_ERR_NOMEM, "ordered_indices: out of memory");
  }
  /* np.random.permutation, then stable argsorts by secondary and primary:
   * the same as one sort by (primary, secondary, position in perm). */
  if (shuffle) {
    fsq_rng rng = fsq_rng_make(seed, 0x6f72646572ull /* "order" */);
    fsq_rng_permutation(&rng, perm, n);
  } else {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
  }
  for (size_t r = 0; r < n; r++) {
    uint32_t i = perm[r];
    k[r] = (order_key){primary[i], secondary ? secondary[i] : 0, (uint32_t)r, i};
  }
  qsort(k, n, sizeof *k, by_key);
  for (size_t r = 0; r < n; r++) perm[r] = k[r].index;
  free(k);
  *out = perm;
  return FSQ_OK;
}

fsq_status fsq_data_filter_by_size(uint32_t *indices, size_t *n, const int64_t *src_sizes,
                                   const int64_t *tgt_sizes, int64_t max_src, int64_t max_tgt,
                                   int ignore_invalid, size_t *n_ignored) {
  size_t m = 0, dropped = 0;
  for (size_t r = 0; r < *n; r++) {
    uint32_t i = indices[r];
    int bad = (src_sizes && max_src > 0 && src_sizes[i] > max_src) ||
              (tgt_sizes && max_tgt > 0 && tgt_sizes[i] > max_tgt);
    if (!bad) {
      indices[m++] = i;
      continue;
    }
    if (!ignore_invalid)
      return fsq_error(FSQ_ERR_INVALID,
                       "size of sample #%u is invalid (source %lld, target %lld) since "
                       "max_positions=(%lld, %lld), skip this example with "
                       "--skip-invalid-size-inputs-valid-test",
                       i, (long long)(src_sizes ? src_sizes[i] : 0),
                       (long long)(tgt_sizes ? tgt_sizes[i] : 0), (long long)max_src,
                       (long long)max_tgt);
    dropped++;
  }
  *n = m;
  if (n_ignored) *n_ignored = dropped;
  return FSQ_OK;
}

static int batch_full(size_t len, int64_t num_tokens, int64_t max_tokens, int64_t max_sentences) {
  if (len == 0) return 0;
  if (max_sentences > 0 && (int64_t)len == max_sentences) return 1;
  return max_tokens > 0 && num_tokens > max_tokens;
}

fsq_status fsq_data_batch_by_size(const uint32_t *indices, size_t n, const int64_t *num_tokens,
                                  int64_t max_tokens, int64_t max_sentences, int64_t bsz_mult,
                                  fsq_batches *out) {
  memset(out, 0, sizeof *out);
  if (bsz_mult < 1) bsz_mult = 1;
  out->indices = malloc((n ? n : 1) * sizeof *out->indices);
  out->offsets = malloc((n + 1) * sizeof *out->offsets);
  if (out->indices == NULL || out->offsets == NULL) {
    fsq_batches_free(out);
    return fsq_error(FSQ_ERR_NOMEM, "batch_by_size: out of memory");
  }
  if (n) memcpy(out->indices, indices, n * sizeof *indices);
  /* The current batch is indices[begin, r); its longest sample is sample_len. */
  size_t begin = 0;
  int64_t sample_len = 0;
  out->offsets[0] = 0;
  for (size_t r = 0; r < n; r++) {
    int64_t t = num_tokens[indices[r]];
    if (t > sample_len) sample_len = t;
    if (max_tokens > 0 && sample_len > max_tokens) {
      fsq_batches_free(out);
      return fsq_error(FSQ_ERR_INVALID,
                       "sentence at index %u of size %lld exceeds max_tokens limit of %lld",
                       indices[r], (long long)sample_len, (long long)max_tokens);
    }
    size_t len = r - begin;
    if (batch_full(len, (int64_t)(len + 1) * sample_len, max_tokens, max_sentences)) {
      size_t mult = (size_t)bsz_mult, keep = mult * (len / mult);
      if (len % mult > keep) keep = len % mult;
      begin += keep;
      out->offsets[++out->count] = begin;
      sample_len = 0;
      for (size_t j = begin; j <= r; j++)
        if (num_tokens[indices[j]] > sample_len) sample_len = num_tokens[indices[j]];
    }
  }
  if (begin < n) out->offsets[++out->count] = n;
  return FSQ_OK;
}

void fsq_batches_free(fsq_batches *b) {
  free(b->indices);
  free(b->offsets);
  memset(b, 0, sizeof *b);
}
