/* test_data_indexed.c: the mmap indexed dataset round trip (uint16, uint32),
 * the legacy TNTIDX reader, and the checks that refuse broken files. */
#include "data/binarize.h"
#include "data/fsq_data.h"
#include "fsq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *path_of(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

static unsigned char *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*size + 1);
  if (fread(b, 1, *size, f) != *size) *size = 0;
  fclose(f);
  return b;
}

/* Writes items {i, i+1, ..., } of length i % 5 + 1 for i < n at dir/name. */
static void write_dataset(const char *dir, const char *name, fsq_index_dtype dtype, int n,
                          int32_t base) {
  char bin[512], idx[512];
  snprintf(bin, sizeof bin, "%s/%s.bin", dir, name);
  snprintf(idx, sizeof idx, "%s/%s.idx", dir, name);
  fsq_indexed_writer *w;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_open(bin, dtype, &w), FSQ_OK);
  for (int i = 0; i < n; i++) {
    int32_t ids[5];
    for (int k = 0; k <= i % 5; k++) ids[k] = base + i + k;
    CU_ASSERT_EQUAL(fsq_indexed_writer_add(w, ids, (size_t)(i % 5 + 1)), FSQ_OK);
  }
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_writer_finish(w, idx), FSQ_OK);
}

static void check_roundtrip(fsq_index_dtype dtype, int32_t base) {
  char *dir = fsq_test_tempdir("indexed");
  write_dataset(dir, "ds", dtype, 50, base);
  char *prefix = path_of(dir, "ds");
  fsq_indexed *ds;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_open(prefix, &ds), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_indexed_len(ds), 50);
  CU_ASSERT_EQUAL(fsq_indexed_dtype(ds), dtype);
  CU_ASSERT_FALSE(fsq_indexed_is_legacy(ds));
  for (int i = 0; i < 50; i++) {
    int64_t out[5];
    CU_ASSERT_EQUAL(fsq_indexed_item_size(ds, (size_t)i), i % 5 + 1);
    fsq_indexed_get(ds, (size_t)i, out);
    for (int k = 0; k <= i % 5; k++) CU_ASSERT_EQUAL(out[k], base + i + k);
  }
  fsq_indexed_close(ds);
  free(prefix);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void test_indexed_roundtrip_uint16(void) { check_roundtrip(FSQ_IDX_UINT16, 60000); }
static void test_indexed_roundtrip_uint32(void) { check_roundtrip(FSQ_IDX_UINT32, 70000); }

static void test_indexed_dtype_follows_vocab_size(void) {
  CU_ASSERT_EQUAL(fsq_index_dtype_for_vocab(65499), FSQ_IDX_UINT16);
  CU_ASSERT_EQUAL(fsq_index_dtype_for_vocab(65500), FSQ_IDX_UINT32);
}

static void test_indexed_reads_golden_uint32_file(void) {
  char *prefix = fsq_test_source_path("tests/fixtures/preprocess/only_source_big/valid.big-None.big");
  fsq_indexed *ds;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_open(prefix, &ds), FSQ_OK);
  CU_ASSERT_EQUAL(fsq_indexed_len(ds), 50);
  CU_ASSERT_EQUAL(fsq_indexed_dtype(ds), FSQ_IDX_UINT32);
  int64_t out[64];
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_item_size(ds, 0), 11);
  fsq_indexed_get(ds, 0, out);
  CU_ASSERT_EQUAL(out[10], FSQ_DICT_EOS);
  fsq_indexed_close(ds);
  free(prefix);
}

static void put_u64(FILE *f, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  fwrite(b, 1, 8, f);
}

static void test_indexed_reads_legacy_tntidx(void) {
  char *dir = fsq_test_tempdir("legacy");
  char *idx = path_of(dir, "old.idx"), *bin = path_of(dir, "old.bin"), *prefix = path_of(dir, "old");
  /* two items {4,5,6} and {7}, stored + 1 as int32 (TorchNet/Lua) */
  FILE *f = fopen(idx, "wb");
  fwrite("TNTIDX\0\0", 1, 8, f);
  put_u64(f, 1);
  put_u64(f, FSQ_IDX_INT32);
  put_u64(f, 4);
  put_u64(f, 2);
  put_u64(f, 2);
  put_u64(f, 0), put_u64(f, 1), put_u64(f, 2); /* dim_offsets */
  put_u64(f, 0), put_u64(f, 3), put_u64(f, 4); /* data_offsets */
  put_u64(f, 3), put_u64(f, 1);                /* sizes */
  fclose(f);
  int32_t data[4] = {5, 6, 7, 8};
  fsq_test_write_file(bin, data, sizeof data);
  fsq_indexed *ds;
  CU_ASSERT_EQUAL_FATAL(fsq_indexed_open(prefix, &ds), FSQ_OK);
  CU_ASSERT_TRUE(fsq_indexed_is_legacy(ds));
  CU_ASSERT_EQUAL(fsq_indexed_len(ds), 2);
  int64_t out[3];
  CU_ASSERT_EQUAL(fsq_indexed_item_size(ds, 0), 3);
  fsq_indexed_get(ds, 0, out);
  CU_ASSERT_EQUAL(out[0], 4);
  CU_ASSERT_EQUAL(out[2], 6);
  fsq_indexed_get(ds, 1, out);
  CU_ASSERT_EQUAL(out[0], 7);
  fsq_indexed_close(ds);
  /* a .bin one element short is refused */
  fsq_test_write_file(bin, data, 3 * sizeof *data);
  CU_ASSERT_EQUAL(fsq_indexed_open(prefix, &ds), FSQ_ERR_FORMAT);
  free(idx), free(bin), free(prefix);
  fsq_test_remove_tree(dir);
  free(dir);
}

/* Writes a good dataset, lets edit() damage the .idx or .bin bytes, and
 * expects open to fail with code and a message containing needle. */
static void expect_refused(void (*edit)(unsigned char *idx, size_t *isz, unsigned char *bin,
                                        size_t *bsz),
                           fsq_status code, const char *needle) {
  char *dir = fsq_test_tempdir("broken");
  write_dataset(dir, "ds", FSQ_IDX_UINT16, 10, 0);
  char *idx = path_of(dir, "ds.idx"), *bin = path_of(dir, "ds.bin"), *prefix = path_of(dir, "ds");
  size_t isz, bsz;
  unsigned char *ib = read_all(idx, &isz), *bb = read_all(bin, &bsz);
  bb = realloc(bb, bsz + 16);
  CU_ASSERT_FATAL(bb != NULL);
  memset(bb + bsz, 0, 16); /* longer_bin writes 2 of these bytes */
  edit(ib, &isz, bb, &bsz);
  fsq_test_write_file(idx, ib, isz);
  fsq_test_write_file(bin, bb, bsz);
  fsq_indexed *ds = NULL;
  CU_ASSERT_EQUAL(fsq_indexed_open(prefix, &ds), code);
  CU_ASSERT_PTR_NULL(ds);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), needle));
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "ds."));
  free(ib), free(bb), free(idx), free(bin), free(prefix);
  fsq_test_remove_tree(dir);
  free(dir);
}

static void bad_magic(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { i[0] = 'X'; }
static void bad_version(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { i[9] = 2; }
static void bad_dtype(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { i[17] = 11; }
static void truncated_idx(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { *is -= 5; }
static void short_header(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { *is = 20; }
static void truncated_bin(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { *bs -= 2; }
static void longer_bin(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { *bs += 2; }
static void huge_count(unsigned char *i, size_t *is, unsigned char *b, size_t *bs) { i[25] = 0x10; }

static void test_indexed_refuses_wrong_magic(void) {
  expect_refused(bad_magic, FSQ_ERR_FORMAT, "bad magic");
}
static void test_indexed_refuses_wrong_version(void) {
  expect_refused(bad_version, FSQ_ERR_VERSION, "unsupported version 2");
}
static void test_indexed_refuses_unknown_dtype(void) {
  expect_refused(bad_dtype, FSQ_ERR_FORMAT, "unknown dtype code 11");
}
static void test_indexed_refuses_truncated_idx(void) {
  expect_refused(truncated_idx, FSQ_ERR_FORMAT, "items need");
  expect_refused(short_header, FSQ_ERR_FORMAT, "truncated header");
  expect_refused(huge_count, FSQ_ERR_FORMAT, "items need");
}
static void test_indexed_refuses_mismatched_bin(void) {
  expect_refused(truncated_bin, FSQ_ERR_FORMAT, "beyond the end");
  expect_refused(longer_bin, FSQ_ERR_FORMAT, "the index describes");
}

static void test_indexed_refuses_missing_files(void) {
  fsq_indexed *ds;
  CU_ASSERT_EQUAL(fsq_indexed_open("/nonexistent/dir/x", &ds), FSQ_ERR_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "/nonexistent/dir/x.idx"));
}

/* Encodes text with the given workers and segment size into dir/name. */
static fsq_status encode_file(const char *dir, const char *text_path, const char *name,
                              int workers, size_t segment, fsq_binarize_stats *stats) {
  fsq_dictionary *d = fsq_dictionary_new();
  fsq_dictionary_add(d, "w1", 2, 1, 0);
  fsq_dictionary_add(d, "w2", 2, 1, 0);
  char bin[600], idx[600];
  snprintf(bin, sizeof bin, "%s/%s.bin", dir, name);
  snprintf(idx, sizeof idx, "%s/%s.idx", dir, name);
  fsq_text t;
  fsq_status st = fsq_text_open(text_path, &t);
  fsq_indexed_writer *w = NULL;
  if (st == FSQ_OK) st = fsq_indexed_writer_open(bin, FSQ_IDX_UINT16, &w);
  if (st == FSQ_OK) st = fsq_binarize_encode(&t, workers, segment, d, w, stats);
  if (st == FSQ_OK) st = fsq_indexed_writer_finish(w, idx);
  else fsq_indexed_writer_abort(w);
  fsq_text_close(&t);
  fsq_dictionary_free(d);
  return st;
}

static void test_binarize_is_identical_for_any_workers_and_segments(void) {
  char *dir = fsq_test_tempdir("segments");
  char *text = path_of(dir, "in.txt");
  char buf[20000];
  size_t len = 0;
  for (int i = 0; i < 1000; i++) /* mixed line ends: \n, \r\n, lone \r */
    len += (size_t)snprintf(buf + len, sizeof buf - len, "w%d w1 x%d%s", i % 3, i % 4,
                            i % 7 == 0 ? "\r\n" : i % 11 == 0 ? "\r" : "\n");
  fsq_test_write_file(text, buf, len);
  fsq_binarize_stats ref, got;
  CU_ASSERT_EQUAL_FATAL(encode_file(dir, text, "ref", 1, 0, &ref), FSQ_OK);
  CU_ASSERT_EQUAL(ref.nseq, 1000);
  CU_ASSERT_EQUAL(ref.ntok, 4000);
  int workers[3] = {1, 2, 3};
  size_t segments[3] = {64, 100, 1 << 20};
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      CU_ASSERT_EQUAL_FATAL(encode_file(dir, text, "out", workers[a], segments[b], &got), FSQ_OK);
      CU_ASSERT_EQUAL(got.nseq, ref.nseq);
      CU_ASSERT_EQUAL(got.nunk, ref.nunk);
      size_t s1, s2, i1, i2;
      char *rb = path_of(dir, "ref.bin"), *ob = path_of(dir, "out.bin");
      char *ri = path_of(dir, "ref.idx"), *oi = path_of(dir, "out.idx");
      unsigned char *x = read_all(rb, &s1), *y = read_all(ob, &s2);
      unsigned char *u = read_all(ri, &i1), *v = read_all(oi, &i2);
      CU_ASSERT(s1 == s2 && memcmp(x, y, s1) == 0);
      CU_ASSERT(i1 == i2 && memcmp(u, v, i1) == 0);
      free(x), free(y), free(u), free(v), free(rb), free(ob), free(ri), free(oi);
    }
  /* a bad byte on line 777 is reported there, whatever the cut */
  size_t pos = 0;
  for (int line = 1; line < 777; pos++)
    if (buf[pos] == '\n' || (buf[pos] == '\r' && buf[pos + 1] != '\n')) line++;
  buf[pos + 1] = (char)0xff;
  fsq_test_write_file(text, buf, len);
  for (int a = 0; a < 3; a++) {
    CU_ASSERT_EQUAL(encode_file(dir, text, "bad", workers[a], 64, &got), FSQ_ERR_FORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fsq_error_message(), "in.txt:777: not valid UTF-8"));
  }
  free(text);
  fsq_test_remove_tree(dir);
  free(dir);
}

int main(void) {
  static const fsq_test_case cases[] = {
      FSQ_TEST_CASE(test_indexed_roundtrip_uint16),
      FSQ_TEST_CASE(test_indexed_roundtrip_uint32),
      FSQ_TEST_CASE(test_indexed_dtype_follows_vocab_size),
      FSQ_TEST_CASE(test_indexed_reads_golden_uint32_file),
      FSQ_TEST_CASE(test_indexed_reads_legacy_tntidx),
      FSQ_TEST_CASE(test_indexed_refuses_wrong_magic),
      FSQ_TEST_CASE(test_indexed_refuses_wrong_version),
      FSQ_TEST_CASE(test_indexed_refuses_unknown_dtype),
      FSQ_TEST_CASE(test_indexed_refuses_truncated_idx),
      FSQ_TEST_CASE(test_indexed_refuses_mismatched_bin),
      FSQ_TEST_CASE(test_indexed_refuses_missing_files),
      FSQ_TEST_CASE(test_binarize_is_identical_for_any_workers_and_segments),
      FSQ_TEST_END};
  return fsq_test_main("data_indexed", cases);
}
