/* indexed_writer.c: MMapIndexedDatasetBuilder: items appended to .bin in
 * the chosen dtype, sizes kept in memory, the .idx written at the end. */
#include "data/fsq_data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fsq_indexed_writer {
  FILE *bin;
  char *bin_path;
  fsq_index_dtype dtype;
  int32_t *sizes; /* [n] */
  size_t n, cap;
  void *buf; /* one item converted to dtype */
  size_t buf_cap;
};

size_t fsq_index_dtype_size(int code) {
  switch (code) {
  case FSQ_IDX_UINT8:
  case FSQ_IDX_INT8: return 1;
  case FSQ_IDX_INT16:
  case FSQ_IDX_UINT16: return 2;
  case FSQ_IDX_INT32:
  case FSQ_IDX_UINT32: return 4;
  case FSQ_IDX_INT64:
  case FSQ_IDX_FLOAT64:
  case FSQ_IDX_DOUBLE:
  case FSQ_IDX_UINT64: return 8;
  default: return 0;
  }
}

fsq_index_dtype fsq_index_dtype_for_vocab(size_t vocab_size) {
  if (vocab_size < 65500) return FSQ_IDX_UINT16;
  if (vocab_size < 4294967295u) return FSQ_IDX_UINT32;
  return FSQ_IDX_INT64;
}

fsq_status fsq_indexed_writer_open(const char *bin_path, fsq_index_dtype dtype,
                                   fsq_indexed_writer **out) {
  *out = NULL;
  if (dtype != FSQ_IDX_UINT16 && dtype != FSQ_IDX_UINT32 && dtype != FSQ_IDX_INT32 &&
      dtype != FSQ_IDX_INT64)
    return fsq_error(FSQ_ERR_UNSUPPORTED, "%s: the writer stores integer tokens only", bin_path);
  fsq_indexed_writer *w = calloc(1, sizeof *w);
  if (w == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", bin_path);
  w->bin_path = strdup(bin_path);
  w->bin = fopen(bin_path, "wb");
  if (w->bin == NULL || w->bin_path == NULL) {
    fsq_status st = fsq_error(FSQ_ERR_IO, "%s: %s", bin_path, strerror(errno));
    fsq_indexed_writer_abort(w);
    return st;
  }
  w->dtype = dtype;
  *out = w;
  return FSQ_OK;
}

static void convert(void *dst, fsq_index_dtype dtype, const int32_t *ids, size_t n) {
  if (dtype == FSQ_IDX_UINT16) {
    uint16_t *p = dst;
    for (size_t i = 0; i < n; i++) p[i] = (uint16_t)ids[i];
  } else if (dtype == FSQ_IDX_INT64) {
    int64_t *p = dst;
    for (size_t i = 0; i < n; i++) p[i] = ids[i];
  } else {
    memcpy(dst, ids, n * 4); /* uint32/int32: the same bits for ids >= 0 */
  }
}

fsq_status fsq_indexed_writer_add(fsq_indexed_writer *w, const int32_t *ids, size_t n) {
  if (n > INT32_MAX) return fsq_error(FSQ_ERR_INVALID, "%s: item too long", w->bin_path);
  if (w->n == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 1024;
    int32_t *s = realloc(w->sizes, cap * sizeof *s);
    if (s == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", w->bin_path);
    w->sizes = s;
    w->cap = cap;
  }
  size_t bytes = n * fsq_index_dtype_size(w->dtype);
  if (bytes > w->buf_cap) {
    size_t cap = bytes * 2;
    void *b = realloc(w->buf, cap);
    if (b == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", w->bin_path);
    w->buf = b;
    w->buf_cap = cap;
  }
  convert(w->buf, w->dtype, ids, n);
  if (n && fwrite(w->buf, 1, bytes, w->bin) != bytes)
    return fsq_error(FSQ_ERR_IO, "%s: %s", w->bin_path, strerror(errno));
  w->sizes[w->n++] = (int32_t)n;
  return FSQ_OK;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static fsq_status write_index(const fsq_indexed_writer *w, const char *idx_path) {
  FILE *f = fopen(idx_path, "wb");
  if (f == NULL) return fsq_error(FSQ_ERR_IO, "%s: %s", idx_path, strerror(errno));
  unsigned char hdr[26];
  memcpy(hdr, "MMIDIDX\0\0", 9);
  put_u64(hdr + 9, 1);
  hdr[17] = (unsigned char)w->dtype;
  put_u64(hdr + 18, w->n);
  fwrite(hdr, 1, sizeof hdr, f);
  unsigned char b[8];
  for (size_t i = 0; i < w->n; i++) { /* i32 sizes, little-endian */
    uint32_t v = (uint32_t)w->sizes[i];
    for (int k = 0; k < 4; k++) b[k] = (unsigned char)(v >> (8 * k));
    fwrite(b, 1, 4, f);
  }
  uint64_t addr = 0, item = fsq_index_dtype_size(w->dtype);
  for (size_t i = 0; i < w->n; i++) { /* i64 byte pointers */
    put_u64(b, addr);
    fwrite(b, 1, 8, f);
    addr += (uint64_t)w->sizes[i] * item;
  }
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) return fsq_error(FSQ_ERR_IO, "%s: write failed", idx_path);
  return FSQ_OK;
}

fsq_status fsq_indexed_writer_finish(fsq_indexed_writer *w, const char *idx_path) {
  fsq_status st = FSQ_OK;
  int bad = ferror(w->bin);
  if (fclose(w->bin) != 0 || bad) st = fsq_error(FSQ_ERR_IO, "%s: write failed", w->bin_path);
  w->bin = NULL;
  if (st == FSQ_OK) st = write_index(w, idx_path);
  fsq_indexed_writer_abort(w);
  return st;
}

void fsq_indexed_writer_abort(fsq_indexed_writer *w) {
  if (w == NULL) return;
  if (w->bin) fclose(w->bin);
  free(w->bin_path);
  free(w->sizes);
  free(w->buf);
  free(w);
}
