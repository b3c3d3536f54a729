/* pair_dataset.c: fairseq's LanguagePairDataset and its collater
 * (collate_tokens with left/right padding and move_eos_to_beginning). */
#include "data/fsq_data.h"

#include <stdlib.h>
#include <string.h>

void fsq_pair_dataset_free(fsq_pair_dataset *ds) {
  free(ds->src_sizes);
  free(ds->tgt_sizes);
  free(ds->num_tokens);
  memset(ds, 0, sizeof *ds);
}

fsq_status fsq_pair_dataset_init(fsq_pair_dataset *ds, const fsq_indexed *src,
                                 const fsq_indexed *tgt, int left_pad_source, int left_pad_target) {
  memset(ds, 0, sizeof *ds);
  size_t n = fsq_indexed_len(src);
  if (tgt && fsq_indexed_len(tgt) != n)
    return fsq_error(FSQ_ERR_FORMAT, "language pair: source has %zu examples, target %zu", n,
                     fsq_indexed_len(tgt));
  ds->src = src;
  ds->tgt = tgt;
  ds->n = n;
  ds->left_pad_source = left_pad_source;
  ds->left_pad_target = left_pad_target;
  ds->src_sizes = malloc((n ? n : 1) * sizeof(int64_t));
  ds->num_tokens = malloc((n ? n : 1) * sizeof(int64_t));
  if (tgt) ds->tgt_sizes = malloc((n ? n : 1) * sizeof(int64_t));
  if (!ds->src_sizes || !ds->num_tokens || (tgt && !ds->tgt_sizes)) {
    fsq_pair_dataset_free(ds);
    return fsq_error(FSQ_ERR_NOMEM, "language pair: out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    ds->src_sizes[i] = fsq_indexed_item_size(src, i);
    ds->num_tokens[i] = ds->src_sizes[i];
    if (tgt) {
      ds->tgt_sizes[i] = fsq_indexed_item_size(tgt, i);
      if (ds->tgt_sizes[i] > ds->num_tokens[i]) ds->num_tokens[i] = ds->tgt_sizes[i];
    }
  }
  return FSQ_OK;
}

/* Copies item i of ds into row: [width], padded left or right; with
 * move_eos the last token (</s>) goes first and the rest shift right. */
static void fill_row(const fsq_indexed *ds, size_t i, int64_t width, int left_pad, int move_eos,
                     int64_t *row) {
  int64_t len = fsq_indexed_item_size(ds, i);
  int64_t *dst = row + (left_pad ? width - len : 0);
  for (int64_t k = 0; k < width; k++) row[k] = FSQ_DICT_PAD;
  if (len == 0) return;
  if (move_eos) {
    dst[0] = FSQ_DICT_EOS;
    fsq_indexed_get_range(ds, i, 0, len - 1, dst + 1);
  } else {
    fsq_indexed_get_range(ds, i, 0, len, dst);
  }
}

static int64_t *alloc_i64(fsq_arena *arena, size_t n) {
  return fsq_arena_alloc(arena, (n ? n : 1) * sizeof(int64_t), 64);
}

static int64_t count_nonpad(const int64_t *row, int64_t width) {
  int64_t n = 0;
  for (int64_t k = 0; k < width; k++) n += row[k] != FSQ_DICT_PAD;
  return n;
}

fsq_status fsq_pair_collate(const fsq_pair_dataset *ds, const uint32_t *indices, size_t count,
                            fsq_arena *arena, fsq_pair_batch *out) {
  memset(out, 0, sizeof *out);
  out->bsz = (int64_t)count;
  for (size_t r = 0; r < count; r++) {
    if (ds->src_sizes[indices[r]] > out->src_len) out->src_len = ds->src_sizes[indices[r]];
    if (ds->tgt && ds->tgt_sizes[indices[r]] > out->tgt_len) out->tgt_len = ds->tgt_sizes[indices[r]];
  }
  size_t w = (size_t)out->src_len;
  /* rows in batch order first: fairseq sorts by ne(pad).sum(), longest first */
  int64_t *rows = alloc_i64(arena, count * w), *lens = alloc_i64(arena, count);
  int64_t *order = alloc_i64(arena, count);
  out->id = alloc_i64(arena, count);
  out->src_lengths = alloc_i64(arena, count);
  out->src_tokens = alloc_i64(arena, count * w);
  if (!rows || !lens || !order || !out->id || !out->src_lengths || !out->src_tokens)
    return fsq_error_code();
  for (size_t r = 0; r < count; r++) {
    fill_row(ds->src, indices[r], out->src_len, ds->left_pad_source, 0, rows + r * w);
    lens[r] = count_nonpad(rows + r * w, out->src_len);
    size_t j = r; /* stable insertion: ties keep batch order */
    while (j > 0 && lens[order[j - 1]] < lens[r]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = (int64_t)r;
  }
  for (size_t r = 0; r < count; r++) {
    out->id[r] = indices[order[r]];
    out->src_lengths[r] = lens[order[r]];
    if (w) memcpy(out->src_tokens + r * w, rows + (size_t)order[r] * w, w * sizeof *rows);
  }
  if (ds->tgt == NULL) {
    for (size_t r = 0; r < count; r++) out->ntokens += out->src_lengths[r];
    return FSQ_OK;
  }
  size_t tw = (size_t)out->tgt_len;
  out->target = alloc_i64(arena, count * tw);
  out->prev_output_tokens = alloc_i64(arena, count * tw);
  if (!out->target || !out->prev_output_tokens) return fsq_error_code();
  for (size_t r = 0; r < count; r++) {
    size_t i = (size_t)out->id[r];
    fill_row(ds->tgt, i, out->tgt_len, ds->left_pad_target, 0, out->target + r * tw);
    fill_row(ds->tgt, i, out->tgt_len, ds->left_pad_target, 1, out->prev_output_tokens + r * tw);
    out->ntokens += count_nonpad(out->target + r * tw, out->tgt_len);
  }
  return FSQ_OK;
}
