/* dtype.c: element types of checkpoint tensors and their names in meta.json. */
#include <string.h>
#include <zlib.h>

#include "checkpoint/ckpt_internal.h"

static const struct {
  const char *name;
  size_t size;
} dtypes[FSQ_CKPT_DTYPE_COUNT] = {
    [FSQ_CKPT_F32] = {"f32", 4}, [FSQ_CKPT_F16] = {"f16", 2}, [FSQ_CKPT_BF16] = {"bf16", 2},
    [FSQ_CKPT_F64] = {"f64", 8}, [FSQ_CKPT_I32] = {"i32", 4}, [FSQ_CKPT_I64] = {"i64", 8},
    [FSQ_CKPT_U8] = {"u8", 1},
};

const char *fsq_ckpt_dtype_name(fsq_ckpt_dtype dtype) {
  return (unsigned)dtype < FSQ_CKPT_DTYPE_COUNT ? dtypes[dtype].name : "?";
}

size_t fsq_ckpt_dtype_size(fsq_ckpt_dtype dtype) {
  return (unsigned)dtype < FSQ_CKPT_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

int fsq_ckpt_dtype_parse(const char *name) {
  for (int i = 0; name != NULL && i < FSQ_CKPT_DTYPE_COUNT; i++)
    if (strcmp(name, dtypes[i].name) == 0) return i;
  return -1;
}

const char *fsq_ckpt_group_name(fsq_ckpt_group group) {
  return group == FSQ_CKPT_MODEL ? "model" : group == FSQ_CKPT_OPTIMIZER ? "optimizer" : "?";
}

fsq_status fsq_ckpt_shape_bytes(const char *what, fsq_ckpt_dtype dtype, int ndim,
                                const int64_t *shape, size_t *out) {
  if ((unsigned)dtype >= FSQ_CKPT_DTYPE_COUNT)
    return fsq_error(FSQ_ERR_INVALID, "%s: unknown dtype %d", what, (int)dtype);
  if (ndim < 0 || ndim > FSQ_CKPT_MAX_DIMS)
    return fsq_error(FSQ_ERR_INVALID, "%s: %d dimensions (at most %d)", what, ndim,
                     FSQ_CKPT_MAX_DIMS);
  uint64_t bytes = dtypes[dtype].size;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return fsq_error(FSQ_ERR_INVALID, "%s: negative dimension %lld", what,
                       (long long)shape[i]);
    if (shape[i] != 0 && bytes > UINT64_MAX / (uint64_t)shape[i])
      return fsq_error(FSQ_ERR_INVALID, "%s: shape too large", what);
    bytes *= (uint64_t)shape[i];
  }
  if (bytes > SIZE_MAX) return fsq_error(FSQ_ERR_INVALID, "%s: shape too large", what);
  *out = (size_t)bytes;
  return FSQ_OK;
}

/* zlib's crc32 takes an unsigned int length: feed it in 1 GiB pieces. */
uint32_t fsq_ckpt_crc32(uint32_t crc, const void *data, size_t size) {
  const unsigned char *p = data;
  while (size > 0) {
    size_t piece = size < (1u << 30) ? size : (1u << 30);
    crc = (uint32_t)crc32(crc, p, (uInt)piece);
    p += piece;
    size -= piece;
  }
  return crc;
}
