/* fsq_data.h: the public API of framework/data: fairseq's dictionary
 * (dict.txt), its tokenizer, the mmap indexed dataset (.bin/.idx) and the
 * legacy TNTIDX reader, fairseq-preprocess as a library call, the language
 * pair and token-block datasets, batching and the epoch iterator. */
#ifndef FSQ_DATA_H
#define FSQ_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dictionary -----------------------------------------------------------
 * fairseq's Dictionary: <s>=0 <pad>=1 </s>=2 <unk>=3 are implicit, words are
 * found through a hash table. Symbols are byte strings (UTF-8). */
enum { FSQ_DICT_BOS = 0, FSQ_DICT_PAD = 1, FSQ_DICT_EOS = 2, FSQ_DICT_UNK = 3, FSQ_DICT_NSPECIAL = 4 };

typedef struct fsq_dictionary fsq_dictionary;

fsq_dictionary *fsq_dictionary_new(void); /* the four specials, count 1 each */
void fsq_dictionary_free(fsq_dictionary *d);
/* add_symbol(word, n, overwrite): an existing word gains n unless overwrite,
 * which appends the word again and points the index at the new entry.
 * Returns the index, or -1 (with fsq_error) when out of memory. */
int32_t fsq_dictionary_add(fsq_dictionary *d, const char *word, size_t len, int64_t n,
                           int overwrite);
/* The word's index, or -1 when absent. */
int32_t fsq_dictionary_find(const fsq_dictionary *d, const char *word, size_t len);
size_t fsq_dictionary_size(const fsq_dictionary *d);
const char *fsq_dictionary_symbol(const fsq_dictionary *d, size_t index, size_t *len);
int64_t fsq_dictionary_count(const fsq_dictionary *d, size_t index);
/* Adds every count of src to dst (add_symbol for each entry, in order). */
fsq_status fsq_dictionary_merge(fsq_dictionary *dst, const fsq_dictionary *src);
/* Dictionary.load: "<symbol> <count>[ #fairseq:overwrite]" lines, split on
 * the last space; name is used in messages. */
fsq_status fsq_dictionary_load(const char *path, fsq_dictionary **out);
fsq_status fsq_dictionary_parse(fsq_dictionary *d, const char *text, size_t len, const char *name);
/* Dictionary.finalize: keep specials, then at most nwords-4 words (nwords<=0:
 * all) by count descending, ties by symbol, stopping below threshold; then
 * pad with madeupwordNNNN (count 0) to a multiple of padding_factor. */
fsq_status fsq_dictionary_finalize(fsq_dictionary *d, int64_t threshold, int64_t nwords,
                                   int64_t padding_factor);
fsq_status fsq_dictionary_pad_to_multiple(fsq_dictionary *d, int64_t padding_factor);
/* Writes every non-special "symbol count" line to path (not atomically). */
fsq_status fsq_dictionary_save(const fsq_dictionary *d, const char *path);

/* ---- tokenizer ------------------------------------------------------------
 * fairseq's tokenize_line: split on Python's Unicode whitespace. */
typedef struct fsq_token {
  const char *ptr;
  size_t len;
} fsq_token;

/* Splits a line (valid UTF-8) into at most cap tokens; returns the count of
 * all tokens (may exceed cap: call again with a larger array). */
size_t fsq_tokenize_line(const char *line, size_t len, fsq_token *tokens, size_t cap);
/* Dictionary.encode_line with add_if_not_exist=False and </s> appended:
 * ids[0..n) where n = tokens + 1, growing *ids (capacity *cap) with
 * realloc. Unknown words become <unk> and are counted in *replaced. */
fsq_status fsq_dictionary_encode_line(const fsq_dictionary *d, const char *line, size_t len,
                                      int32_t **ids, size_t *cap, size_t *n, int64_t *replaced);

/* ---- indexed datasets -----------------------------------------------------
 * fairseq's MMapIndexedDataset: <prefix>.idx = "MMIDIDX\0\0", u64 version 1,
 * u8 dtype code, u64 N, i32 sizes[N], i64 byte pointers[N]; <prefix>.bin =
 * the items back to back. Also reads the legacy TorchNet "TNTIDX" format. */
typedef enum fsq_index_dtype {
  FSQ_IDX_UINT8 = 1,
  FSQ_IDX_INT8 = 2,
  FSQ_IDX_INT16 = 3,
  FSQ_IDX_INT32 = 4,
  FSQ_IDX_INT64 = 5,
  FSQ_IDX_FLOAT64 = 6,
  FSQ_IDX_DOUBLE = 7,
  FSQ_IDX_UINT16 = 8,
  FSQ_IDX_UINT32 = 9,
  FSQ_IDX_UINT64 = 10
} fsq_index_dtype;

/* Bytes per element, 0 for an unknown code. */
size_t fsq_index_dtype_size(int code);
/* best_fitting_int_dtype: uint16 below 65,500 symbols, uint32 below 2^32-1, else int64. */
fsq_index_dtype fsq_index_dtype_for_vocab(size_t vocab_size);

typedef struct fsq_indexed_writer fsq_indexed_writer;

/* Writes to the paths given (callers choose temporary names). */
fsq_status fsq_indexed_writer_open(const char *bin_path, fsq_index_dtype dtype,
                                   fsq_indexed_writer **out);
/* ids: [n], each must fit the dtype. */
fsq_status fsq_indexed_writer_add(fsq_indexed_writer *w, const int32_t *ids, size_t n);
/* Flushes .bin, writes the .idx and frees w (also on error). */
fsq_status fsq_indexed_writer_finish(fsq_indexed_writer *w, const char *idx_path);
void fsq_indexed_writer_abort(fsq_indexed_writer *w); /* closes, frees; files stay */

typedef struct fsq_indexed fsq_indexed;

/* Opens <prefix>.idx and <prefix>.bin (mmap), checking magic, version,
 * dtype, and that every item lies inside .bin and .bin has nothing more.
 * Legacy TNTIDX items are returned minus 1 (fairseq's fix_lua_indexing). */
fsq_status fsq_indexed_open(const char *prefix, fsq_indexed **out);
void fsq_indexed_close(fsq_indexed *ds);
size_t fsq_indexed_len(const fsq_indexed *ds);
int fsq_indexed_is_legacy(const fsq_indexed *ds);
fsq_index_dtype fsq_indexed_dtype(const fsq_indexed *ds);
int64_t fsq_indexed_item_size(const fsq_indexed *ds, size_t i); /* elements */
/* out: [item_size(i)] as int64. */
void fsq_indexed_get(const fsq_indexed *ds, size_t i, int64_t *out);
/* out: [count], elements start..start+count of item i (caller checks bounds). */
void fsq_indexed_get_range(const fsq_indexed *ds, size_t i, int64_t start, int64_t count,
                           int64_t *out);

/* Where the translation task finds a split: <dir>/<split>.<src>-<tgt>.<lang>,
 * else the reverse direction <split>.<tgt>-<src>.<lang> (fairseq's
 * split_exists). Writes both prefixes (without .bin/.idx), each of size bytes. */
fsq_status fsq_data_pair_prefixes(const char *dir, const char *split, const char *src,
                                  const char *tgt, char *src_prefix, char *tgt_prefix,
                                  size_t size);

/* ---- ordering, filtering, batching ---------------------------------------
 * fairseq's ordered_indices, filter_by_size and batch_by_size
 * (fairseq/data/data_utils.py, data_utils_fast.pyx). */

/* *out (malloc'd, [n]): 0..n-1 sorted by primary size, ties by secondary
 * size (may be NULL), ties by a Philox permutation of (seed) when shuffle,
 * else by index. LanguagePairDataset passes (src_sizes, tgt_sizes). */
fsq_status fsq_data_ordered_indices(size_t n, const int64_t *primary, const int64_t *secondary,
                                    int shuffle, uint64_t seed, uint32_t **out);
/* Drops indices whose src size > max_src or tgt size > max_tgt (a limit
 * <= 0 or sizes NULL: no limit), keeping order. Without ignore_invalid the
 * first such index is an error naming it, as in fairseq. */
fsq_status fsq_data_filter_by_size(uint32_t *indices, size_t *n, const int64_t *src_sizes,
                                   const int64_t *tgt_sizes, int64_t max_src, int64_t max_tgt,
                                   int ignore_invalid, size_t *n_ignored);

/* Batches: batch b is indices[offsets[b] .. offsets[b+1]). */
typedef struct fsq_batches {
  uint32_t *indices; /* [n] */
  size_t *offsets;   /* [count + 1] */
  size_t count;
} fsq_batches;

/* batch_by_size: consecutive indices while (len+1) * max num_tokens <=
 * max_tokens and len < max_sentences (<= 0: no limit); a full batch keeps a
 * multiple of bsz_mult sentences (or its remainder when smaller). */
fsq_status fsq_data_batch_by_size(const uint32_t *indices, size_t n, const int64_t *num_tokens,
                                  int64_t max_tokens, int64_t max_sentences, int64_t bsz_mult,
                                  fsq_batches *out);
void fsq_batches_free(fsq_batches *b);

/* ---- epoch iterator ---------------------------------------------------------
 * EpochBatchIterator + ShardedIterator: the batches are fixed for the run;
 * each epoch shuffles their order with Philox(seed + epoch) (not numpy's
 * stream), then rank shard_id takes batches shard_id, shard_id + shards, ...
 * Every rank gets ceil(count / shards) batches: a rank that runs out gets
 * empty batches (count 0), like fairseq's fill_value=[], for which the
 * trainer runs a dummy step so collective calls stay matched. */
typedef struct fsq_epoch_iter fsq_epoch_iter;

fsq_status fsq_epoch_iter_new(const fsq_batches *batches, uint64_t seed, int shuffle,
                              int num_shards, int shard_id, fsq_epoch_iter **out);
void fsq_epoch_iter_free(fsq_epoch_iter *it);
size_t fsq_epoch_iter_len(const fsq_epoch_iter *it); /* batches per epoch on this shard */
/* Starts epoch (1-based) at its first batch. */
fsq_status fsq_epoch_iter_begin(fsq_epoch_iter *it, int64_t epoch);
/* The next batch of the epoch: returns 1 and sets *indices and *count
 * (into the iterator's storage; count 0 for a filler batch), or returns 0
 * at the end of the epoch. */
int fsq_epoch_iter_next(fsq_epoch_iter *it, const uint32_t **indices, size_t *count);
/* (epoch, batches already taken in it): what a checkpoint stores. */
void fsq_epoch_iter_position(const fsq_epoch_iter *it, int64_t *epoch, size_t *index);
/* Continues epoch at batch index: the same batches a run that never
 * stopped would see next. */
fsq_status fsq_epoch_iter_restore(fsq_epoch_iter *it, int64_t epoch, size_t index);

/* ---- language pair dataset ---------------------------------------------------
 * LanguagePairDataset + its collater: source left-padded (default), target
 * right-padded, prev_output_tokens = target with </s> moved to the front,
 * samples sorted by source length, longest first (stable). */
typedef struct fsq_pair_dataset {
  const fsq_indexed *src, *tgt; /* tgt may be NULL */
  size_t n;
  int64_t *src_sizes, *tgt_sizes; /* [n], owned (tgt_sizes NULL without tgt) */
  int64_t *num_tokens;            /* [n] max(src, tgt), owned */
  int left_pad_source, left_pad_target;
} fsq_pair_dataset;

fsq_status fsq_pair_dataset_init(fsq_pair_dataset *ds, const fsq_indexed *src,
                                 const fsq_indexed *tgt, int left_pad_source, int left_pad_target);
void fsq_pair_dataset_free(fsq_pair_dataset *ds);

typedef struct fsq_pair_batch {
  int64_t bsz, src_len, tgt_len; /* tgt_len 0 without target */
  int64_t *id;                   /* [bsz] dataset indices */
  int64_t *src_tokens;           /* [bsz, src_len] */
  int64_t *src_lengths;          /* [bsz] */
  int64_t *target;               /* [bsz, tgt_len] or NULL */
  int64_t *prev_output_tokens;   /* [bsz, tgt_len] or NULL */
  int64_t ntokens;               /* non-pad target tokens (source without target) */
} fsq_pair_batch;

/* Arrays come from arena (reset it once the batch is used). */
fsq_status fsq_pair_collate(const fsq_pair_dataset *ds, const uint32_t *indices, size_t count,
                            fsq_arena *arena, fsq_pair_batch *out);

/* ---- token blocks for language modeling ---------------------------------------
 * TokenBlockDataset (include_targets) + MonolingualDataset's collater. */
typedef enum fsq_break_mode {
  FSQ_BREAK_NONE,
  FSQ_BREAK_COMPLETE,
  FSQ_BREAK_COMPLETE_DOC,
  FSQ_BREAK_EOS
} fsq_break_mode;

fsq_status fsq_break_mode_parse(const char *name, fsq_break_mode *out);

typedef struct fsq_token_blocks {
  const fsq_indexed *ds;
  size_t n;               /* blocks */
  int64_t *starts, *ends; /* [n] positions in the concatenated token stream */
  int64_t *sizes;         /* [n] ends - starts */
  int64_t *cum;           /* [items + 1] stream position of each item */
  size_t nitems;
} fsq_token_blocks;

fsq_status fsq_token_blocks_init(fsq_token_blocks *tb, const fsq_indexed *ds,
                                 int64_t tokens_per_sample, fsq_break_mode mode);
void fsq_token_blocks_free(fsq_token_blocks *tb);

typedef struct fsq_lm_batch {
  int64_t bsz, len;
  int64_t *id;          /* [bsz] */
  int64_t *src_tokens;  /* [bsz, len] stream shifted right by one (</s> first) */
  int64_t *src_lengths; /* [bsz] */
  int64_t *target;      /* [bsz, len] the block, right-padded */
  int64_t ntokens;
} fsq_lm_batch;

fsq_status fsq_token_blocks_collate(const fsq_token_blocks *tb, const uint32_t *indices,
                                    size_t count, fsq_arena *arena, fsq_lm_batch *out);

/* ---- fairseq-preprocess -----------------------------------------------------
 * Builds or loads the dictionaries and binarizes every split into destdir,
 * with fairseq's file names and log lines. Outputs are written under
 * temporary names and renamed at the end; on failure nothing new remains. */
typedef struct fsq_preprocess_args {
  /* With only_source, target_lang may be NULL (files <split>.<src>-None.<src>)
   * and so may source_lang: then the input is the prefix itself and the
   * outputs are <split>.bin/.idx and dict.txt, as for language models. */
  const char *source_lang, *target_lang;
  const char *trainpref, *validpref, *testpref; /* NULL when not given */
  const char *destdir;
  const char *srcdict, *tgtdict;
  int joined_dictionary, only_source, dict_only;
  int64_t thresholdsrc, thresholdtgt, nwordssrc, nwordstgt, padding_factor;
  int workers;
  const char *dataset_impl; /* "mmap" or "raw" */
  const char *namespace_line; /* first line of preprocess.log, may be NULL */
} fsq_preprocess_args;

fsq_status fsq_preprocess_run(const fsq_preprocess_args *args);

/* Python's format(x, ".3"): 3 significant digits, at least one decimal. */
void fsq_format_py3(double x, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_DATA_H */
