/* token_block.c: fairseq's TokenBlockDataset (include_targets=True) over
 * the concatenated token stream of a monolingual dataset, and
 * MonolingualDataset's collater (right padding). */
#include "data/fsq_data.h"

#include <stdlib.h>
#include <string.h>

fsq_status fsq_break_mode_parse(const char *name, fsq_break_mode *out) {
  static const char *const names[] = {"none", "complete", "complete_doc", "eos"};
  for (int i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0) {
      *out = (fsq_break_mode)i;
      return FSQ_OK;
    }
  return fsq_error(FSQ_ERR_INVALID,
                   "--sample-break-mode %s: expected none, complete, complete_doc or eos", name);
}

void fsq_token_blocks_free(fsq_token_blocks *tb) {
  free(tb->starts);
  free(tb->ends);
  free(tb->sizes);
  free(tb->cum);
  memset(tb, 0, sizeof *tb);
}

static void push(fsq_token_blocks *tb, int64_t s, int64_t e) {
  tb->starts[tb->n] = s;
  tb->ends[tb->n] = e;
  tb->sizes[tb->n] = e - s;
  tb->n++;
}

/* _get_slice_indices_fast: blocks of whole sentences (complete,
 * complete_doc where a one-token sentence separates documents), one block
 * per sentence (eos), or fixed-size cuts of the stream (none). */
static void slice(fsq_token_blocks *tb, const int64_t *sizes, size_t m, int64_t bs,
                  fsq_break_mode mode) {
  int64_t total = tb->cum[m];
  if (mode == FSQ_BREAK_NONE) {
    for (int64_t s = 0; s < total; s += bs) push(tb, s, s + bs < total ? s + bs : total);
    return;
  }
  if (mode == FSQ_BREAK_EOS) {
    for (size_t i = 0; i < m; i++) push(tb, tb->cum[i], tb->cum[i + 1]);
    return;
  }
  int doc = mode == FSQ_BREAK_COMPLETE_DOC;
  int64_t keep_min = doc ? 1 : 0; /* complete_doc keeps only non-empty documents */
  int64_t tok = 0, curr = 0;
  size_t i = 0;
  while (i < m) {
    if ((curr + sizes[i] <= bs || curr == 0) && !(doc && sizes[i] == 1)) {
      curr += sizes[i++];
      continue;
    }
    if (curr > keep_min) push(tb, tok, tok + curr);
    tok += curr;
    curr = 0;
    if (doc && sizes[i] == 1) tok += sizes[i++];
  }
  if (curr > keep_min) push(tb, tok, tok + curr);
}

fsq_status fsq_token_blocks_init(fsq_token_blocks *tb, const fsq_indexed *ds,
                                 int64_t tokens_per_sample, fsq_break_mode mode) {
  memset(tb, 0, sizeof *tb);
  if (tokens_per_sample < 1)
    return fsq_error(FSQ_ERR_INVALID, "--tokens-per-sample must be positive");
  size_t m = fsq_indexed_len(ds);
  int64_t *sizes = malloc((m ? m : 1) * sizeof *sizes);
  tb->cum = malloc((m + 1) * sizeof *tb->cum);
  if (sizes == NULL || tb->cum == NULL) goto nomem;
  tb->cum[0] = 0;
  for (size_t i = 0; i < m; i++) {
    sizes[i] = fsq_indexed_item_size(ds, i);
    tb->cum[i + 1] = tb->cum[i] + sizes[i];
  }
  size_t cap = m + (size_t)(tb->cum[m] / tokens_per_sample) + 1;
  tb->starts = malloc(cap * sizeof(int64_t));
  tb->ends = malloc(cap * sizeof(int64_t));
  tb->sizes = malloc(cap * sizeof(int64_t));
  if (!tb->starts || !tb->ends || !tb->sizes) goto nomem;
  tb->ds = ds;
  tb->nitems = m;
  slice(tb, sizes, m, tokens_per_sample, mode);
  free(sizes);
  return FSQ_OK;
nomem:
  free(sizes);
  fsq_token_blocks_free(tb);
  return fsq_error(FSQ_ERR_NOMEM, "token blocks: out of memory");
}

/* out: [e - s] = stream[s, e). */
static void read_stream(const fsq_token_blocks *tb, int64_t s, int64_t e, int64_t *out) {
  size_t lo = 0, hi = tb->nitems; /* the item holding position s */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (tb->cum[mid] <= s) lo = mid;
    else hi = mid;
  }
  for (size_t i = lo; s < e; i++) {
    int64_t off = s - tb->cum[i], avail = tb->cum[i + 1] - s, take = e - s < avail ? e - s : avail;
    if (take > 0) fsq_indexed_get_range(tb->ds, i, off, take, out);
    out += take > 0 ? take : 0;
    s += take > 0 ? take : 0;
  }
}

fsq_status fsq_token_blocks_collate(const fsq_token_blocks *tb, const uint32_t *indices,
                                    size_t count, fsq_arena *arena, fsq_lm_batch *out) {
  memset(out, 0, sizeof *out);
  out->bsz = (int64_t)count;
  for (size_t r = 0; r < count; r++)
    if (tb->sizes[indices[r]] > out->len) out->len = tb->sizes[indices[r]];
  size_t cells = count * (size_t)out->len;
  out->id = fsq_arena_alloc(arena, (count + 1) * sizeof(int64_t), 64);
  out->src_lengths = fsq_arena_alloc(arena, (count + 1) * sizeof(int64_t), 64);
  out->src_tokens = fsq_arena_alloc(arena, (cells + 1) * sizeof(int64_t), 64);
  out->target = fsq_arena_alloc(arena, (cells + 1) * sizeof(int64_t), 64);
  if (!out->id || !out->src_lengths || !out->src_tokens || !out->target) return fsq_error_code();
  for (size_t k = 0; k < cells; k++) out->src_tokens[k] = out->target[k] = FSQ_DICT_PAD;
  for (size_t r = 0; r < count; r++) {
    uint32_t b = indices[r];
    int64_t s = tb->starts[b], e = tb->ends[b], len = e - s;
    int64_t *src = out->src_tokens + r * (size_t)out->len, *tgt = out->target + r * (size_t)out->len;
    out->id[r] = b;
    out->src_lengths[r] = len;
    out->ntokens += len;
    read_stream(tb, s, e, tgt);
    if (len == 0) continue;
    /* source = the stream shifted right by one; </s> before the very first token */
    if (s == 0) {
      src[0] = FSQ_DICT_EOS;
      memcpy(src + 1, tgt, (size_t)(len - 1) * sizeof *src);
    } else {
      src[0] = 0;
      read_stream(tb, s - 1, s, src);
      memcpy(src + 1, tgt, (size_t)(len - 1) * sizeof *src);
    }
  }
  return FSQ_OK;
}
