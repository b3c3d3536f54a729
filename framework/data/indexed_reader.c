/* indexed_reader.c: MMapIndexedDataset and the legacy TorchNet
 * IndexedDataset, read through mmap and checked before use. */
#include "data/fsq_data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct mapping {
  const unsigned char *p;
  size_t size;
} mapping;

struct fsq_indexed {
  mapping idx, bin;
  int legacy;
  fsq_index_dtype dtype;
  size_t elem; /* bytes per element */
  size_t n;
  /* mmap: sizes i32 [n], pointers i64 [n] (bytes), inside idx */
  const unsigned char *sizes32, *pointers;
  /* legacy: dim_offsets, data_offsets i64 [n+1], sizes i64 [s] */
  const unsigned char *dim_offsets, *data_offsets, *sizes64;
};

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static int32_t get_i32(const unsigned char *p) {
  return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                   (uint32_t)p[3] << 24);
}

static fsq_status map_file(const char *path, mapping *m) {
  m->p = NULL;
  m->size = 0;
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return fsq_error(errno == ENOENT ? FSQ_ERR_NOT_FOUND : FSQ_ERR_IO, "%s: %s", path,
                     strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    close(fd);
    return fsq_error(FSQ_ERR_IO, "%s: %s", path, strerror(errno));
  }
  m->size = (size_t)sb.st_size;
  if (m->size > 0) {
    void *p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      close(fd);
      m->size = 0;
      return fsq_error(FSQ_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    }
    m->p = p;
  }
  close(fd);
  return FSQ_OK;
}

static void unmap(mapping *m) {
  if (m->p) munmap((void *)m->p, m->size);
  m->p = NULL;
}

static fsq_status open_mmap(fsq_indexed *ds, const char *ip, const char *bp) {
  const unsigned char *h = ds->idx.p;
  if (ds->idx.size < 26) return fsq_error(FSQ_ERR_FORMAT, "%s: truncated header", ip);
  uint64_t version = get_u64(h + 9);
  if (version != 1)
    return fsq_error(FSQ_ERR_VERSION, "%s: unsupported version %llu (expected 1)", ip,
                     (unsigned long long)version);
  ds->dtype = h[17];
  ds->elem = fsq_index_dtype_size(h[17]);
  if (ds->elem == 0) return fsq_error(FSQ_ERR_FORMAT, "%s: unknown dtype code %u", ip, h[17]);
  uint64_t n = get_u64(h + 18);
  if (n > (ds->idx.size - 26) / 12 || 26 + n * 12 != ds->idx.size)
    return fsq_error(FSQ_ERR_FORMAT, "%s: %llu items need %llu bytes, file has %zu", ip,
                     (unsigned long long)n, (unsigned long long)(26 + (n > SIZE_MAX / 12 ? 0 : n * 12)),
                     ds->idx.size);
  ds->n = n;
  ds->sizes32 = h + 26;
  ds->pointers = h + 26 + 4 * n;
  uint64_t end = 0;
  for (size_t i = 0; i < n; i++) {
    int32_t s = get_i32(ds->sizes32 + 4 * i);
    uint64_t ptr = get_u64(ds->pointers + 8 * i);
    if (s < 0) return fsq_error(FSQ_ERR_FORMAT, "%s: item %zu has negative size", ip, i);
    uint64_t bytes = (uint64_t)s * ds->elem;
    if (ptr > ds->bin.size || bytes > ds->bin.size - ptr)
      return fsq_error(FSQ_ERR_FORMAT, "%s: item %zu lies beyond the end of %s (%zu bytes)", ip, i,
                       bp, ds->bin.size);
    if (ptr + bytes > end) end = ptr + bytes;
  }
  if (end != ds->bin.size)
    return fsq_error(FSQ_ERR_FORMAT, "%s: %zu bytes but the index describes %llu", bp,
                     ds->bin.size, (unsigned long long)end);
  return FSQ_OK;
}

static fsq_status open_legacy(fsq_indexed *ds, const char *ip, const char *bp) {
  const unsigned char *h = ds->idx.p;
  if (ds->idx.size < 48) return fsq_error(FSQ_ERR_FORMAT, "%s: truncated header", ip);
  uint64_t version = get_u64(h + 8), code = get_u64(h + 16), esize = get_u64(h + 24);
  uint64_t n = get_u64(h + 32), s = get_u64(h + 40);
  if (version != 1)
    return fsq_error(FSQ_ERR_VERSION, "%s: unsupported version %llu (expected 1)", ip,
                     (unsigned long long)version);
  if (code > 10 || fsq_index_dtype_size((int)code) == 0 || esize != fsq_index_dtype_size((int)code))
    return fsq_error(FSQ_ERR_FORMAT, "%s: unknown dtype code %llu", ip, (unsigned long long)code);
  uint64_t avail = (ds->idx.size - 48) / 8;
  if (n >= avail || s > avail || 2 * (n + 1) + s != avail || (ds->idx.size - 48) % 8)
    return fsq_error(FSQ_ERR_FORMAT, "%s: item counts (%llu, %llu) disagree with the file size",
                     ip, (unsigned long long)n, (unsigned long long)s);
  ds->dtype = (fsq_index_dtype)code;
  ds->elem = (size_t)esize;
  ds->n = n;
  ds->dim_offsets = h + 48;
  ds->data_offsets = ds->dim_offsets + 8 * (n + 1);
  ds->sizes64 = ds->data_offsets + 8 * (n + 1);
  for (size_t i = 0; i < n; i++) {
    uint64_t d0 = get_u64(ds->dim_offsets + 8 * i), d1 = get_u64(ds->dim_offsets + 8 * i + 8);
    uint64_t o0 = get_u64(ds->data_offsets + 8 * i), o1 = get_u64(ds->data_offsets + 8 * i + 8);
    if (d1 != d0 + 1 || d1 > s)
      return fsq_error(FSQ_ERR_FORMAT, "%s: item %zu is not one-dimensional", ip, i);
    if (o1 < o0 || o1 - o0 != get_u64(ds->sizes64 + 8 * d0) ||
        o1 > ds->bin.size / ds->elem)
      return fsq_error(FSQ_ERR_FORMAT, "%s: item %zu lies beyond the end of %s", ip, i, bp);
  }
  return FSQ_OK;
}

fsq_status fsq_indexed_open(const char *prefix, fsq_indexed **out) {
  *out = NULL;
  size_t plen = strlen(prefix);
  char *ip = malloc(plen + 5), *bp = malloc(plen + 5);
  fsq_indexed *ds = calloc(1, sizeof *ds);
  fsq_status st = FSQ_OK;
  if (ip == NULL || bp == NULL || ds == NULL) {
    st = fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", prefix);
    goto done;
  }
  sprintf(ip, "%s.idx", prefix);
  sprintf(bp, "%s.bin", prefix);
  st = map_file(ip, &ds->idx);
  if (st == FSQ_OK) st = map_file(bp, &ds->bin);
  if (st != FSQ_OK) goto done;
  if (ds->idx.size >= 9 && memcmp(ds->idx.p, "MMIDIDX\0\0", 9) == 0) {
    st = open_mmap(ds, ip, bp);
  } else if (ds->idx.size >= 8 && memcmp(ds->idx.p, "TNTIDX\0\0", 8) == 0) {
    ds->legacy = 1;
    st = open_legacy(ds, ip, bp);
  } else {
    st = fsq_error(FSQ_ERR_FORMAT, "%s: not an indexed dataset (bad magic)", ip);
  }
done:
  free(ip);
  free(bp);
  if (st != FSQ_OK) {
    fsq_indexed_close(ds);
    return st;
  }
  *out = ds;
  return FSQ_OK;
}

void fsq_indexed_close(fsq_indexed *ds) {
  if (ds == NULL) return;
  unmap(&ds->idx);
  unmap(&ds->bin);
  free(ds);
}

size_t fsq_indexed_len(const fsq_indexed *ds) { return ds->n; }
int fsq_indexed_is_legacy(const fsq_indexed *ds) { return ds->legacy; }
fsq_index_dtype fsq_indexed_dtype(const fsq_indexed *ds) { return ds->dtype; }

int64_t fsq_indexed_item_size(const fsq_indexed *ds, size_t i) {
  if (ds->legacy) return (int64_t)get_u64(ds->sizes64 + 8 * get_u64(ds->dim_offsets + 8 * i));
  return get_i32(ds->sizes32 + 4 * i);
}

static int64_t element(const unsigned char *p, fsq_index_dtype t) {
  switch (t) {
  case FSQ_IDX_UINT8: return p[0];
  case FSQ_IDX_INT8: return (int8_t)p[0];
  case FSQ_IDX_INT16: return (int16_t)(p[0] | p[1] << 8);
  case FSQ_IDX_UINT16: return (uint16_t)(p[0] | p[1] << 8);
  case FSQ_IDX_INT32: return get_i32(p);
  case FSQ_IDX_UINT32: return (uint32_t)get_i32(p);
  case FSQ_IDX_FLOAT64:
  case FSQ_IDX_DOUBLE: {
    double d;
    memcpy(&d, p, 8);
    return (int64_t)d;
  }
  default: return (int64_t)get_u64(p);
  }
}

void fsq_indexed_get_range(const fsq_indexed *ds, size_t i, int64_t start, int64_t count,
                           int64_t *out) {
  const unsigned char *p;
  if (ds->legacy)
    p = ds->bin.p + get_u64(ds->data_offsets + 8 * i) * ds->elem;
  else
    p = ds->bin.p + get_u64(ds->pointers + 8 * i);
  p += (size_t)start * ds->elem;
  if (ds->dtype == FSQ_IDX_UINT16 && !ds->legacy) { /* the common case, kept simple to vectorize */
    for (int64_t k = 0; k < count; k++) out[k] = (uint16_t)(p[2 * k] | p[2 * k + 1] << 8);
    return;
  }
  for (int64_t k = 0; k < count; k++) {
    out[k] = element(p + (size_t)k * ds->elem, ds->dtype);
    if (ds->legacy) out[k] -= 1; /* the writer stored value + 1 (Lua) */
  }
}

void fsq_indexed_get(const fsq_indexed *ds, size_t i, int64_t *out) {
  fsq_indexed_get_range(ds, i, 0, fsq_indexed_item_size(ds, i), out);
}
