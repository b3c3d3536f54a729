/* test_checkpoint.c: the .fsq file: round trips of meta and tensors, atomic
 * replacement, and one clear line for every kind of damage. */
#define _GNU_SOURCE
#include "checkpoint/fsq_checkpoint.h"
#include "fsq_test.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------- */

/* Deterministic bytes for tensor i. */
static void fill(void *data, size_t n, unsigned seed) {
  unsigned char *p = data;
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

/* A state with one model tensor of every dtype and two optimizer tensors;
 * the data lives in bufs (borrowed), freed by the caller. */
typedef struct sample {
  fsq_state *st;
  void *bufs[FSQ_CKPT_DTYPE_COUNT + 2];
  size_t sizes[FSQ_CKPT_DTYPE_COUNT + 2];
} sample;

static void sample_make(sample *s, unsigned seed) {
  memset(s, 0, sizeof *s);
  s->st = fsq_state_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(s->st);
  json_object *cfg = json_tokener_parse(
      "{\"lr\": [0.0005], \"arch\": \"toy_small\", \"_components\": {\"model\": "
      "{\"name\": \"toy\", \"version\": \"1.2.0\", \"path\": \"/x/toy.so\"}}}");
  CU_ASSERT_EQUAL(fsq_state_set_config(s->st, cfg), FSQ_OK);
  json_object_put(cfg);
  CU_ASSERT_EQUAL(fsq_state_set_component(s->st, "optimizer", "adam", "1.0.0"), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_set_progress(s->st, 3, 17, 1234 + seed), FSQ_OK);
  json_object *extra = NULL;
  json_object_object_get_ex(fsq_state_meta(s->st), "extra_state", &extra);
  json_object_object_add(extra, "loss_scale", json_object_new_double(128.0));
  json_object_object_add(extra, "best", json_object_new_double(2.5));
  for (int d = 0; d < FSQ_CKPT_DTYPE_COUNT; d++) {
    int64_t shape[3] = {2 + d, 3, 1 + (d % 2)};
    size_t n = (size_t)(shape[0] * shape[1] * shape[2]) * fsq_ckpt_dtype_size((fsq_ckpt_dtype)d);
    s->bufs[d] = malloc(n);
    s->sizes[d] = n;
    fill(s->bufs[d], n, seed + (unsigned)d);
    char name[64];
    snprintf(name, sizeof name, "encoder.layers.%d.%s", d, fsq_ckpt_dtype_name((fsq_ckpt_dtype)d));
    CU_ASSERT_EQUAL(fsq_state_add(s->st, FSQ_CKPT_MODEL, name, (fsq_ckpt_dtype)d, 3, shape,
                                  s->bufs[d], n, FSQ_CKPT_BORROW), FSQ_OK);
  }
  for (int k = 0; k < 2; k++) {
    int i = FSQ_CKPT_DTYPE_COUNT + k;
    int64_t shape[2] = {5, 700}; /* several tar blocks */
    s->sizes[i] = 5 * 700 * 4;
    s->bufs[i] = malloc(s->sizes[i]);
    fill(s->bufs[i], s->sizes[i], seed + 100u + (unsigned)k);
    CU_ASSERT_EQUAL(fsq_state_add(s->st, FSQ_CKPT_OPTIMIZER,
                                  k ? "encoder.layers.0.f32.exp_avg_sq" : "encoder.layers.0.f32.exp_avg",
                                  FSQ_CKPT_F32, 2, shape, s->bufs[i], s->sizes[i], FSQ_CKPT_BORROW),
                    FSQ_OK);
  }
}

static void sample_free(sample *s) {
  fsq_state_free(s->st);
  for (size_t i = 0; i < FSQ_CKPT_DTYPE_COUNT + 2; i++) free(s->bufs[i]);
}

/* Every record of a equals b's, in order, bytes included. */
static void assert_same_tensors(fsq_state *a, fsq_state *b) {
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) {
    CU_ASSERT_EQUAL_FATAL(fsq_state_count(a, g), fsq_state_count(b, g));
    for (size_t i = 0; i < fsq_state_count(a, g); i++) {
      fsq_ckpt_tensor *x = fsq_state_at(a, g, i), *y = fsq_state_at(b, g, i);
      CU_ASSERT_STRING_EQUAL(x->name, y->name);
      CU_ASSERT_EQUAL(x->dtype, y->dtype);
      CU_ASSERT_EQUAL_FATAL(x->ndim, y->ndim);
      for (int d = 0; d < x->ndim; d++) CU_ASSERT_EQUAL(x->shape[d], y->shape[d]);
      CU_ASSERT_EQUAL_FATAL(x->nbytes, y->nbytes);
      CU_ASSERT(memcmp(x->data, y->data, x->nbytes) == 0);
    }
  }
}

static char *join(const char *dir, const char *file) {
  char *p = NULL;
  CU_ASSERT_FATAL(asprintf(&p, "%s/%s", dir, file) > 0);
  return p;
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  unsigned char *b = malloc(*n ? *n : 1);
  CU_ASSERT_EQUAL(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

/* Loading fails with one line that mentions each of the given words. */
static void assert_refused(const char *path, const char *want1, const char *want2) {
  fsq_state *st = (fsq_state *)1;
  fsq_error_clear();
  CU_ASSERT_NOT_EQUAL(fsq_checkpoint_load(path, NULL, &st), FSQ_OK);
  CU_ASSERT_PTR_NULL(st);
  const char *msg = fsq_error_message();
  CU_ASSERT(strchr(msg, '\n') == NULL);
  CU_ASSERT(strstr(msg, path) != NULL);
  if (getenv("FSQ_TEST_SHOW")) printf("\n  > %s", msg);
  if (want1 != NULL && strstr(msg, want1) == NULL) {
    printf("\n  message: %s (wanted '%s')\n", msg, want1);
    CU_FAIL("message lacks the expected words");
  }
  if (want2 != NULL && strstr(msg, want2) == NULL) {
    printf("\n  message: %s (wanted '%s')\n", msg, want2);
    CU_FAIL("message lacks the expected words");
  }
}

/* Copies src to dst member by member with libarchive, leaving out `skip`
 * and passing meta.json through edit (which returns a new malloc'ed text);
 * the meta.json.crc32 member is recomputed for the edited text. */
typedef char *(*meta_edit_fn)(const char *text, size_t n);
static void repack(const char *src, const char *dst, const char *skip, meta_edit_fn edit) {
  struct archive *in = archive_read_new(), *out = archive_write_new();
  archive_read_support_format_tar(in);
  CU_ASSERT_EQUAL_FATAL(archive_read_open_filename(in, src, 1 << 16), ARCHIVE_OK);
  archive_write_set_format_ustar(out);
  archive_write_set_bytes_per_block(out, 0);
  CU_ASSERT_EQUAL_FATAL(archive_write_open_filename(out, dst), ARCHIVE_OK);
  struct archive_entry *e;
  char crc_text[16] = "";
  while (archive_read_next_header(in, &e) == ARCHIVE_OK) {
    size_t n = (size_t)archive_entry_size(e);
    char *buf = malloc(n + 1);
    CU_ASSERT_EQUAL((size_t)archive_read_data(in, buf, n), n);
    buf[n] = '\0';
    const char *name = archive_entry_pathname(e);
    if (skip != NULL && strcmp(name, skip) == 0) {
      free(buf);
      continue;
    }
    if (strcmp(name, "meta.json") == 0 && edit != NULL) {
      char *t = edit(buf, n);
      free(buf);
      buf = t;
      n = strlen(t);
      archive_entry_set_size(e, (la_int64_t)n);
      /* crc32 (zlib's polynomial), bit by bit: independent of the library */
      unsigned long c = 0xFFFFFFFFul;
      for (size_t i = 0; i < n; i++) {
        c ^= (unsigned char)buf[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320ul & (0ul - (c & 1)));
      }
      snprintf(crc_text, sizeof crc_text, "%08lx\n", c ^ 0xFFFFFFFFul);
    }
    if (strcmp(name, "meta.json.crc32") == 0 && crc_text[0] != '\0') memcpy(buf, crc_text, 9);
    CU_ASSERT_EQUAL(archive_write_header(out, e), ARCHIVE_OK);
    CU_ASSERT_EQUAL((size_t)archive_write_data(out, buf, n), n);
    free(buf);
  }
  archive_read_free(in);
  archive_write_close(out);
  archive_write_free(out);
}

static char *replace_text(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  char *r = NULL;
  CU_ASSERT_FATAL(asprintf(&r, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
  return r;
}

static char *format_two(const char *text, size_t n) {
  (void)n;
  return replace_text(text, "\"format_version\":1", "\"format_version\":2");
}
static char *format_zero(const char *text, size_t n) {
  (void)n;
  return replace_text(text, "\"format_version\":1", "\"format_version\":0");
}
static char *wrong_dtype(const char *text, size_t n) {
  (void)n;
  return replace_text(text, "\"dtype\":\"f64\"", "\"dtype\":\"i32\"");
}

static char *evil_name(const char *text, size_t n) {
  (void)n;
  return replace_text(text, "\"name\":\"encoder.layers.6.u8\"", "\"name\":\"../../etc/x\"");
}

/* ---- cases ------------------------------------------------------------------- */

static void test_checkpoint_round_trips_meta_and_every_dtype(void) {
  char *dir = fsq_test_tempdir("ckpt-roundtrip");
  char *path = join(dir, "checkpoint_last.fsq");
  sample s;
  sample_make(&s, 1);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  fsq_state *back = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, NULL, &back), FSQ_OK);
  assert_same_tensors(s.st, back);
  int64_t epoch, iters, updates;
  CU_ASSERT_EQUAL(fsq_state_get_progress(back, &epoch, &iters, &updates), FSQ_OK);
  CU_ASSERT_EQUAL(epoch, 3);
  CU_ASSERT_EQUAL(iters, 17);
  CU_ASSERT_EQUAL(updates, 1235);
  const char *name, *version;
  CU_ASSERT_EQUAL(fsq_state_get_component(back, "model", &name, &version), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(name, "toy");
  CU_ASSERT_STRING_EQUAL(version, "1.2.0");
  CU_ASSERT_EQUAL(fsq_state_get_component(back, "optimizer", &name, &version), FSQ_OK);
  CU_ASSERT_STRING_EQUAL(name, "adam");
  CU_ASSERT_EQUAL(fsq_state_format_version(back), FSQ_CHECKPOINT_FORMAT);
  json_object *meta = fsq_state_meta(back), *cfg = NULL, *extra = NULL, *v = NULL;
  CU_ASSERT(!json_object_object_get_ex(meta, "tensors", &v)); /* the index is not meta */
  CU_ASSERT(json_object_object_get_ex(meta, "cfg", &cfg));
  CU_ASSERT(json_object_equal(cfg, json_object_object_get(fsq_state_meta(s.st), "cfg")));
  CU_ASSERT(json_object_object_get_ex(meta, "extra_state", &extra));
  CU_ASSERT(json_object_object_get_ex(extra, "loss_scale", &v));
  CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(v), 128.0, 0.0);
  /* same state, same bytes: the file is a function of the content */
  char *again = join(dir, "again.fsq");
  CU_ASSERT_EQUAL(fsq_checkpoint_save(back, again), FSQ_OK);
  size_t n1, n2;
  unsigned char *b1 = slurp(path, &n1), *b2 = slurp(again, &n2);
  CU_ASSERT_EQUAL_FATAL(n1, n2);
  CU_ASSERT(memcmp(b1, b2, n1) == 0);
  free(b1);
  free(b2);
  free(again);
  fsq_state_free(back);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(path);
  free(dir);
}

/* Loading into the caller's buffers: the dest callback hands them out. */
typedef struct dest_ctx {
  unsigned char *arena;
  size_t used, cap;
  int asked;
} dest_ctx;

static void *give_buffer(void *ctx, fsq_ckpt_group g, const fsq_ckpt_tensor *t) {
  dest_ctx *c = ctx;
  c->asked++;
  if (g != FSQ_CKPT_MODEL || c->used + t->nbytes > c->cap) return NULL;
  void *p = c->arena + c->used;
  c->used += t->nbytes;
  return p;
}

static void test_checkpoint_loads_into_caller_buffers(void) {
  char *dir = fsq_test_tempdir("ckpt-dest");
  char *path = join(dir, "c.fsq");
  sample s;
  sample_make(&s, 2);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  dest_ctx c = {.cap = 1 << 16};
  c.arena = malloc(c.cap);
  fsq_ckpt_load_options opt = {.dest = give_buffer, .ctx = &c};
  fsq_state *back = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, &opt, &back), FSQ_OK);
  assert_same_tensors(s.st, back);
  CU_ASSERT_EQUAL(c.asked, FSQ_CKPT_DTYPE_COUNT + 2);
  fsq_ckpt_tensor *t = fsq_state_at(back, FSQ_CKPT_MODEL, 0);
  CU_ASSERT_PTR_EQUAL(t->data, c.arena);
  CU_ASSERT_FALSE(t->owned);
  CU_ASSERT_TRUE(fsq_state_at(back, FSQ_CKPT_OPTIMIZER, 0)->owned);
  fsq_state_free(back); /* must not free the arena's pieces */
  /* skip_optimizer: checked, indexed, not kept; such a state cannot be saved */
  opt.skip_optimizer = 1;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, &opt, &back), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_count(back, FSQ_CKPT_OPTIMIZER), 2);
  CU_ASSERT_PTR_NULL(fsq_state_at(back, FSQ_CKPT_OPTIMIZER, 1)->data);
  char *other = join(dir, "d.fsq");
  CU_ASSERT_NOT_EQUAL(fsq_checkpoint_save(back, other), FSQ_OK);
  CU_ASSERT(strstr(fsq_error_message(), "has no data") != NULL);
  CU_ASSERT_NOT_EQUAL(access(other, F_OK), 0);
  fsq_state_free(back);
  free(c.arena);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(other);
  free(path);
  free(dir);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  if (d) closedir(d);
  return n;
}

/* A write that fails midway (the file size limit makes write(2) fail, as a
 * full disk would) leaves the previous checkpoint as it was, and no
 * temporary behind. */
static void test_checkpoint_failed_save_keeps_previous_file(void) {
  char *dir = fsq_test_tempdir("ckpt-atomic");
  char *path = join(dir, "checkpoint_last.fsq");
  sample old, young;
  sample_make(&old, 3);
  sample_make(&young, 4);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(old.st, path), FSQ_OK);
  size_t n0;
  unsigned char *before = slurp(path, &n0);
  struct rlimit saved, small;
  getrlimit(RLIMIT_FSIZE, &saved);
  small = saved;
  small.rlim_cur = 4096;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &small), 0);
  fsq_status s = fsq_checkpoint_save(young.st, path);
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, prev);
  CU_ASSERT_EQUAL(s, FSQ_ERR_IO);
  CU_ASSERT(strstr(fsq_error_message(), ".checkpoint_last.fsq.tmp-") != NULL);
  size_t n1;
  unsigned char *after = slurp(path, &n1);
  CU_ASSERT_EQUAL_FATAL(n0, n1);
  CU_ASSERT(memcmp(before, after, n0) == 0);
  CU_ASSERT_EQUAL(count_entries(dir), 1);
  fsq_state *back = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, NULL, &back), FSQ_OK);
  assert_same_tensors(old.st, back);
  fsq_state_free(back);
  /* a destination directory that does not exist: refused, nothing made */
  char *nowhere = join(dir, "missing/checkpoint_last.fsq");
  CU_ASSERT_EQUAL(fsq_checkpoint_save(young.st, nowhere), FSQ_ERR_IO);
  CU_ASSERT(strstr(fsq_error_message(), "cannot create a temporary file") != NULL);
  free(nowhere);
  free(before);
  free(after);
  sample_free(&old);
  sample_free(&young);
  fsq_test_remove_tree(dir);
  free(path);
  free(dir);
}

static void test_checkpoint_refuses_file_cut_anywhere(void) {
  char *dir = fsq_test_tempdir("ckpt-cut");
  char *path = join(dir, "c.fsq"), *cut = join(dir, "cut.fsq");
  sample s;
  sample_make(&s, 5);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  size_t n;
  unsigned char *bytes = slurp(path, &n);
  int tried = 0;
  for (size_t len = 0; len < n; len += (len % 512 < 10 || len % 512 > 500) ? 1 : 61) {
    fsq_test_write_file(cut, bytes, len);
    assert_refused(cut, NULL, NULL);
    tried++;
  }
  CU_ASSERT(tried > 200);
  /* a cut inside meta.json names it; a cut inside tensor data names it */
  fsq_test_write_file(cut, bytes, 700);
  assert_refused(cut, "meta.json", NULL);
  fsq_state *ok = NULL;
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_load(path, NULL, &ok), FSQ_OK);
  fsq_test_write_file(cut, bytes, n - 1024 - 3000);
  assert_refused(cut, "optimizer/encoder.layers.0.f32.exp_avg_sq", NULL);
  fsq_state_free(ok);
  free(bytes);
  fsq_state *empty = fsq_state_new();
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(empty, path), FSQ_OK);
  fsq_state_free(empty);
  bytes = slurp(path, &n);
  fsq_test_write_file(cut, bytes, n - 100);
  assert_refused(cut, "truncated", NULL);
  free(bytes);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(cut);
  free(path);
  free(dir);
}

/* The file offset of a member's data, from the index of a good file. */
static size_t data_offset(const char *path, fsq_ckpt_group g, size_t i) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  json_tokener *tok = json_tokener_new();
  json_object *meta = json_tokener_parse_ex(tok, (const char *)b + 512, (int)(n - 512));
  json_tokener_free(tok);
  json_object *tensors = json_object_object_get(meta, "tensors");
  json_object *e = json_object_array_get_idx(json_object_object_get(tensors, fsq_ckpt_group_name(g)), i);
  size_t off = (size_t)json_object_get_int64(json_object_object_get(e, "offset"));
  json_object_put(meta);
  free(b);
  return off;
}

static void flip_and_check(const char *path, const char *bad, size_t at, const char *want1,
                           const char *want2) {
  size_t n;
  unsigned char *b = slurp(path, &n);
  b[at] ^= 0x10;
  fsq_test_write_file(bad, b, n);
  assert_refused(bad, want1, want2);
  free(b);
}

static void test_checkpoint_refuses_flipped_bytes(void) {
  char *dir = fsq_test_tempdir("ckpt-flip");
  char *path = join(dir, "c.fsq"), *bad = join(dir, "bad.fsq");
  sample s;
  sample_make(&s, 6);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  /* meta.json: a digit inside the text (still valid JSON) */
  size_t n;
  unsigned char *b = slurp(path, &n);
  const char *digit = strstr((const char *)b + 512, "1240");
  CU_ASSERT_PTR_NOT_NULL_FATAL(digit);
  size_t at = (size_t)(digit - (const char *)b);
  free(b);
  flip_and_check(path, bad, at, "member 'meta.json'", "crc32 mismatch");
  /* tensor data, model and optimizer */
  flip_and_check(path, bad, data_offset(path, FSQ_CKPT_MODEL, 3) + 5,
                 "member 'model/encoder.layers.3.f64'", "crc32 mismatch");
  flip_and_check(path, bad, data_offset(path, FSQ_CKPT_OPTIMIZER, 1) + 9000,
                 "member 'optimizer/encoder.layers.0.f32.exp_avg_sq'", "crc32 mismatch");
  /* a tar header: its own checksum catches it */
  flip_and_check(path, bad, data_offset(path, FSQ_CKPT_MODEL, 2) - 512 + 130, NULL, NULL);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(bad);
  free(path);
  free(dir);
}

static void test_checkpoint_refuses_missing_member_and_bad_index(void) {
  char *dir = fsq_test_tempdir("ckpt-missing");
  char *path = join(dir, "c.fsq"), *bad = join(dir, "bad.fsq");
  sample s;
  sample_make(&s, 7);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  repack(path, bad, NULL, NULL);
  fsq_state *ok = NULL;
  CU_ASSERT_EQUAL(fsq_checkpoint_load(bad, NULL, &ok), FSQ_OK); /* repacking alone is harmless */
  fsq_state_free(ok);
  repack(path, bad, "optimizer/encoder.layers.0.f32.exp_avg_sq", NULL);
  assert_refused(bad, "member 'optimizer/encoder.layers.0.f32.exp_avg_sq'", "missing");
  repack(path, bad, "model/encoder.layers.2.bf16", NULL);
  assert_refused(bad, "member 'model/encoder.layers.3.f64'", "offset");
  repack(path, bad, "meta.json.crc32", NULL);
  assert_refused(bad, "meta.json.crc32", "missing");
  repack(path, bad, "meta.json", NULL);
  assert_refused(bad, "meta.json", "missing");
  repack(path, bad, NULL, wrong_dtype);
  assert_refused(bad, "model/encoder.layers.3.f64", "dtype i32 and shape need");
  repack(path, bad, NULL, evil_name);
  assert_refused(bad, "member 'meta.json'", "not a relative path");
  fsq_test_write_file(bad, "not a tar at all, just text\n", 28);
  assert_refused(bad, "not a readable checkpoint", NULL);
  char *absent = join(dir, "absent.fsq");
  assert_refused(absent, "No such file", NULL);
  free(absent);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(bad);
  free(path);
  free(dir);
}

static void test_checkpoint_refuses_unknown_format_versions(void) {
  char *dir = fsq_test_tempdir("ckpt-format");
  char *path = join(dir, "c.fsq"), *bad = join(dir, "bad.fsq");
  sample s;
  sample_make(&s, 8);
  CU_ASSERT_EQUAL_FATAL(fsq_checkpoint_save(s.st, path), FSQ_OK);
  repack(path, bad, NULL, format_two);
  assert_refused(bad, "checkpoint format 2", "needs a newer fairseq-c: this one reads formats up to 1");
  CU_ASSERT_EQUAL(fsq_error_code(), FSQ_ERR_VERSION);
  repack(path, bad, NULL, format_zero);
  assert_refused(bad, "checkpoint format 0 is not supported", NULL);
  sample_free(&s);
  fsq_test_remove_tree(dir);
  free(bad);
  free(path);
  free(dir);
}

static void test_state_edits_records_for_upgrades(void) {
  fsq_state *st = fsq_state_new();
  float w[6] = {1, 2, 3, 4, 5, 6}, m[6] = {0}, v[6] = {0};
  int64_t shape[2] = {2, 3};
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_MODEL, "enc.w", FSQ_CKPT_F32, 2, shape, w, sizeof w,
                                FSQ_CKPT_COPY), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_OPTIMIZER, "enc.w.exp_avg", FSQ_CKPT_F32, 2, shape, m,
                                sizeof m, FSQ_CKPT_BORROW), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_OPTIMIZER, "enc.wx.exp_avg", FSQ_CKPT_F32, 2, shape, v,
                                sizeof v, FSQ_CKPT_BORROW), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_MODEL, "enc.w", FSQ_CKPT_F32, 2, shape, w, sizeof w,
                                FSQ_CKPT_BORROW), FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_MODEL, "x", FSQ_CKPT_F32, 2, shape, w, 8,
                                FSQ_CKPT_BORROW), FSQ_ERR_INVALID);
  CU_ASSERT(strstr(fsq_error_message(), "8 bytes given, shape and dtype need 24") != NULL);
  CU_ASSERT_EQUAL(fsq_state_add(st, FSQ_CKPT_MODEL, "../evil", FSQ_CKPT_F32, 2, shape, w,
                                sizeof w, FSQ_CKPT_BORROW), FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(fsq_state_rename_param(st, "enc.w", "encoder.weight"), FSQ_OK);
  CU_ASSERT_PTR_NOT_NULL(fsq_state_find(st, FSQ_CKPT_MODEL, "encoder.weight"));
  CU_ASSERT_PTR_NOT_NULL(fsq_state_find(st, FSQ_CKPT_OPTIMIZER, "encoder.weight.exp_avg"));
  CU_ASSERT_PTR_NOT_NULL(fsq_state_find(st, FSQ_CKPT_OPTIMIZER, "enc.wx.exp_avg"));
  int64_t flat[1] = {6}, wrong[1] = {7};
  CU_ASSERT_EQUAL(fsq_state_reshape(st, FSQ_CKPT_MODEL, "encoder.weight", 1, flat), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_find(st, FSQ_CKPT_MODEL, "encoder.weight")->ndim, 1);
  CU_ASSERT_EQUAL(fsq_state_reshape(st, FSQ_CKPT_MODEL, "encoder.weight", 1, wrong),
                  FSQ_ERR_INVALID);
  CU_ASSERT_EQUAL(fsq_state_remove(st, FSQ_CKPT_OPTIMIZER, "enc.wx.exp_avg"), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_state_count(st, FSQ_CKPT_OPTIMIZER), 1);
  CU_ASSERT_EQUAL(fsq_state_remove(st, FSQ_CKPT_OPTIMIZER, "enc.wx.exp_avg"), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_EQUAL(fsq_state_rename(st, FSQ_CKPT_MODEL, "nope", "x"), FSQ_ERR_NOT_FOUND);
  fsq_state_free(st);
}

/* ---- names and retention ---------------------------------------------------- */

static int has_name(char **names, size_t n, const char *want) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(names[i], want) == 0) return 1;
  return 0;
}

static void test_checkpoint_names_follow_fairseq(void) {
  fsq_ckpt_policy p = {.save_interval = 1, .save_interval_updates = 500, .keep_best_checkpoints = 2,
                       .best_checkpoint_metric = "loss"};
  fsq_ckpt_moment end = {.epoch = 4, .num_updates = 1000, .end_of_epoch = 1, .has_val = 1,
                         .val = 3.14159, .has_best = 1, .best = 3.5};
  char *names[FSQ_CKPT_MAX_NAMES];
  size_t n = 0;
  CU_ASSERT_EQUAL(fsq_checkpoint_names(&p, &end, names, &n), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(n, 4);
  CU_ASSERT_STRING_EQUAL(names[0], "checkpoint4.fsq");
  CU_ASSERT_STRING_EQUAL(names[1], "checkpoint_best.fsq");
  CU_ASSERT_STRING_EQUAL(names[2], "checkpoint.best_loss_3.14.fsq");
  CU_ASSERT_STRING_EQUAL(names[3], "checkpoint_last.fsq");
  for (size_t i = 0; i < n; i++) free(names[i]);
  /* mid-epoch at an interval, worse loss, a suffix */
  p.suffix = "-shard0";
  fsq_ckpt_moment mid = {.epoch = 5, .num_updates = 1500, .has_val = 1, .val = 4.0, .has_best = 1,
                         .best = 3.0};
  CU_ASSERT_EQUAL(fsq_checkpoint_names(&p, &mid, names, &n), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(n, 2);
  CU_ASSERT_STRING_EQUAL(names[0], "checkpoint_5_1500-shard0.fsq");
  CU_ASSERT_STRING_EQUAL(names[1], "checkpoint_last-shard0.fsq");
  CU_ASSERT_FALSE(has_name(names, n, "checkpoint_best-shard0.fsq"));
  for (size_t i = 0; i < n; i++) free(names[i]);
  /* maximized metric: higher is better; no last checkpoint */
  fsq_ckpt_policy q = {.maximize_best_checkpoint_metric = 1, .no_last_checkpoints = 1,
                       .no_epoch_checkpoints = 1, .best_checkpoint_metric = "bleu"};
  fsq_ckpt_moment bleu = {.epoch = 2, .end_of_epoch = 1, .has_val = 1, .val = 30, .has_best = 1,
                          .best = 29};
  CU_ASSERT_EQUAL(fsq_checkpoint_names(&q, &bleu, names, &n), FSQ_OK);
  CU_ASSERT_EQUAL_FATAL(n, 1);
  CU_ASSERT_STRING_EQUAL(names[0], "checkpoint_best.fsq");
  free(names[0]);
}

static void test_checkpoint_retention_keeps_newest_and_best(void) {
  const char *files[] = {
      "checkpoint_1_100.fsq", "checkpoint_1_200.fsq", "checkpoint_2_300.fsq",
      "checkpoint_2_400.fsq", "checkpoint1.fsq",      "checkpoint2.fsq",
      "checkpoint10.fsq",     "checkpoint_last.fsq",  "checkpoint_best.fsq",
      "checkpoint.best_loss_3.50.fsq", "checkpoint.best_loss_3.20.fsq",
      "checkpoint.best_loss_4.10.fsq", "checkpoint_2_500-x.fsq", ".checkpoint_last.fsq.tmp-ab12cd",
      "checkpoint3.pt"};
  size_t n = sizeof files / sizeof files[0];
  int rm[16];
  fsq_ckpt_policy p = {.keep_interval_updates = 2, .keep_last_epochs = 2, .keep_best_checkpoints = 2,
                       .best_checkpoint_metric = "loss"};
  fsq_ckpt_moment mid = {.epoch = 2, .num_updates = 400};
  fsq_checkpoint_old_files(&p, &mid, files, n, rm);
  int expect[] = {1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    if (rm[i] != expect[i]) printf("\n  %s: remove=%d, expected %d\n", files[i], rm[i], expect[i]);
    CU_ASSERT_EQUAL(rm[i], expect[i]);
  }
  /* at the end of an epoch, interval checkpoints stay (fairseq) */
  mid.end_of_epoch = 1;
  fsq_checkpoint_old_files(&p, &mid, files, n, rm);
  CU_ASSERT_EQUAL(rm[0], 0);
  CU_ASSERT_EQUAL(rm[4], 1);
  /* maximized metric keeps the highest */
  p.maximize_best_checkpoint_metric = 1;
  fsq_checkpoint_old_files(&p, &mid, files, n, rm);
  CU_ASSERT_EQUAL(rm[9], 0);
  CU_ASSERT_EQUAL(rm[10], 1);
  CU_ASSERT_EQUAL(rm[11], 0);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_checkpoint_round_trips_meta_and_every_dtype),
      FSQ_TEST_CASE(test_checkpoint_loads_into_caller_buffers),
      FSQ_TEST_CASE(test_checkpoint_failed_save_keeps_previous_file),
      FSQ_TEST_CASE(test_checkpoint_refuses_file_cut_anywhere),
      FSQ_TEST_CASE(test_checkpoint_refuses_flipped_bytes),
      FSQ_TEST_CASE(test_checkpoint_refuses_missing_member_and_bad_index),
      FSQ_TEST_CASE(test_checkpoint_refuses_unknown_format_versions),
      FSQ_TEST_CASE(test_state_edits_records_for_upgrades),
      FSQ_TEST_CASE(test_checkpoint_names_follow_fairseq),
      FSQ_TEST_CASE(test_checkpoint_retention_keeps_newest_and_best),
      FSQ_TEST_END};
  return fsq_test_main("checkpoint", cases);
}
