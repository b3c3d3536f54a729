/* toy_corpus: the project's own synthetic parallel corpus for demos, tests
 * and benchmarks. A small grammar generates a source sentence (SVO,
 * adjectives before the noun, prepositions) and its translation (SOV,
 * adjectives after the noun, postpositions), with gender/number agreement on
 * target determiners and adjectives and tense/number agreement on verbs.
 * About 3,000 stems per side; output depends only on (seed, split).
 *
 *   toy_corpus --lines N --seed S [--stream K] SRC_FILE TGT_FILE
 */
#include "core/fsq_core.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NOUNS = 1500, VERBS = 600, ADJS = 500, ADVS = 150, NAMES = 200, PREPS = 12 };
enum { OFF_NOUN = 0, OFF_VERB = 1600, OFF_ADJ = 2300, OFF_ADV = 2900, OFF_NAME = 3100 };

static const char *const src_syl[] = {"ka", "to", "ri", "me", "sa", "no", "lu", "pe", "di", "fo",
                                      "ga", "hi", "ju", "be", "mo", "ra", "te", "vi", "wo", "ze"};
static const char *const tgt_syl[] = {"zu", "mel", "ar", "qi", "tor", "ne", "vas", "ul", "ko",
                                      "bri", "es", "ya", "dom", "il", "xa", "pu", "ren", "og",
                                      "sti", "eu"};

typedef struct line {
  char buf[1024];
  size_t len;
} line;

static void put(line *l, const char *s) {
  size_t n = strlen(s);
  if (l->len + n + 2 >= sizeof l->buf) return;
  if (l->len) l->buf[l->len++] = ' ';
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

/* Stem number k in three syllables of a side's alphabet, plus a suffix. */
static void word(line *l, const char *const *syl, int k, const char *suffix) {
  char w[64];
  snprintf(w, sizeof w, "%s%s%s%s", syl[(k / 400) % 20], syl[(k / 20) % 20], syl[k % 20], suffix);
  put(l, w);
}

/* Zipf-like choice of one of n items: small indices are frequent. */
static int pick(fsq_rng *r, int n) {
  float u = fsq_rng_uniform(r);
  int k = (int)((float)n * u * u * u);
  return k < n ? k : n - 1;
}

static int chance(fsq_rng *r, float p) { return fsq_rng_uniform(r) < p; }

typedef struct np {
  int noun, name, plural, definite, nadj, adj[2];
} np;

static np make_np(fsq_rng *r, int allow_name) {
  np x = {0};
  if (allow_name && chance(r, 0.15f)) {
    x.name = 1 + pick(r, NAMES);
    return x;
  }
  x.noun = pick(r, NOUNS);
  x.plural = chance(r, 0.3f);
  x.definite = chance(r, 0.6f);
  x.nadj = chance(r, 0.45f) + chance(r, 0.15f);
  for (int i = 0; i < x.nadj; i++) x.adj[i] = pick(r, ADJS);
  return x;
}

static int feminine(int noun) { return (noun * 2654435761u >> 7) & 1; }

static void src_np(line *l, const np *x) {
  if (x->name) return word(l, src_syl, OFF_NAME + x->name - 1, "");
  put(l, x->definite ? "the" : x->plural ? "some" : "a");
  for (int i = 0; i < x->nadj; i++) word(l, src_syl, OFF_ADJ + x->adj[i], "");
  word(l, src_syl, OFF_NOUN + x->noun, x->plural ? "s" : "");
}

static void tgt_np(line *l, const np *x) {
  if (x->name) return word(l, tgt_syl, OFF_NAME + x->name - 1, "");
  int f = feminine(x->noun);
  static const char *const det[2][2][2] = {{{"un", "une"}, {"des", "des"}}, {{"le", "la"}, {"les", "les"}}};
  put(l, det[x->definite][x->plural][f]);
  word(l, tgt_syl, OFF_NOUN + x->noun, x->plural ? "i" : "");
  static const char *const agree[2][2] = {{"", "e"}, {"s", "es"}};
  for (int i = x->nadj - 1; i >= 0; i--) word(l, tgt_syl, OFF_ADJ + x->adj[i], agree[x->plural][f]);
}

static const char *const src_prep[PREPS] = {"in", "on", "with", "for", "near", "under",
                                            "behind", "from", "to", "about", "after", "without"};
static const char *const tgt_post[PREPS] = {"da", "su", "kon", "per", "pres", "sot",
                                            "dere", "ab", "ad", "sur", "post", "sen"};

/* One clause, appended to both sides. */
static void clause(fsq_rng *r, line *s, line *t) {
  np subj = make_np(r, 1), obj = make_np(r, 1);
  int verb = pick(r, VERBS), past = chance(r, 0.4f), transitive = chance(r, 0.8f);
  int pp = chance(r, 0.55f), prep = pick(r, PREPS), adv = chance(r, 0.25f) ? 1 + pick(r, ADVS) : 0;
  np pobj = make_np(r, 0);
  int plural = subj.plural;
  /* source: S V O [prep NP] [adv] */
  src_np(s, &subj);
  word(s, src_syl, OFF_VERB + verb, past ? "ed" : plural ? "" : "s");
  if (transitive) src_np(s, &obj);
  if (pp) put(s, src_prep[prep]), src_np(s, &pobj);
  if (adv) word(s, src_syl, OFF_ADV + adv - 1, "ly");
  /* target: S O [NP post] [adv] V, verb marked for tense and number */
  tgt_np(t, &subj);
  if (transitive) tgt_np(t, &obj), put(t, "ka");
  if (pp) tgt_np(t, &pobj), put(t, tgt_post[prep]);
  if (adv) word(t, tgt_syl, OFF_ADV + adv - 1, "");
  static const char *const vend[2][2] = {{"a", "an"}, {"o", "on"}};
  word(t, tgt_syl, OFF_VERB + verb, vend[past][plural]);
}

static void sentence(fsq_rng *r, line *s, line *t) {
  s->len = t->len = 0;
  clause(r, s, t);
  if (chance(r, 0.3f)) {
    int but = chance(r, 0.3f);
    put(s, but ? "but" : "and");
    put(t, but ? "mais" : "e");
    clause(r, s, t);
  }
  put(s, ".");
  put(t, ".");
  s->buf[s->len++] = '\n';
  t->buf[t->len++] = '\n';
}

static int usage(void) {
  fprintf(stderr, "usage: toy_corpus --lines N --seed S [--stream K] SRC_FILE TGT_FILE\n");
  return 2;
}

int main(int argc, char **argv) {
  long long lines = -1;
  unsigned long long seed = 1, stream = 0;
  const char *files[2] = {NULL, NULL};
  int nfiles = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) lines = atoll(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc) stream = strtoull(argv[++i], NULL, 10);
    else if (argv[i][0] != '-' && nfiles < 2) files[nfiles++] = argv[i];
    else return usage();
  }
  if (lines < 0 || nfiles != 2) return usage();
  FILE *out[2];
  for (int k = 0; k < 2; k++) {
    out[k] = fopen(files[k], "wb");
    if (out[k] == NULL) {
      fprintf(stderr, "toy_corpus: %s: %s\n", files[k], strerror(errno));
      return 1;
    }
    setvbuf(out[k], NULL, _IOFBF, 1 << 20);
  }
  fsq_rng r = fsq_rng_make(seed, stream);
  line s, t;
  for (long long n = 0; n < lines; n++) {
    sentence(&r, &s, &t);
    fwrite(s.buf, 1, s.len, out[0]);
    fwrite(t.buf, 1, t.len, out[1]);
  }
  int bad = 0;
  for (int k = 0; k < 2; k++)
    if (fclose(out[k]) != 0) bad = 1;
  if (bad) fprintf(stderr, "toy_corpus: write failed\n");
  return bad;
}
