/* test_data_batching.c: ordering, filtering, batch_by_size, the epoch
 * iterator (coverage, max-tokens, shuffling, seeds, sharding, resume), the
 * language pair collater and token blocks. */
#include "data/fsq_data.h"
#include "fsq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 1000

/* A deterministic set of sizes in [2, 41]. */
static int64_t size_of(size_t i) { return 2 + (int64_t)((i * 7919u + 13u) % 40u); }

static void make_batches(fsq_batches *b, int64_t *num_tokens, int64_t max_tokens) {
  int64_t src[N], tgt[N];
  for (size_t i = 0; i < N; i++) {
    src[i] = size_of(i);
    tgt[i] = size_of(i * 3 + 1);
    num_tokens[i] = src[i] > tgt[i] ? src[i] : tgt[i];
  }
  uint32_t *order;
  CU_ASSERT_EQUAL_FATAL(fsq_data_ordered_indices(N, src, tgt, 1, 7, &order), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_data_batch_by_size(order, N, num_tokens, max_tokens, 0, 8, b), FSQ_OK);
  free(order);
}

/* Takes one epoch; seen[i] counts example i; returns the batch count and
 * writes the first index of each batch into firsts (may be NULL). */
static size_t run_epoch(fsq_epoch_iter *it, int64_t epoch, int *seen, uint32_t *firsts,
                        const int64_t *num_tokens, int64_t max_tokens) {
  CU_ASSERT_EQUAL(fsq_epoch_iter_begin(it, epoch), FSQ_OK);
  const uint32_t *idx;
  size_t count, b = 0;
  while (fsq_epoch_iter_next(it, &idx, &count)) {
    int64_t longest = 0;
    for (size_t k = 0; k < count; k++) {
      seen[idx[k]]++;
      if (num_tokens[idx[k]] > longest) longest = num_tokens[idx[k]];
    }
    CU_ASSERT((int64_t)count * longest <= max_tokens);
    if (firsts) firsts[b] = count ? idx[0] : UINT32_MAX;
    b++;
  }
  return b;
}

static void test_batches_cover_every_example_once_per_epoch(void) {
  fsq_batches b;
  int64_t nt[N];
  make_batches(&b, nt, 400);
  fsq_epoch_iter *it;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 3, 1, 1, 0, &it), FSQ_OK);
  for (int64_t epoch = 1; epoch <= 3; epoch++) {
    int seen[N] = {0};
    size_t nb = run_epoch(it, epoch, seen, NULL, nt, 400);
    CU_ASSERT_EQUAL(nb, b.count);
    for (size_t i = 0; i < N; i++) CU_ASSERT_EQUAL(seen[i], 1);
  }
  fsq_epoch_iter_free(it);
  fsq_batches_free(&b);
}

static void test_batches_differ_between_epochs_and_repeat_for_a_seed(void) {
  fsq_batches b;
  int64_t nt[N];
  make_batches(&b, nt, 400);
  fsq_epoch_iter *it, *again, *other;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 3, 1, 1, 0, &it), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 3, 1, 1, 0, &again), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 4, 1, 1, 0, &other), FSQ_OK);
  uint32_t e1[N], e2[N], r1[N], o1[N];
  int seen[N];
  size_t nb = run_epoch(it, 1, seen, e1, nt, 400);
  run_epoch(it, 2, seen, e2, nt, 400);
  run_epoch(again, 1, seen, r1, nt, 400);
  run_epoch(other, 1, seen, o1, nt, 400);
  CU_ASSERT(nb > 20);
  CU_ASSERT_NOT_EQUAL(memcmp(e1, e2, nb * sizeof *e1), 0);
  CU_ASSERT_EQUAL(memcmp(e1, r1, nb * sizeof *e1), 0);
  CU_ASSERT_NOT_EQUAL(memcmp(e1, o1, nb * sizeof *e1), 0);
  fsq_epoch_iter_free(it);
  fsq_epoch_iter_free(again);
  fsq_epoch_iter_free(other);
  fsq_batches_free(&b);
}

static void test_restored_iterator_continues_where_it_stopped(void) {
  fsq_batches b;
  int64_t nt[N];
  make_batches(&b, nt, 400);
  fsq_epoch_iter *it, *resumed;
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 11, 1, 1, 0, &it), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 11, 1, 1, 0, &resumed), FSQ_OK);
  fsq_epoch_iter_begin(it, 2);
  const uint32_t *idx, *idx2;
  size_t count, count2;
  for (int k = 0; k < 7; k++) fsq_epoch_iter_next(it, &idx, &count);
  int64_t epoch;
  size_t pos;
  fsq_epoch_iter_position(it, &epoch, &pos);
  CU_ASSERT_EQUAL(epoch, 2);
  CU_ASSERT_EQUAL(pos, 7);
  CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_restore(resumed, epoch, pos), FSQ_OK);
  size_t left = 0;
  while (fsq_epoch_iter_next(it, &idx, &count)) {
    CU_ASSERT_FATAL(fsq_epoch_iter_next(resumed, &idx2, &count2));
    CU_ASSERT_EQUAL(count, count2);
    CU_ASSERT_EQUAL(memcmp(idx, idx2, count * sizeof *idx), 0);
    left++;
  }
  CU_ASSERT_FALSE(fsq_epoch_iter_next(resumed, &idx2, &count2));
  CU_ASSERT_EQUAL(left + 7, b.count);
  CU_ASSERT_EQUAL(fsq_epoch_iter_restore(resumed, 1, b.count + 1), FSQ_ERR_INVALID);
  fsq_epoch_iter_free(it);
  fsq_epoch_iter_free(resumed);
  fsq_batches_free(&b);
}

static void test_shards_get_equal_batch_counts_and_cover_everything(void) {
  fsq_batches b;
  int64_t nt[N];
  make_batches(&b, nt, 400);
  int seen[N] = {0};
  size_t fillers = 0, lens[3];
  for (int shard = 0; shard < 3; shard++) {
    fsq_epoch_iter *it;
    CU_ASSERT_EQUAL_FATAL(fsq_epoch_iter_new(&b, 5, 1, 3, shard, &it), FSQ_OK);
    uint32_t firsts[N];
    lens[shard] = run_epoch(it, 4, seen, firsts, nt, 400);
    for (size_t k = 0; k < lens[shard]; k++) fillers += firsts[k] == UINT32_MAX;
    fsq_epoch_iter_free(it);
  }
  CU_ASSERT_EQUAL(lens[0], lens[1]);
  CU_ASSERT_EQUAL(lens[1], lens[2]);
  CU_ASSERT_EQUAL(lens[0], (b.count + 2) / 3);
  CU_ASSERT_EQUAL(fillers, 3 * lens[0] - b.count);
  for (size_t i = 0; i < N; i++) CU_ASSERT_EQUAL(seen[i], 1);
  fsq_batches_free(&b);
}

static void test_batch_by_size_keeps_multiples_of_bsz_mult(void) {
  uint32_t idx[20];
  int64_t nt[20];
  for (int i = 0; i < 20; i++) idx[i] = (uint32_t)i, nt[i] = 1;
  fsq_batches b;
  CU_ASSERT_EQUAL_FATAL(fsq_data_batch_by_size(idx, 20, nt, 10, 0, 8, &b), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(b.count, 3);
  CU_ASSERT_EQUAL(b.offsets[1], 8);
  CU_ASSERT_EQUAL(b.offsets[2], 16);
  CU_ASSERT_EQUAL(b.offsets[3], 20);
  fsq_batches_free(&b);
  for (int i = 0; i < 10; i++) nt[i] = 5;
  CU_ASSERT_EQUAL_FATAL(fsq_data_batch_by_size(idx, 10, nt, 20, 0, 1, &b), FSQ_OK);
  CU_ASSERT_EQUAL(b.count, 3); /* 4 + 4 + 2 */
  CU_ASSERT_EQUAL(b.offsets[1], 4);
  fsq_batches_free(&b);
  CU_ASSERT_EQUAL_FATAL(fsq_data_batch_by_size(idx, 10, nt, 0, 3, 1, &b), FSQ_OK);
  CU_ASSERT_EQUAL(b.count, 4); /* --batch-size 3 */
  fsq_batches_free(&b);
  nt[4] = 30;
  CU_ASSERT_EQUAL(fsq_data_batch_by_size(idx, 10, nt, 20, 0, 1, &b), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "exceeds max_tokens limit of 20"));
}

static void test_ordered_indices_sort_by_source_then_target(void) {
  int64_t src[6] = {3, 1, 3, 2, 1, 3}, tgt[6] = {5, 2, 4, 9, 1, 4};
  uint32_t *o;
  CU_ASSERT_EQUAL_FATAL(fsq_data_ordered_indices(6, src, tgt, 0, 0, &o), FSQ_OK);
  uint32_t want[6] = {4, 1, 3, 2, 5, 0};
  CU_ASSERT_EQUAL(memcmp(o, want, sizeof want), 0);
  free(o);
}

static void test_filter_by_size_refuses_or_skips_long_examples(void) {
  int64_t src[4] = {3, 10, 3, 2}, tgt[4] = {5, 2, 12, 1};
  uint32_t idx[4] = {0, 1, 2, 3};
  size_t n = 4, ignored = 0;
  CU_ASSERT_EQUAL(fsq_data_filter_by_size(idx, &n, src, tgt, 8, 8, 0, &ignored), FSQ_ERR_INVALID);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "sample #1"));
  CU_ASSERT_EQUAL(fsq_data_filter_by_size(idx, &n, src, tgt, 8, 8, 1, &ignored), FSQ_OK);
  CU_ASSERT_EQUAL(n, 2);
  CU_ASSERT_EQUAL(ignored, 2);
  CU_ASSERT_EQUAL(idx[0], 0);
  CU_ASSERT_EQUAL(idx[1], 3);
}

static fsq_indexed *write_and_open(const char *dir, const char *name, const int32_t *const *items,
                                   const size_t *lens, size_t n) {
  char bin[600], idx[600], prefix[512];
  snprintf(prefix, sizeof prefix, "%s/%s", dir, name);
  snprintf(bin, sizeof bin, "%s.bin", prefix);
  snprintf(idx, sizeof idx, "%s.idx", prefix);
  fsq_indexed_writer *w;
  fsq_indexed_writer_open(bin, FSQ_IDX_UINT16, &w);
  for (size_t i = 0; i < n; i++) fsq_indexed_writer_add(w, items[i], lens[i]);
  fsq_indexed_writer_finish(w, idx);
  fsq_indexed *ds = NULL;
  CU_ASSERT_EQUAL(fsq_indexed_open(prefix, &ds), FSQ_OK);
  return ds;
}

static void test_pair_collate_pads_and_moves_eos(void) {
  char *dir = fsq_test_tempdir("pair");
  const int32_t s0[] = {10, 11, 2}, s1[] = {12, 13, 14, 15, 2}, t0[] = {20, 2}, t1[] = {21, 22, 23, 2};
  const int32_t *srcs[] = {s0, s1}, *tgts[] = {t0, t1};
  size_t sl[] = {3, 5}, tl[] = {2, 4};
  fsq_indexed *src = write_and_open(dir, "s", srcs, sl, 2), *tgt = write_and_open(dir, "t", tgts, tl, 2);
  fsq_pair_dataset ds;
  CU_ASSERT_EQUAL_FATAL(fsq_pair_dataset_init(&ds, src, tgt, 1, 0), FSQ_OK);
  fsq_arena *arena = fsq_arena_create(1 << 16);
  uint32_t batch[2] = {0, 1};
  fsq_pair_batch b;
  CU_ASSERT_EQUAL_FATAL(fsq_pair_collate(&ds, batch, 2, arena, &b), FSQ_OK);
  CU_ASSERT_EQUAL(b.bsz, 2);
  CU_ASSERT_EQUAL(b.src_len, 5);
  CU_ASSERT_EQUAL(b.tgt_len, 4);
  CU_ASSERT_EQUAL(b.id[0], 1); /* longest source first */
  CU_ASSERT_EQUAL(b.src_lengths[1], 3);
  int64_t want_src[10] = {12, 13, 14, 15, 2, 1, 1, 10, 11, 2};
  int64_t want_tgt[8] = {21, 22, 23, 2, 20, 2, 1, 1};
  int64_t want_prev[8] = {2, 21, 22, 23, 2, 20, 1, 1};
  CU_ASSERT_EQUAL(memcmp(b.src_tokens, want_src, sizeof want_src), 0);
  CU_ASSERT_EQUAL(memcmp(b.target, want_tgt, sizeof want_tgt), 0);
  CU_ASSERT_EQUAL(memcmp(b.prev_output_tokens, want_prev, sizeof want_prev), 0);
  CU_ASSERT_EQUAL(b.ntokens, 6);
  fsq_arena_destroy(arena);
  fsq_pair_dataset_free(&ds);
  fsq_indexed_close(src);
  fsq_indexed_close(tgt);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_pair_collate_without_target_keeps_ties_in_batch_order(void) {
  char *dir = fsq_test_tempdir("pair_src");
  const int32_t a[] = {10, 2}, b[] = {11, 12, 2}, c[] = {13, 2};
  const int32_t *items[] = {a, b, c};
  size_t lens[] = {2, 3, 2};
  fsq_indexed *src = write_and_open(dir, "s", items, lens, 3);
  fsq_pair_dataset ds;
  CU_ASSERT_EQUAL_FATAL(fsq_pair_dataset_init(&ds, src, NULL, 0, 0), FSQ_OK);
  fsq_arena *arena = fsq_arena_create(1 << 12);
  uint32_t batch[3] = {2, 1, 0};
  fsq_pair_batch out;
  CU_ASSERT_EQUAL_FATAL(fsq_pair_collate(&ds, batch, 3, arena, &out), FSQ_OK);
  CU_ASSERT_EQUAL(out.id[0], 1);
  CU_ASSERT_EQUAL(out.id[1], 2);
  CU_ASSERT_EQUAL(out.id[2], 0);
  CU_ASSERT_EQUAL(out.ntokens, 7);
  CU_ASSERT_PTR_NULL(out.target);
  int64_t want[9] = {11, 12, 2, 13, 2, 1, 10, 2, 1}; /* right-padded source */
  CU_ASSERT_EQUAL(memcmp(out.src_tokens, want, sizeof want), 0);
  fsq_arena_destroy(arena);
  fsq_pair_dataset_free(&ds);
  fsq_indexed_close(src);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_token_blocks_follow_break_modes(void) {
  char *dir = fsq_test_tempdir("blocks");
  /* sentences of 3, 1 (document break), 4, 2 tokens */
  const int32_t a[] = {10, 11, 2}, sep[] = {2}, c[] = {12, 13, 14, 2}, d[] = {15, 2};
  const int32_t *items[] = {a, sep, c, d};
  size_t lens[] = {3, 1, 4, 2};
  fsq_indexed *ds = write_and_open(dir, "m", items, lens, 4);
  fsq_token_blocks tb;
  CU_ASSERT_EQUAL_FATAL(fsq_token_blocks_init(&tb, ds, 4, FSQ_BREAK_NONE), FSQ_OK);
  CU_ASSERT_EQUAL(tb.n, 3); /* 10 tokens in blocks of 4 */
  CU_ASSERT_EQUAL(tb.sizes[2], 2);
  fsq_arena *arena = fsq_arena_create(1 << 16);
  uint32_t pick[2] = {1, 0};
  fsq_lm_batch b;
  CU_ASSERT_EQUAL_FATAL(fsq_token_blocks_collate(&tb, pick, 2, arena, &b), FSQ_OK);
  /* stream: 10 11 2 | 2 | 12 13 14 2 | 15 2 */
  int64_t want_tgt[8] = {12, 13, 14, 2, 10, 11, 2, 2};
  int64_t want_src[8] = {2, 12, 13, 14, 2, 10, 11, 2};
  CU_ASSERT_EQUAL(memcmp(b.target, want_tgt, sizeof want_tgt), 0);
  CU_ASSERT_EQUAL(memcmp(b.src_tokens, want_src, sizeof want_src), 0);
  CU_ASSERT_EQUAL(b.ntokens, 8);
  fsq_token_blocks_free(&tb);
  CU_ASSERT_EQUAL_FATAL(fsq_token_blocks_init(&tb, ds, 4, FSQ_BREAK_COMPLETE), FSQ_OK);
  CU_ASSERT_EQUAL(tb.n, 3); /* [3+1] [4] [2] */
  CU_ASSERT_EQUAL(tb.sizes[0], 4);
  CU_ASSERT_EQUAL(tb.sizes[1], 4);
  fsq_token_blocks_free(&tb);
  CU_ASSERT_EQUAL_FATAL(fsq_token_blocks_init(&tb, ds, 8, FSQ_BREAK_COMPLETE_DOC), FSQ_OK);
  CU_ASSERT_EQUAL(tb.n, 2); /* [3] | [4+2], the separator dropped */
  CU_ASSERT_EQUAL(tb.starts[1], 4);
  CU_ASSERT_EQUAL(tb.sizes[1], 6);
  fsq_token_blocks_free(&tb);
  CU_ASSERT_EQUAL_FATAL(fsq_token_blocks_init(&tb, ds, 2, FSQ_BREAK_EOS), FSQ_OK);
  CU_ASSERT_EQUAL(tb.n, 4);
  fsq_token_blocks_free(&tb);
  fsq_break_mode m;
  CU_ASSERT_EQUAL(fsq_break_mode_parse("complete_doc", &m), FSQ_OK);
  CU_ASSERT_EQUAL(m, FSQ_BREAK_COMPLETE_DOC);
  CU_ASSERT_EQUAL(fsq_break_mode_parse("sentence", &m), FSQ_ERR_INVALID);
  fsq_arena_destroy(arena);
  fsq_indexed_close(ds);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_pair_prefixes_find_either_direction(void) {
  char *dir = fsq_test_tempdir("prefixes");
  const int32_t a[] = {4, 2};
  const int32_t *items[] = {a};
  size_t lens[] = {2};
  fsq_indexed_close(write_and_open(dir, "valid.en-de.de", items, lens, 1));
  char sp[1024], tp[1024];
  CU_ASSERT_EQUAL_FATAL(fsq_data_pair_prefixes(dir, "valid", "de", "en", sp, tp, sizeof sp), FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(sp, "/valid.en-de.de"));
  CU_ASSERT_PTR_NOT_NULL(strstr(tp, "/valid.en-de.en"));
  CU_ASSERT_EQUAL(fsq_data_pair_prefixes(dir, "test", "de", "en", sp, tp, sizeof sp), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "test.de-en.de"));
  fsq_test_remove_tree(dir);
  free(dir);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_batches_cover_every_example_once_per_epoch),
      FSQ_TEST_CASE(test_batches_differ_between_epochs_and_repeat_for_a_seed),
      FSQ_TEST_CASE(test_restored_iterator_continues_where_it_stopped),
      FSQ_TEST_CASE(test_shards_get_equal_batch_counts_and_cover_everything),
      FSQ_TEST_CASE(test_batch_by_size_keeps_multiples_of_bsz_mult),
      FSQ_TEST_CASE(test_ordered_indices_sort_by_source_then_target),
      FSQ_TEST_CASE(test_filter_by_size_refuses_or_skips_long_examples),
      FSQ_TEST_CASE(test_pair_collate_pads_and_moves_eos),
      FSQ_TEST_CASE(test_pair_collate_without_target_keeps_ties_in_batch_order),
      FSQ_TEST_CASE(test_token_blocks_follow_break_modes),
      FSQ_TEST_CASE(test_pair_prefixes_find_either_direction),
      FSQ_TEST_END};
  return fsq_test_main("data_batching", cases);
}
