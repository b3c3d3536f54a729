/* bleu.c: fairseq's BLEU (fairseq/scoring/bleu.py Scorer over
 * fairseq/clib/libbleu/libbleu.cpp), kept step for step so that the
 * counts and the printed line are the same as fairseq's. */
#include "generate/scoring_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fsq_bleu {
  fsq_bleu_stat stat;
  int32_t pad, eos, unk;
  int32_t *ref;     /* the reference with unk replaced: [ref_cap] */
  size_t ref_cap;
  fsq_ngram_table table;
};

fsq_bleu *fsq_bleu_new(int32_t pad, int32_t eos, int32_t unk) {
  fsq_bleu *b = calloc(1, sizeof *b);
  if (b == NULL) {
    fsq_error(FSQ_ERR_NOMEM, "bleu scorer: out of memory");
    return NULL;
  }
  b->pad = pad;
  b->eos = eos;
  b->unk = unk;
  return b;
}

void fsq_bleu_free(fsq_bleu *b) {
  if (b == NULL) return;
  free(b->ref);
  fsq_ngram_table_free(&b->table);
  free(b);
}

void fsq_bleu_reset(fsq_bleu *b, int one_init) {
  memset(&b->stat, 0, sizeof b->stat);
  if (one_init) /* bleu_one_init: +1 on orders 2..4 only */
    for (int k = 1; k < 4; k++) b->stat.match[k] = b->stat.count[k] = 1;
}

const fsq_bleu_stat *fsq_bleu_get_stat(const fsq_bleu *b) { return &b->stat; }

/* bleu_ltrim + bleu_rtrim: leading pads; then trailing eos/pad, but libbleu's
 * loop stops at index 0, so a lone eos (an empty line) stays one token. */
static void trim(const int32_t **s, size_t *len, int32_t pad, int32_t eos) {
  if (*len == 0) return; /* libbleu reads out of bounds here; nothing to count */
  size_t start = 0;
  while (start < *len && (*s)[start] == pad) start++;
  *s += start;
  *len -= start;
  if (*len == 0) return; /* all pads */
  size_t end = *len - 1;
  while (end > 0 && ((*s)[end] == eos || (*s)[end] == pad)) end--;
  *len = end + 1;
}

/* bleu_addngram: total += pred n-grams; each reference n-gram consumes one
 * matching prediction n-gram (clipped counts). */
static fsq_status add_order(fsq_bleu *b, uint32_t n, const int32_t *ref, size_t reflen,
                            const int32_t *pred, size_t predlen) {
  if (predlen < n) return FSQ_OK;
  size_t npred = predlen - n + 1;
  b->stat.count[n - 1] += npred;
  if (reflen < n) return FSQ_OK;
  if (fsq_ngram_table_reset(&b->table, npred) != FSQ_OK) return fsq_error_code();
  for (size_t i = 0; i < npred; i++) fsq_ngram_table_find(&b->table, pred + i, n, 1)->count++;
  for (size_t i = 0; i + n <= reflen; i++) {
    fsq_ngram_entry *e = fsq_ngram_table_find(&b->table, ref + i, n, 0);
    if (e != NULL && e->count > 0) {
      b->stat.match[n - 1]++;
      e->count--;
    }
  }
  return FSQ_OK;
}

fsq_status fsq_bleu_add(fsq_bleu *b, const int32_t *ref, size_t ref_len, const int32_t *pred,
                        size_t pred_len) {
  void *p = b->ref;
  if (fsq_grow(&p, &b->ref_cap, ref_len, sizeof *b->ref) != FSQ_OK) return fsq_error_code();
  b->ref = p;
  for (size_t i = 0; i < ref_len; i++) {
    if (ref[i] < 0)
      return fsq_error(FSQ_ERR_INVALID, "bleu: reference token %zu has negative id %d", i,
                       (int)ref[i]);
    b->ref[i] = ref[i] == b->unk ? -999 : ref[i]; /* don't match unknown words */
  }
  const int32_t *r = b->ref;
  trim(&r, &ref_len, b->pad, b->eos);
  trim(&pred, &pred_len, b->pad, b->eos);
  b->stat.reflen += ref_len;
  b->stat.predlen += pred_len;
  for (uint32_t n = 1; n <= 4; n++)
    if (add_order(b, n, r, ref_len, pred, pred_len) != FSQ_OK) return fsq_error_code();
  return FSQ_OK;
}

void fsq_bleu_precision(const fsq_bleu_stat *s, double precision[4]) {
  for (int k = 0; k < 4; k++)
    precision[k] = s->count[k] > 0 ? (double)s->match[k] / (double)s->count[k] : 0.0;
}

double fsq_bleu_brevity(const fsq_bleu_stat *s) {
  double r = (double)s->reflen / (double)s->predlen;
  double e = exp(1.0 - r);
  return e < 1.0 ? e : 1.0; /* min(1, exp(1 - r)) */
}

double fsq_bleu_score(const fsq_bleu_stat *s, int order) {
  double p[4], psum = 0.0;
  fsq_bleu_precision(s, p);
  for (int k = 0; k < order && k < 4; k++) psum += p[k] > 0 ? log(p[k]) : -INFINITY;
  return fsq_bleu_brevity(s) * exp(psum / order) * 100;
}

fsq_status fsq_bleu_result_string(const fsq_bleu_stat *s, int order, char *buf, size_t size) {
  if (order < 1 || order > 4)
    return fsq_error(FSQ_ERR_INVALID, "BLEU scores for order %d aren't supported (1..4)", order);
  if (s->predlen == 0) return fsq_error(FSQ_ERR_INVALID, "BLEU: the hypotheses have no tokens");
  if (s->reflen == 0) return fsq_error(FSQ_ERR_INVALID, "BLEU: the references have no tokens");
  double p[4];
  fsq_bleu_precision(s, p);
  /* "BLEU{} = {:2.2f}, {:2.1f}" + "/{:2.1f}" per extra order +
   * " (BP={:.3f}, ratio={:.3f}, syslen={}, reflen={})" */
  size_t used = 0;
  int w = snprintf(buf, size, "BLEU%d = %2.2f, %2.1f", order, fsq_bleu_score(s, order), p[0] * 100);
  for (int k = 1; w >= 0 && k < order; k++) {
    used += (size_t)w;
    w = snprintf(buf + (used < size ? used : size), used < size ? size - used : 0, "/%2.1f",
                 p[k] * 100);
  }
  if (w >= 0) {
    used += (size_t)w;
    w = snprintf(buf + (used < size ? used : size), used < size ? size - used : 0,
                 " (BP=%.3f, ratio=%.3f, syslen=%llu, reflen=%llu)", fsq_bleu_brevity(s),
                 (double)s->predlen / (double)s->reflen, (unsigned long long)s->predlen,
                 (unsigned long long)s->reflen);
  }
  if (w < 0 || used + (size_t)w >= size)
    return fsq_error(FSQ_ERR_INVALID, "BLEU: result string does not fit in %zu bytes", size);
  return FSQ_OK;
}
