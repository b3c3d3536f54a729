/* fsq_scoring.h: translation scoring, as fairseq computes it.
 *
 * - fairseq's own BLEU (fairseq/scoring/bleu.py over clib/libbleu): clipped
 *   n-gram matches on integer token ids, pad/eos trimmed, unk never matched,
 *   and its result_string "BLEU4 = 29.29, 60.3/35.0/22.8/15.3 (BP=...)".
 * - fsq_word_ids: the word -> id map fairseq-score builds with a fresh
 *   Dictionary (specials <s> <pad> </s> <unk> = 0..3, words added on sight).
 * - sacreBLEU corpus BLEU with the 13a tokenizer, matching sacreBLEU 1.5.1
 *   (the last release whose corpus_bleu accepts the file objects that
 *   fairseq_cli/score.py passes it; 2.x refuses them).
 * - fairseq's post_process (--post-process / --remove-bpe).
 *
 * Text is UTF-8 given as (pointer, length); it need not be NUL-terminated.
 * The sequence generator has its own header in this folder. */
#ifndef FSQ_SCORING_H
#define FSQ_SCORING_H

#include <stddef.h>
#include <stdint.h>

#include "core/fsq_core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fairseq BLEU on token ids ------------------------------------------ */

/* fairseq's BleuStat: index k of match/count is order k+1. */
typedef struct fsq_bleu_stat {
  uint64_t reflen, predlen;
  uint64_t match[4], count[4];
} fsq_bleu_stat;

typedef struct fsq_bleu fsq_bleu; /* a Scorer: the stat plus scratch space */

/* fairseq's BleuConfig defaults are pad=1, eos=2, unk=3. NULL when out of memory. */
fsq_bleu *fsq_bleu_new(int32_t pad, int32_t eos, int32_t unk);
void fsq_bleu_free(fsq_bleu *bleu);
/* Scorer.reset: zeros, or with one_init the +1 smoothing of sentence BLEU
 * (orders 2..4 start at 1/1; order 1 at 0/0). */
void fsq_bleu_reset(fsq_bleu *bleu, int one_init);
/* Scorer.add(ref, pred): ref ids equal to unk become -999 (never matched),
 * leading pads and trailing pad/eos are trimmed from both (libbleu keeps the
 * first token even when it is eos: an empty line scores as one token). A
 * negative ref id is refused, as fairseq asserts.
 * ref: [ref_len], pred: [pred_len] */
fsq_status fsq_bleu_add(fsq_bleu *bleu, const int32_t *ref, size_t ref_len, const int32_t *pred,
                        size_t pred_len);
const fsq_bleu_stat *fsq_bleu_get_stat(const fsq_bleu *bleu);

/* Scorer.precision (0 where count is 0), brevity, score(order). */
void fsq_bleu_precision(const fsq_bleu_stat *stat, double precision[4]);
double fsq_bleu_brevity(const fsq_bleu_stat *stat);
double fsq_bleu_score(const fsq_bleu_stat *stat, int order);
/* Scorer.result_string(order), order 1..4, byte for byte. Fails (as fairseq
 * would divide by zero) when syslen or reflen is 0, or buf is too small. */
fsq_status fsq_bleu_result_string(const fsq_bleu_stat *stat, int order, char *buf, size_t size);

/* ---- words to ids, as fairseq-score's Dictionary ------------------------ */

enum { FSQ_WORD_BOS = 0, FSQ_WORD_PAD = 1, FSQ_WORD_EOS = 2, FSQ_WORD_UNK = 3 };

typedef struct fsq_word_ids fsq_word_ids;

fsq_word_ids *fsq_word_ids_new(void);
void fsq_word_ids_free(fsq_word_ids *words);
/* Dictionary.encode_line: splits on Unicode whitespace (Python's str.split),
 * maps each word to its id, adding unseen words, and appends eos. *ids
 * points into words and stays valid until the next call. */
fsq_status fsq_word_ids_encode(fsq_word_ids *words, const char *line, size_t len,
                               const int32_t **ids, size_t *n);
size_t fsq_word_ids_count(const fsq_word_ids *words); /* specials included */

/* ---- text helpers ------------------------------------------------------- */

/* A growable byte buffer; data is NUL-terminated after each operation. */
typedef struct fsq_text {
  char *data;
  size_t len, cap;
} fsq_text;

void fsq_text_free(fsq_text *text);
/* Python's str.lower() of valid UTF-8 into out (replacing its content).
 * Case mapping comes from the C library's C.UTF-8 tables, plus U+0130 ->
 * "i\u0307" as Python's full mapping; final-sigma context is not applied. */
fsq_status fsq_utf8_lower(const char *s, size_t len, fsq_text *out);

/* ---- sacreBLEU ------------------------------------------------------------ */

/* mteval-v13a tokenization (sacrebleu/tokenizers/tokenizer_13a.py) of one
 * line into out: tokens joined by single spaces, no leading/trailing space. */
fsq_status fsq_tokenize_13a(const char *line, size_t len, fsq_text *out);

typedef enum fsq_sacrebleu_tokenizer {
  FSQ_SACREBLEU_TOK_13A, /* sacreBLEU's default */
  FSQ_SACREBLEU_TOK_NONE /* text already tokenized (fairseq's --scoring sacrebleu) */
} fsq_sacrebleu_tokenizer;

typedef enum fsq_sacrebleu_smooth {
  FSQ_SMOOTH_EXP,   /* NIST/mteval-v13a: the default of corpus_bleu */
  FSQ_SMOOTH_NONE,
  FSQ_SMOOTH_FLOOR, /* default value 0.1 */
  FSQ_SMOOTH_ADD_K  /* default value 1 */
} fsq_sacrebleu_smooth;

/* Sufficient statistics; index k is order k+1. */
typedef struct fsq_sacrebleu_stats {
  uint64_t sys_len, ref_len;
  uint64_t correct[4], total[4];
} fsq_sacrebleu_stats;

typedef struct fsq_sacrebleu_score {
  double score;         /* 0..100 */
  double precisions[4]; /* percentages */
  double bp;
  uint64_t sys_len, ref_len;
} fsq_sacrebleu_score;

typedef struct fsq_sacrebleu fsq_sacrebleu; /* a corpus being accumulated */

fsq_sacrebleu *fsq_sacrebleu_new(fsq_sacrebleu_tokenizer tokenizer, int lowercase);
void fsq_sacrebleu_free(fsq_sacrebleu *sb);
/* One segment: the hypothesis and its references (one per reference
 * stream), raw lines. Each is lowercased if asked, right-stripped and
 * tokenized; the closest reference length (shorter on ties) and the
 * maximum reference count of each n-gram are used, as sacreBLEU does. */
fsq_status fsq_sacrebleu_add(fsq_sacrebleu *sb, const char *hyp, size_t hyp_len,
                             const char *const *refs, const size_t *ref_lens, size_t nrefs);
const fsq_sacrebleu_stats *fsq_sacrebleu_get_stats(const fsq_sacrebleu *sb);
/* Hypotheses that end in " ." after right-stripping (sacreBLEU warns at 100
 * of them that the output looks tokenized); counted only with 13a. */
uint64_t fsq_sacrebleu_tokenized_lines(const fsq_sacrebleu *sb);

/* BLEU.compute_bleu. smooth_value < 0 takes the method's default. */
void fsq_sacrebleu_compute(const fsq_sacrebleu_stats *stats, fsq_sacrebleu_smooth smooth,
                           double smooth_value, int effective_order, fsq_sacrebleu_score *out);
/* BLEUScore.format(): "BLEU = 29.29 60.3/35.0/22.8/15.3 (BP = 1.000 ratio =
 * 1.018 hyp_len = 50 ref_len = 49)". Fails when ref_len is 0 (sacreBLEU
 * 1.5.1 divides by it) or buf is too small. */
fsq_status fsq_sacrebleu_format(const fsq_sacrebleu_score *score, char *buf, size_t size);

/* ---- post-processing ---------------------------------------------------- */

/* data_utils.post_process(sentence, symbol) into out (replacing its
 * content): "sentencepiece", "wordpiece", "letter", "silence", "_EOW",
 * "subword_nmt" (= "@@ "), "@@ ", "@@"; NULL or "none" copies. Another
 * symbol is refused, as fairseq raises NotImplementedError. */
fsq_status fsq_post_process(const char *sentence, size_t len, const char *symbol, fsq_text *out);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_SCORING_H */
