/* fairseq-interactive: translates raw text from stdin or --input with a
 * trained model or ensemble (fairseq_cli/interactive.py): lines are read
 * --buffer-size at a time, stripped, encoded with the source dictionary,
 * batched as fairseq batches them (sorted by length, --max-tokens /
 * --batch-size, default one sentence per batch), and printed in input
 * order as S-, W- (seconds per sentence), H-, D- and P- lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_text.h"
#include "generate/fsq_generate.h"
#include "cli/cli_args.h"
#include "cli/cli_device.h"
#include "registry/fsq_registry.h"

#define LOGGER "fairseq_cli.interactive"

static const fsq_option interactive_options[] = {
    {"user-dir", FSQ_OPT_STRING, NULL, "path to a python module containing custom extensions (a component directory)", NULL, NULL},
    {"seed", FSQ_OPT_INT, "1", "pseudo random number generator seed", NULL, NULL},
    {"cpu", FSQ_OPT_BOOL, NULL, "use CPU instead of CUDA", NULL, NULL},
    {"device", FSQ_OPT_CHOICE, NULL, "where to decode: cpu, or cuda (the first GPU); default: cuda when a GPU is present, as fairseq does, unless --cpu", fsq_cli_device_choices, NULL},
    FSQ_CLI_PRECISION_OPTIONS,
    {"task", FSQ_OPT_STRING, "translation", "task (its options may override the checkpoint's)", NULL, NULL},
    {"max-tokens", FSQ_OPT_INT, NULL, "maximum number of tokens in a batch", NULL, NULL},
    {"batch-size", FSQ_OPT_INT, NULL, "number of examples in a batch", NULL, NULL},
    {"skip-invalid-size-inputs-valid-test", FSQ_OPT_BOOL, NULL, "ignore too long or too short lines", NULL, NULL},
    {"path", FSQ_OPT_STRING, NULL, "path(s) to model file(s), colon separated", NULL, NULL},
    {"post-process", FSQ_OPT_STRING, NULL, "post-process text by removing BPE, letter segmentation, etc.", NULL, NULL},
    {"remove-bpe", FSQ_OPT_BOOL, NULL, "the same as --post-process \"@@ \"", NULL, NULL},
    {"buffer-size", FSQ_OPT_INT, "0", "read this many sentences into a buffer before processing them", NULL, NULL},
    {"input", FSQ_OPT_STRING, "-", "file to read from; - for stdin", NULL, NULL},
    FSQ_CLI_GENERATION_OPTIONS,
    FSQ_OPTION_END};

static const fsq_config_selector selectors[] = {{"task", FSQ_KIND_TASK}, FSQ_SELECTOR_END};

typedef struct line_result {
  int64_t *tokens; /* [n] the encoded source, </s> last */
  size_t n;
  double seconds;
  int64_t nh;
  int64_t *hyp_tokens; /* [nh, max_len] */
  int64_t *hyp_len;
  float *hyp_score;
  float *hyp_pos;
  int64_t stride;
} line_result;

typedef struct irun {
  fsq_config *c;
  fsq_loaded_models lm;
  fsq_generator *gen;
  fsq_gen_options opt;
  const fsq_dictionary *src_dict, *tgt_dict;
  const char *post_process;
  int64_t buffer_size, max_tokens, max_sentences;
  int64_t max_src;
  int left_pad, skip_invalid;
  fsq_text s1, s2;
} irun;

/* Python's str.strip() of a UTF-8 line (and its newline). */
static void strip(char *line, size_t *len) {
  size_t a = 0, b = *len, w;
  while (a < b && (w = fsq_utf8_space(line + a, b - a)) > 0) a += w;
  while (b > a) {
    size_t k = b - 1; /* find the start of the last character */
    while (k > a && ((unsigned char)line[k] & 0xC0) == 0x80) k--;
    if (fsq_utf8_space(line + k, b - k) != b - k) break;
    b = k;
  }
  memmove(line, line + a, b - a);
  line[b - a] = '\0';
  *len = b - a;
}

/* Translates lines[0..n) and prints them; start_id numbers the first. */
static fsq_status translate_buffer(irun *r, char **lines, size_t n, int64_t start_id) {
  fsq_status s = FSQ_OK;
  line_result *res = calloc(n, sizeof *res);
  int64_t *sizes = calloc(n, sizeof *sizes);
  uint32_t *order = NULL;
  fsq_batches batches = {0};
  int64_t *src = NULL, *ids = NULL;
  if (res == NULL || sizes == NULL) s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n && s == FSQ_OK; i++) {
    int32_t *ids32 = NULL;
    size_t cap = 0, m = 0;
    int64_t replaced = 0;
    s = fsq_dictionary_encode_line(r->src_dict, lines[i], strlen(lines[i]), &ids32, &cap, &m, &replaced);
    if (s == FSQ_OK && (res[i].tokens = malloc((m ? m : 1) * sizeof(int64_t))) == NULL)
      s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
    for (size_t k = 0; s == FSQ_OK && k < m; k++) res[i].tokens[k] = ids32[k];
    res[i].n = m;
    sizes[i] = (int64_t)m;
    free(ids32);
  }
  size_t kept = n;
  if (s == FSQ_OK) s = fsq_data_ordered_indices(n, sizes, NULL, 0, 0, &order);
  if (s == FSQ_OK)
    s = fsq_data_filter_by_size(order, &kept, sizes, NULL, r->max_src, 0, r->skip_invalid, NULL);
  if (s == FSQ_OK)
    s = fsq_data_batch_by_size(order, kept, sizes, r->max_tokens, r->max_sentences, 1, &batches);
  for (size_t bi = 0; s == FSQ_OK && bi < batches.count; bi++) {
    const uint32_t *idx = batches.indices + batches.offsets[bi];
    int64_t B = (int64_t)(batches.offsets[bi + 1] - batches.offsets[bi]), S = 0;
    /* the collater: longest first (stable), left-padded source */
    uint32_t *sorted = malloc((size_t)(B > 0 ? B : 1) * sizeof *sorted);
    if (sorted == NULL) {
      s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
      break;
    }
    for (int64_t i = 0; i < B; i++) {
      int64_t j = i;
      while (j > 0 && sizes[sorted[j - 1]] < sizes[idx[i]]) {
        sorted[j] = sorted[j - 1];
        j--;
      }
      sorted[j] = idx[i];
      if (sizes[idx[i]] > S) S = sizes[idx[i]];
    }
    free(src);
    free(ids);
    src = malloc((size_t)(B * S) * sizeof *src);
    ids = malloc((size_t)B * sizeof *ids);
    if (src == NULL || ids == NULL) {
      free(sorted);
      s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
      break;
    }
    for (int64_t b = 0; b < B; b++) {
      line_result *L = &res[sorted[b]];
      int64_t pad = S - (int64_t)L->n, off = r->left_pad ? pad : 0;
      for (int64_t k = 0; k < S; k++) src[b * S + k] = FSQ_DICT_PAD;
      memcpy(src + b * S + off, L->tokens, L->n * sizeof(int64_t));
      ids[b] = start_id + sorted[b];
    }
    double t0 = fsq_time_now();
    s = fsq_generator_generate(r->gen, src, B, S, ids, NULL, 0);
    double dt = fsq_time_now() - t0;
    for (int64_t b = 0; s == FSQ_OK && b < B; b++) {
      line_result *L = &res[sorted[b]];
      int64_t nh = fsq_generator_hypo_count(r->gen, b), stride = 0;
      if (nh > r->opt.nbest) nh = r->opt.nbest;
      for (int64_t j = 0; j < nh; j++)
        if (fsq_generator_hypo(r->gen, b, j)->len > stride) stride = fsq_generator_hypo(r->gen, b, j)->len;
      L->seconds = dt / (double)B;
      L->nh = nh;
      L->stride = stride;
      L->hyp_tokens = malloc((size_t)(nh * stride + 1) * sizeof(int64_t));
      L->hyp_pos = malloc((size_t)(nh * stride + 1) * sizeof(float));
      L->hyp_len = malloc((size_t)(nh + 1) * sizeof(int64_t));
      L->hyp_score = malloc((size_t)(nh + 1) * sizeof(float));
      if (!L->hyp_tokens || !L->hyp_pos || !L->hyp_len || !L->hyp_score) {
        s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
        break;
      }
      for (int64_t j = 0; j < nh; j++) {
        const fsq_hypo *h = fsq_generator_hypo(r->gen, b, j);
        memcpy(L->hyp_tokens + j * stride, h->tokens, (size_t)h->len * sizeof(int64_t));
        memcpy(L->hyp_pos + j * stride, h->positional_scores, (size_t)h->len * sizeof(float));
        L->hyp_len[j] = h->len;
        L->hyp_score[j] = h->score;
      }
    }
    free(sorted);
  }
  /* in input order (lines skipped as too long print nothing) */
  const double ln2 = log(2.0);
  for (size_t i = 0; s == FSQ_OK && i < n; i++) {
    line_result *L = &res[i];
    if (L->hyp_len == NULL) continue;
    int64_t id = start_id + (int64_t)i;
    s = fsq_cli_dict_string(r->src_dict, L->tokens, (int64_t)L->n, 0, r->post_process, &r->s1, &r->s2);
    if (s != FSQ_OK) break;
    printf("S-%lld\t%s\n", (long long)id, r->s1.data);
    printf("W-%lld\t%.3f\tseconds\n", (long long)id, L->seconds);
    for (int64_t j = 0; j < L->nh && s == FSQ_OK; j++) {
      s = fsq_cli_dict_string(r->tgt_dict, L->hyp_tokens + j * L->stride, L->hyp_len[j], 0,
                              r->post_process, &r->s1, &r->s2);
      if (s != FSQ_OK) break;
      char score[64];
      fsq_cli_py_float_repr((double)(L->hyp_score[j] / (float)ln2), score, sizeof score);
      printf("H-%lld\t%s\t%s\n", (long long)id, score, r->s1.data);
      printf("D-%lld\t%s\t%s\n", (long long)id, score, r->s1.data);
      printf("P-%lld\t", (long long)id);
      for (int64_t k = 0; k < L->hyp_len[j]; k++)
        printf("%s%.4f", k ? " " : "", (double)(L->hyp_pos[j * L->stride + k] / (float)ln2));
      printf("\n");
    }
  }
  fflush(stdout);
  for (size_t i = 0; res != NULL && i < n; i++) {
    free(res[i].tokens);
    free(res[i].hyp_tokens);
    free(res[i].hyp_pos);
    free(res[i].hyp_len);
    free(res[i].hyp_score);
  }
  free(res);
  free(sizes);
  free(order);
  free(src);
  free(ids);
  fsq_batches_free(&batches);
  return s;
}

static fsq_status setup(irun *r, int argc, char **argv) {
  json_object *cfg = r->c->cfg, *v;
  const char *path = NULL, *data = json_object_get_string(json_object_array_get_idx(r->c->positionals, 0));
  if (fsq_json_get_string(cfg, "path", &path) != FSQ_OK || path == NULL)
    return fsq_error(FSQ_ERR_INVALID, "--path is required");
  fsq_gen_options_default(&r->opt);
  fsq_status s = fsq_gen_options_from_cfg(cfg, &r->opt);
  if (s != FSQ_OK) return s;
  if (r->opt.score_reference) return fsq_error(FSQ_ERR_INVALID, "--score-reference needs targets (use fairseq-generate)");
  if (json_object_object_get_ex(cfg, "post_process", &v) && v != NULL) r->post_process = json_object_get_string(v);
  if (json_object_object_get_ex(cfg, "remove_bpe", &v) && v != NULL && json_object_get_boolean(v))
    r->post_process = "@@ ";
  if (r->post_process != NULL && strcmp(r->post_process, "none") == 0) r->post_process = NULL;
  fsq_json_get_int64(cfg, "buffer_size", &r->buffer_size);
  if (r->buffer_size < 1) r->buffer_size = 1;
  r->max_tokens = r->max_sentences = -1;
  if (json_object_object_get_ex(cfg, "max_tokens", &v) && v != NULL) r->max_tokens = json_object_get_int64(v);
  if (json_object_object_get_ex(cfg, "batch_size", &v) && v != NULL) r->max_sentences = json_object_get_int64(v);
  if (r->max_tokens <= 0 && r->max_sentences <= 0) r->max_sentences = 1;
  if (r->max_sentences > 0 && r->max_sentences > r->buffer_size)
    return fsq_error(FSQ_ERR_INVALID, "--max-sentences/--batch-size cannot be larger than --buffer-size");
  r->skip_invalid = json_object_object_get_ex(cfg, "skip_invalid_size_inputs_valid_test", &v) && v != NULL &&
                    json_object_get_boolean(v);
  fsq_log_info(LOGGER, "%s", json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN));
  fsq_log_info(LOGGER, "loading model(s) from %s", path);
  const fsq_kernels *k = NULL;
  fsq_dtype dtype = FSQ_F32;
  if ((s = fsq_cli_precision(cfg, &dtype)) != FSQ_OK) return s;
  if ((s = fsq_cli_device(cfg, &k)) != FSQ_OK) return s;
  json_object *over = fsq_cli_task_overrides(r->c, argc, argv);
  s = fsq_generate_load_models_on(k, dtype, path, data, over, r->c->registry, &r->lm);
  json_object_put(over);
  if (s != FSQ_OK) return s;
  r->src_dict = r->lm.task_ops->source_dictionary(r->lm.task);
  r->tgt_dict = r->lm.task_ops->target_dictionary(r->lm.task);
  if (r->src_dict == NULL || r->tgt_dict == NULL)
    return fsq_error(FSQ_ERR_INVALID, "the task has no source or target dictionary");
  const char *lp = "True";
  if (json_object_object_get_ex(r->lm.cfg, "left_pad_source", &v) && v != NULL) {
    lp = json_object_get_string(v);
  }
  r->left_pad = strcmp(lp, "True") == 0 || strcmp(lp, "true") == 0 || strcmp(lp, "1") == 0;
  r->max_src = INT64_MAX;
  int64_t ms;
  if (fsq_json_get_int64(r->lm.cfg, "max_source_positions", &ms) == FSQ_OK && ms > 0) r->max_src = ms;
  for (int i = 0; i < r->lm.n; i++) {
    int64_t a = 0, b = 0;
    if (r->lm.models[i].ops->max_positions == NULL) continue;
    r->lm.models[i].ops->max_positions(r->lm.models[i].model, &a, &b);
    if (a > 0 && a < r->max_src) r->max_src = a;
  }
  return fsq_generator_create_on(r->lm.backend, r->lm.models, r->lm.n,
                                 (int64_t)fsq_dictionary_size(r->tgt_dict), &r->opt, &r->gen);
}

static fsq_status run(irun *r) {
  const char *input = "-";
  fsq_json_get_string(r->c->cfg, "input", &input);
  FILE *in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
  if (in == NULL) return fsq_error(FSQ_ERR_IO, "--input %s: %s", input, strerror(errno));
  if (r->buffer_size > 1) fsq_log_info(LOGGER, "Sentence buffer size: %lld", (long long)r->buffer_size);
  fsq_log_info(LOGGER, "NOTE: hypothesis and token scores are output in base 2");
  fsq_log_info(LOGGER, "Type the input sentence and press return:");
  fflush(stdout);
  double start = fsq_time_now(), translate = 0;
  char **buf = calloc((size_t)r->buffer_size, sizeof *buf);
  size_t n = 0;
  int64_t start_id = 0;
  fsq_status s = buf ? FSQ_OK : fsq_error(FSQ_ERR_NOMEM, "out of memory");
  char *line = NULL;
  size_t cap = 0;
  ssize_t got;
  while (s == FSQ_OK && (got = getline(&line, &cap, in)) >= 0) {
    size_t len = (size_t)got;
    if (!fsq_utf8_valid(line, len, NULL)) {
      s = fsq_error(FSQ_ERR_FORMAT, "%s: line %lld is not valid UTF-8", input, (long long)(start_id + (int64_t)n + 1));
      break;
    }
    strip(line, &len);
    if ((buf[n++] = strdup(line)) == NULL) s = fsq_error(FSQ_ERR_NOMEM, "out of memory");
    if (s == FSQ_OK && (int64_t)n >= r->buffer_size) {
      double t0 = fsq_time_now();
      s = translate_buffer(r, buf, n, start_id);
      translate += fsq_time_now() - t0;
      start_id += (int64_t)n;
      for (size_t i = 0; i < n; i++) free(buf[i]);
      n = 0;
    }
  }
  if (s == FSQ_OK && n > 0) {
    double t0 = fsq_time_now();
    s = translate_buffer(r, buf, n, start_id);
    translate += fsq_time_now() - t0;
  }
  for (size_t i = 0; i < n; i++) free(buf[i]);
  free(buf);
  free(line);
  if (in != stdin) fclose(in);
  if (s == FSQ_OK)
    fsq_log_info(LOGGER, "Total time: %.3f seconds; translation time: %.3f", fsq_time_now() - start, translate);
  return s;
}

int main(int argc, char **argv) {
  fsq_config c;
  int rc = fsq_cli_parse_data_args("fairseq-interactive", "DATA --path PATH [options]",
                                   interactive_options, selectors, argc, argv, &c);
  if (rc >= 0) return rc;
  irun r;
  memset(&r, 0, sizeof r);
  r.c = &c;
  fsq_status s = setup(&r, argc, argv);
  if (s == FSQ_OK) s = run(&r);
  rc = 0;
  if (s != FSQ_OK) {
    fflush(stdout);
    fprintf(stderr, "fairseq-interactive: error: %s\n", fsq_error_message());
    rc = 1;
  }
  fsq_generator_destroy(r.gen);
  fsq_loaded_models_free(&r.lm);
  fsq_text_free(&r.s1);
  fsq_text_free(&r.s2);
  fsq_config_free(&c);
  return rc;
}
