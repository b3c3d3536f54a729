/* splits.c: the translation task's data: load_langpair_dataset (one
 * dataset per split, no shards), fairseq_task.get_batch_iterator
 * (ordered_indices, filter_by_size, batch_by_size, the epoch iterator) and
 * the collater's tensors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "translation.h"

#define DATA_UTILS_LOGGER "fairseq.data.data_utils"
#define FAIRSEQ_TASK_LOGGER "fairseq.tasks.fairseq_task"

static void split_free(translation_split *s) {
  if (s == NULL) return;
  fsq_epoch_iter_free(s->iter);
  fsq_pair_dataset_free(&s->pair);
  fsq_indexed_close(s->src);
  fsq_indexed_close(s->tgt);
  free(s->name);
  free(s);
}

void translation_splits_free(fsq_task *t) {
  for (size_t i = 0; i < t->nsplits; i++) split_free(t->splits[i]);
  free(t->splits);
  t->splits = NULL;
  t->nsplits = 0;
}

static translation_split *find_split(const fsq_task *t, const char *name) {
  for (size_t i = 0; i < t->nsplits; i++)
    if (strcmp(t->splits[i]->name, name) == 0) return t->splits[i];
  return NULL;
}

/* Python's "{:,}": 1234567 -> "1,234,567". */
static void format_thousands(size_t n, char *buf, size_t size) {
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%zu", n);
  size_t o = 0;
  for (int i = 0; i < len && o + 1 < size; i++) {
    if (i > 0 && (len - i) % 3 == 0 && o + 2 < size) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
}

static fsq_status open_indexed(const char *prefix, fsq_indexed **out) {
  fsq_status st = fsq_indexed_open(prefix, out);
  if (st != FSQ_OK) return st;
  char n[32];
  format_thousands(fsq_indexed_len(*out), n, sizeof n);
  fsq_log_info(DATA_UTILS_LOGGER, "loaded %s examples from: %s", n, prefix);
  return FSQ_OK;
}

static int prefix_exists(const char *prefix) {
  char p[4200];
  snprintf(p, sizeof p, "%s.idx", prefix);
  if (access(p, F_OK) != 0) return 0;
  snprintf(p, sizeof p, "%s.bin", prefix);
  return access(p, F_OK) == 0;
}

/* Opens the split's source and (when present, as fairseq allows for
 * generation) target datasets. */
static fsq_status load_split(fsq_task *t, const char *name, translation_split **out) {
  char src_prefix[4096], tgt_prefix[4096];
  fsq_status st = fsq_data_pair_prefixes(t->data, name, t->src_lang, t->tgt_lang, src_prefix,
                                         tgt_prefix, sizeof src_prefix);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation: split '%s'", name);
  translation_split *s = calloc(1, sizeof *s);
  if (s == NULL || (s->name = strdup(name)) == NULL) {
    free(s);
    return fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  }
  st = open_indexed(src_prefix, &s->src);
  if (st == FSQ_OK && prefix_exists(tgt_prefix)) st = open_indexed(tgt_prefix, &s->tgt);
  if (st == FSQ_OK)
    st = fsq_pair_dataset_init(&s->pair, s->src, s->tgt, t->left_pad_source, t->left_pad_target);
  if (st != FSQ_OK) {
    split_free(s);
    return fsq_error_wrap(st, "translation: split '%s'", name);
  }
  fsq_log_info(TRANSLATION_LOGGER, "%s %s %s-%s %zu examples", t->data, name, t->src_lang,
               t->tgt_lang, s->pair.n);
  *out = s;
  return FSQ_OK;
}

/* The split, loaded on first use and kept for the task's life. */
static fsq_status get_split(fsq_task *t, const char *name, translation_split **out) {
  if ((*out = find_split(t, name)) != NULL) return FSQ_OK;
  translation_split **grown = realloc(t->splits, (t->nsplits + 1) * sizeof *grown);
  if (grown == NULL) return fsq_error(FSQ_ERR_NOMEM, "translation: out of memory");
  t->splits = grown;
  fsq_status st = load_split(t, name, out);
  if (st == FSQ_OK) t->splits[t->nsplits++] = *out;
  return st;
}

/* resolve_max_positions: the smaller of the task's limit and the caller's
 * (<= 0: none). */
static int64_t min_limit(int64_t task_limit, int64_t spec_limit) {
  if (spec_limit <= 0) return task_limit;
  if (task_limit <= 0) return spec_limit;
  return task_limit < spec_limit ? task_limit : spec_limit;
}

/* fairseq's warning names the first few skipped ids: up to ten of them in
 * the ordered indices, printed as numpy prints an array ("[3 17]"). */
static void skipped_ids(const fsq_pair_dataset *ds, const uint32_t *order, size_t n,
                        int64_t max_src, int64_t max_tgt, char *buf, size_t size) {
  size_t len = (size_t)snprintf(buf, size, "[");
  for (size_t r = 0, shown = 0; r < n && shown < 10 && len + 12 < size; r++) {
    uint32_t i = order[r];
    int bad = (max_src > 0 && ds->src_sizes[i] > max_src) ||
              (ds->tgt_sizes && max_tgt > 0 && ds->tgt_sizes[i] > max_tgt);
    if (bad) len += (size_t)snprintf(buf + len, size - len, "%s%u", shown++ ? " " : "", i);
  }
  snprintf(buf + len, size - len, "]");
}

/* ordered_indices -> filter_by_size -> batch_by_size for one split. */
static fsq_status make_batches(const fsq_task *t, const char *name, const translation_split *s,
                               const fsq_batch_spec *spec, fsq_batches *out) {
  const fsq_pair_dataset *ds = &s->pair;
  uint32_t *order = NULL;
  /* LanguagePairDataset shuffles every split but "test" before its stable
     sorts (by target size, then source size), under the run's seed. */
  int shuffle = strcmp(name, "test") != 0;
  fsq_status st = fsq_data_ordered_indices(ds->n, ds->src_sizes, ds->tgt_sizes, shuffle,
                                           spec->seed, &order);
  if (st != FSQ_OK) return st;
  int64_t max_src = min_limit(t->max_source_positions, spec->max_source_positions);
  int64_t max_tgt = min_limit(t->max_target_positions, spec->max_target_positions);
  size_t n = ds->n, ignored = 0;
  char ids[160] = "";
  if (spec->ignore_invalid_inputs) skipped_ids(ds, order, n, max_src, max_tgt, ids, sizeof ids);
  /* without --skip-invalid-size-inputs-valid-test the first one is an error */
  st = fsq_data_filter_by_size(order, &n, ds->src_sizes, ds->tgt_sizes, max_src, max_tgt,
                               spec->ignore_invalid_inputs, &ignored);
  if (st == FSQ_OK && ignored > 0) {
    char count[32];
    format_thousands(ignored, count, sizeof count);
    fsq_log_warning(FAIRSEQ_TASK_LOGGER,
                    "%s samples have invalid sizes and will be skipped, max_positions=(%lld, "
                    "%lld), first few sample ids=%s",
                    count, (long long)max_src, (long long)max_tgt, ids);
  }
  if (st == FSQ_OK)
    st = fsq_data_batch_by_size(order, n, ds->num_tokens, spec->max_tokens, spec->max_sentences,
                                spec->required_batch_size_multiple, out);
  free(order);
  return st;
}

fsq_status translation_get_batch_iterator(fsq_task *t, const char *split,
                                          const fsq_batch_spec *spec, fsq_epoch_iter **out) {
  *out = NULL;
  translation_split *s;
  fsq_status st = get_split(t, split, &s);
  if (st != FSQ_OK) return st;
  fsq_batches batches = {0};
  st = make_batches(t, split, s, spec, &batches);
  fsq_epoch_iter *it = NULL;
  if (st == FSQ_OK)
    st = fsq_epoch_iter_new(&batches, spec->seed, spec->shuffle, spec->num_shards, spec->shard_id,
                            &it);
  fsq_batches_free(&batches);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation: split '%s'", split);
  fsq_epoch_iter_free(s->iter); /* a new spec replaces the split's earlier iterator */
  s->iter = it;
  *out = it;
  return FSQ_OK;
}

size_t translation_dataset_size(const fsq_task *t, const char *split) {
  const translation_split *s = find_split(t, split);
  return s != NULL ? s->pair.n : 0;
}

/* data: [d0] or [d0, d1] i64 from the collate arena, copied into ctx. */
static fsq_tensor *to_tensor(fsq_ctx *ctx, int ndim, int64_t d0, int64_t d1, const int64_t *data) {
  int64_t shape[2] = {d0, d1};
  return fsq_from_data(ctx, FSQ_I64, ndim, shape, data);
}

fsq_status translation_collate(fsq_task *t, const char *split, const uint32_t *indices,
                               size_t count, fsq_ctx *ctx, fsq_sample *out) {
  memset(out, 0, sizeof *out);
  const translation_split *s = find_split(t, split);
  if (s == NULL)
    return fsq_error(FSQ_ERR_INVALID, "translation: collate: split '%s' is not loaded", split);
  for (size_t r = 0; r < count; r++)
    if (indices[r] >= s->pair.n)
      return fsq_error(FSQ_ERR_INVALID, "translation: collate: index %u outside split '%s' (%zu)",
                       indices[r], split, s->pair.n);
  fsq_arena_reset(t->arena);
  fsq_pair_batch b;
  fsq_status st = fsq_pair_collate(&s->pair, indices, count, t->arena, &b);
  if (st != FSQ_OK) return fsq_error_wrap(st, "translation: collate '%s'", split);
  out->bsz = b.bsz;
  out->ntokens = b.ntokens;
  out->id = to_tensor(ctx, 1, b.bsz, 0, b.id);
  out->src_tokens = to_tensor(ctx, 2, b.bsz, b.src_len, b.src_tokens);
  out->src_lengths = to_tensor(ctx, 1, b.bsz, 0, b.src_lengths);
  int ok = out->id && out->src_tokens && out->src_lengths;
  if (b.target != NULL) {
    out->target = to_tensor(ctx, 2, b.bsz, b.tgt_len, b.target);
    out->prev_output_tokens = to_tensor(ctx, 2, b.bsz, b.tgt_len, b.prev_output_tokens);
    ok = ok && out->target && out->prev_output_tokens;
  }
  if (!ok) {
    st = fsq_ctx_status(ctx);
    return fsq_error_wrap(st != FSQ_OK ? st : FSQ_ERR_NOMEM, "translation: collate '%s'", split);
  }
  return FSQ_OK;
}
