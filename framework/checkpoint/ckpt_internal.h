/* ckpt_internal.h: what the checkpoint files share and nobody else needs. */
#ifndef FSQ_CKPT_INTERNAL_H
#define FSQ_CKPT_INTERNAL_H

#include "checkpoint/fsq_checkpoint.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "fsq checkpoints store raw little-endian tensors; big-endian hosts are not supported"
#endif

#define FSQ_CKPT_META "meta.json"
#define FSQ_CKPT_META_CRC "meta.json.crc32"
#define FSQ_CKPT_BLOCK 512 /* ustar header and padding unit */
#define FSQ_CKPT_META_MAX (256u << 20)

struct fsq_state {
  struct json_object *meta;
  fsq_ckpt_tensor **rec[FSQ_CKPT_GROUP_COUNT];
  size_t count[FSQ_CKPT_GROUP_COUNT];
  size_t cap[FSQ_CKPT_GROUP_COUNT];
};

/* crc32 (zlib's polynomial) over any size, continuing from crc. */
uint32_t fsq_ckpt_crc32(uint32_t crc, const void *data, size_t size);
/* Bytes a member of `size` bytes occupies after its header (padded). */
static inline uint64_t fsq_ckpt_padded(uint64_t size) {
  return (size + FSQ_CKPT_BLOCK - 1) / FSQ_CKPT_BLOCK * FSQ_CKPT_BLOCK;
}
/* product(shape) * dtype size, or 0 with fsq_error set on overflow or a
 * negative dimension (what names the tensor in the message). */
fsq_status fsq_ckpt_shape_bytes(const char *what, fsq_ckpt_dtype dtype, int ndim,
                                const int64_t *shape, size_t *out);
/* Names become tar members "<group>/<name>": printable, relative, <= 100. */
fsq_status fsq_ckpt_check_name(fsq_ckpt_group group, const char *name);
/* Adds a record whose data is filled later (the loader). */
fsq_ckpt_tensor *fsq_ckpt_append(fsq_state *st, fsq_ckpt_group group, const char *name);
/* An empty state without the default meta (the loader sets its own). */
fsq_state *fsq_ckpt_state_bare(void);

#endif
