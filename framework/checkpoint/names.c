/* names.c: which files a save writes and which old ones it deletes, as
 * fairseq's checkpoint_utils.save_checkpoint decides (".pt" -> ".fsq"). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/ckpt_internal.h"

static int is_better(const fsq_ckpt_policy *p, double a, double b) {
  return p->maximize_best_checkpoint_metric ? a >= b : a <= b;
}

static const char *sfx(const fsq_ckpt_policy *p) { return p->suffix ? p->suffix : ""; }
static const char *metric(const fsq_ckpt_policy *p) {
  return p->best_checkpoint_metric ? p->best_checkpoint_metric : "loss";
}

fsq_status fsq_checkpoint_names(const fsq_ckpt_policy *p, const fsq_ckpt_moment *m,
                                char *names[FSQ_CKPT_MAX_NAMES], size_t *n) {
  int64_t every = p->save_interval > 0 ? p->save_interval : 1;
  int new_best = m->has_val && (!m->has_best || is_better(p, m->val, m->best));
  int rc = 0;
  *n = 0;
  if (m->end_of_epoch && !p->no_epoch_checkpoints && m->epoch % every == 0)
    rc |= asprintf(&names[(*n)++], "checkpoint%lld%s.fsq", (long long)m->epoch, sfx(p)) < 0;
  if (!m->end_of_epoch && p->save_interval_updates > 0 &&
      m->num_updates % p->save_interval_updates == 0)
    rc |= asprintf(&names[(*n)++], "checkpoint_%lld_%lld%s.fsq", (long long)m->epoch,
                   (long long)m->num_updates, sfx(p)) < 0;
  if (new_best) rc |= asprintf(&names[(*n)++], "checkpoint_best%s.fsq", sfx(p)) < 0;
  if (new_best && p->keep_best_checkpoints > 0)
    rc |= asprintf(&names[(*n)++], "checkpoint.best_%s_%.2f%s.fsq", metric(p), m->val, sfx(p)) < 0;
  if (!p->no_last_checkpoints) rc |= asprintf(&names[(*n)++], "checkpoint_last%s.fsq", sfx(p)) < 0;
  if (rc) {
    for (size_t i = 0; i < *n; i++) free(names[i]);
    *n = 0;
    return fsq_error(FSQ_ERR_NOMEM, "checkpoint names: out of memory");
  }
  return FSQ_OK;
}

/* Matches prefix, then the number pattern, then suffix + ".fsq", exactly.
 * with_dot: fairseq's (\d+\.?\d*), else (\d+). *value gets the number. */
static int match(const char *name, const char *prefix, const char *suffix, int with_dot,
                 double *value) {
  size_t lp = strlen(prefix);
  if (strncmp(name, prefix, lp) != 0) return 0;
  const char *s = name + lp, *q = s;
  while (*q >= '0' && *q <= '9') q++;
  if (q == s) return 0;
  if (with_dot && *q == '.' && strcmp(q, ".fsq") != 0) {
    q++;
    while (*q >= '0' && *q <= '9') q++;
  }
  char tail[256];
  snprintf(tail, sizeof tail, "%s.fsq", suffix);
  if (strcmp(q, tail) != 0) return 0;
  *value = strtod(s, NULL);
  return 1;
}

typedef struct ranked {
  double value;
  const char *name;
  size_t index;
} ranked;

/* fairseq sorts (value, name) pairs in descending order. */
static int by_value_desc(const void *a, const void *b) {
  const ranked *x = a, *y = b;
  if (x->value != y->value) return x->value < y->value ? 1 : -1;
  return -strcmp(x->name, y->name);
}

/* Marks all but the first `keep` of the matching names (descending order;
 * ascending when `ascending`). */
static void keep_first(const char *const *names, size_t n, int *remove, const char *prefix,
                       const char *suffix, int with_dot, int64_t keep, int ascending) {
  ranked *r = malloc((n ? n : 1) * sizeof *r);
  size_t m = 0;
  if (r == NULL) return; /* nothing is deleted when memory is short */
  for (size_t i = 0; i < n; i++)
    if (match(names[i], prefix, suffix, with_dot, &r[m].value)) {
      r[m].name = names[i];
      r[m++].index = i;
    }
  qsort(r, m, sizeof *r, by_value_desc);
  for (size_t k = 0; k < m; k++) {
    size_t rank = ascending ? m - 1 - k : k;
    if ((int64_t)rank >= keep) remove[r[k].index] = 1;
  }
  free(r);
}

void fsq_checkpoint_old_files(const fsq_ckpt_policy *p, const fsq_ckpt_moment *m,
                              const char *const *names, size_t n, int *remove) {
  for (size_t i = 0; i < n; i++) remove[i] = 0;
  if (!m->end_of_epoch && p->keep_interval_updates > 0) {
    /* checkpoint_<epoch>_<updates>{sfx}.fsq, ranked by updates */
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    size_t k = 0;
    for (size_t i = 0; r != NULL && i < n; i++) {
      const char *s = names[i];
      if (strncmp(s, "checkpoint_", 11) != 0) continue;
      size_t d = strspn(s + 11, "0123456789");
      if (d == 0 || s[11 + d] != '_') continue;
      char prefix[64];
      snprintf(prefix, sizeof prefix, "%.*s", (int)(11 + d + 1), s);
      if (match(s, prefix, sfx(p), 0, &r[k].value)) {
        r[k].name = s;
        r[k++].index = i;
      }
    }
    if (r != NULL) {
      qsort(r, k, sizeof *r, by_value_desc);
      for (size_t j = (size_t)p->keep_interval_updates; j < k; j++) remove[r[j].index] = 1;
    }
    free(r);
  }
  if (p->keep_last_epochs > 0)
    keep_first(names, n, remove, "checkpoint", sfx(p), 0, p->keep_last_epochs, 0);
  if (p->keep_best_checkpoints > 0) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "checkpoint.best_%s_", metric(p));
    keep_first(names, n, remove, prefix, sfx(p), 1, p->keep_best_checkpoints,
               !p->maximize_best_checkpoint_metric);
  }
}
