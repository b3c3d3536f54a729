/* sacrebleu.c: corpus BLEU as sacreBLEU 1.5.1 computes it (BLEU.corpus_score,
 * reference_stats, extract_ngrams, compute_bleu, BLEUScore.format). 1.5.1
 * is the version fairseq_cli/score.py works with: it hands corpus_bleu open
 * files, which sacreBLEU 2.x refuses. Unlike 2.x, 1.5.1 smooths even when no
 * n-gram matches at all (2.x returns 0.0 early, its issue #141). */
#include "generate/scoring_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fsq_sacrebleu {
  fsq_sacrebleu_tokenizer tokenizer;
  int lowercase;
  fsq_sacrebleu_stats stats;
  uint64_t tokenized_lines;
  fsq_word_ids *words;     /* tokens -> ids, so n-grams compare as ints */
  fsq_text lower, tok, a, b;
  int32_t *hyp, *ref;      /* token ids: [hyp_cap], [ref_cap] */
  size_t hyp_cap, ref_cap;
  fsq_ngram_table table;   /* the hypothesis' n-grams of every order */
};

fsq_sacrebleu *fsq_sacrebleu_new(fsq_sacrebleu_tokenizer tokenizer, int lowercase) {
  fsq_sacrebleu *sb = calloc(1, sizeof *sb);
  if (sb == NULL || (sb->words = fsq_word_ids_new()) == NULL) {
    free(sb);
    fsq_error(FSQ_ERR_NOMEM, "sacrebleu: out of memory");
    return NULL;
  }
  sb->tokenizer = tokenizer;
  sb->lowercase = lowercase;
  return sb;
}

void fsq_sacrebleu_free(fsq_sacrebleu *sb) {
  if (sb == NULL) return;
  fsq_word_ids_free(sb->words);
  fsq_text_free(&sb->lower);
  fsq_text_free(&sb->tok);
  fsq_text_free(&sb->a);
  fsq_text_free(&sb->b);
  free(sb->hyp);
  free(sb->ref);
  fsq_ngram_table_free(&sb->table);
  free(sb);
}

const fsq_sacrebleu_stats *fsq_sacrebleu_get_stats(const fsq_sacrebleu *sb) { return &sb->stats; }
uint64_t fsq_sacrebleu_tokenized_lines(const fsq_sacrebleu *sb) { return sb->tokenized_lines; }

/* Lowercase, rstrip, tokenize one segment and map its tokens to ids in
 * (*ids)[0..*n). is_hyp counts lines that look tokenized. */
static fsq_status segment_ids(fsq_sacrebleu *sb, const char *s, size_t len, int is_hyp,
                              int32_t **ids, size_t *cap, size_t *n) {
  if (sb->lowercase) {
    if (fsq_utf8_lower(s, len, &sb->lower) != FSQ_OK) return fsq_error_code();
    s = sb->lower.data;
    len = sb->lower.len;
  }
  size_t start;
  fsq_utf8_strip(s, len, 0, 1, &start, &len);
  if (is_hyp && sb->tokenizer == FSQ_SACREBLEU_TOK_13A && len >= 2 && s[len - 2] == ' ' &&
      s[len - 1] == '.')
    sb->tokenized_lines++;
  if (sb->tokenizer == FSQ_SACREBLEU_TOK_13A) {
    if (fsq_tokenize_13a_with(s, len, &sb->tok, &sb->a, &sb->b) != FSQ_OK) return fsq_error_code();
    s = sb->tok.data;
    len = sb->tok.len;
  }
  const int32_t *enc;
  size_t m;
  if (fsq_word_ids_encode(sb->words, s, len, &enc, &m) != FSQ_OK) return fsq_error_code();
  m--; /* drop the eos encode_line appends */
  void *p = *ids;
  if (fsq_grow(&p, cap, m + 1, sizeof **ids) != FSQ_OK) return fsq_error_code();
  *ids = p;
  memcpy(*ids, enc, m * sizeof *enc);
  *n = m;
  return FSQ_OK;
}

/* Folds one reference into the table: best = max(best, its count). */
static void count_reference(fsq_ngram_table *t, const int32_t *ref, size_t len) {
  for (uint32_t n = 1; n <= 4; n++)
    for (size_t i = 0; i + n <= len; i++) {
      fsq_ngram_entry *e = fsq_ngram_table_find(t, ref + i, n, 0);
      if (e != NULL) e->cur++;
    }
  for (size_t i = 0; i < t->cap; i++) {
    fsq_ngram_entry *e = &t->slots[i];
    if (e->seq == NULL) continue;
    if (e->cur > e->best) e->best = e->cur;
    e->cur = 0;
  }
}

fsq_status fsq_sacrebleu_add(fsq_sacrebleu *sb, const char *hyp, size_t hyp_len,
                             const char *const *refs, const size_t *ref_lens, size_t nrefs) {
  if (nrefs == 0) return fsq_error(FSQ_ERR_INVALID, "sacrebleu: a segment needs a reference");
  size_t nh;
  if (segment_ids(sb, hyp, hyp_len, 1, &sb->hyp, &sb->hyp_cap, &nh) != FSQ_OK)
    return fsq_error_code();
  if (fsq_ngram_table_reset(&sb->table, 4 * nh) != FSQ_OK) return fsq_error_code();
  for (uint32_t n = 1; n <= 4; n++)
    for (size_t i = 0; i + n <= nh; i++) fsq_ngram_table_find(&sb->table, sb->hyp + i, n, 1)->count++;
  uint64_t closest_len = 0, closest_diff = UINT64_MAX;
  for (size_t r = 0; r < nrefs; r++) {
    size_t nr;
    if (segment_ids(sb, refs[r], ref_lens[r], 0, &sb->ref, &sb->ref_cap, &nr) != FSQ_OK)
      return fsq_error_code();
    uint64_t diff = nr > nh ? nr - nh : nh - nr;
    if (diff < closest_diff || (diff == closest_diff && nr < closest_len)) {
      closest_diff = diff;
      closest_len = nr;
    }
    count_reference(&sb->table, sb->ref, nr);
  }
  sb->stats.sys_len += nh;
  sb->stats.ref_len += closest_len;
  for (size_t i = 0; i < sb->table.cap; i++) {
    const fsq_ngram_entry *e = &sb->table.slots[i];
    if (e->seq == NULL) continue;
    sb->stats.correct[e->n - 1] += e->count < e->best ? e->count : e->best;
    sb->stats.total[e->n - 1] += e->count;
  }
  return FSQ_OK;
}

/* my_log: log with log(0) floored to -9999999999. */
static double my_log(double x) { return x == 0.0 ? -9999999999.0 : log(x); }

void fsq_sacrebleu_compute(const fsq_sacrebleu_stats *st, fsq_sacrebleu_smooth smooth,
                           double smooth_value, int effective_order, fsq_sacrebleu_score *out) {
  if (smooth_value < 0) smooth_value = smooth == FSQ_SMOOTH_FLOOR ? 0.1 : 1.0;
  double correct[4], total[4];
  memset(out, 0, sizeof *out);
  for (int k = 0; k < 4; k++) correct[k] = (double)st->correct[k], total[k] = (double)st->total[k];
  double smooth_mteval = 1.0;
  int eff_order = 4;
  for (int n = 1; n <= 4; n++) {
    if (smooth == FSQ_SMOOTH_ADD_K && n > 1) correct[n - 1] += smooth_value, total[n - 1] += smooth_value;
    if (total[n - 1] == 0) break;
    if (effective_order) eff_order = n;
    if (correct[n - 1] == 0) {
      if (smooth == FSQ_SMOOTH_EXP) {
        smooth_mteval *= 2;
        out->precisions[n - 1] = 100. / (smooth_mteval * total[n - 1]);
      } else if (smooth == FSQ_SMOOTH_FLOOR) {
        out->precisions[n - 1] = 100. * smooth_value / total[n - 1];
      }
    } else {
      out->precisions[n - 1] = 100. * correct[n - 1] / total[n - 1];
    }
  }
  if (st->sys_len < st->ref_len)
    out->bp = st->sys_len > 0 ? exp(1 - (double)st->ref_len / (double)st->sys_len) : 0.0;
  else
    out->bp = 1.0;
  double logsum = 0.0;
  for (int k = 0; k < eff_order; k++) logsum += my_log(out->precisions[k]);
  out->score = out->bp * exp(logsum / eff_order);
  out->sys_len = st->sys_len;
  out->ref_len = st->ref_len;
}

fsq_status fsq_sacrebleu_format(const fsq_sacrebleu_score *sc, char *buf, size_t size) {
  if (sc->ref_len == 0) return fsq_error(FSQ_ERR_INVALID, "sacrebleu: the references have no tokens");
  int w = snprintf(buf, size,
                   "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %llu "
                   "ref_len = %llu)",
                   sc->score, sc->precisions[0], sc->precisions[1], sc->precisions[2],
                   sc->precisions[3], sc->bp, (double)sc->sys_len / (double)sc->ref_len,
                   (unsigned long long)sc->sys_len, (unsigned long long)sc->ref_len);
  if (w < 0 || (size_t)w >= size)
    return fsq_error(FSQ_ERR_INVALID, "sacrebleu: result string does not fit in %zu bytes", size);
  return FSQ_OK;
}
