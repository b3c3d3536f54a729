/* write.c: fsq_checkpoint_save: the archive written from the records'
 * buffers (no copy of tensor data) into a temporary file that replaces the
 * destination only once it is complete and on disk. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/ckpt_internal.h"

/* meta.json as written: the state's keys plus the index. The per-tensor
 * crc32 values are computed once; offsets depend on meta.json's own padded
 * size, so the text is rebuilt until that size stops changing. */
typedef struct meta_text {
  json_object *doc;
  const char *text;
  size_t len;
} meta_text;

static fsq_status compute_crcs(const fsq_state *st, uint32_t *crcs[FSQ_CKPT_GROUP_COUNT]) {
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) {
    crcs[g] = calloc(st->count[g] ? st->count[g] : 1, sizeof *crcs[g]);
    if (crcs[g] == NULL) return fsq_error(FSQ_ERR_NOMEM, "checkpoint: out of memory");
    long n = (long)st->count[g];
    uint32_t *out = crcs[g];
    fsq_ckpt_tensor **rec = st->rec[g];
    for (long i = 0; i < n; i++)
      if (rec[i]->data == NULL && rec[i]->nbytes > 0) /* loaded with skip_optimizer */
        return fsq_error(FSQ_ERR_INVALID, "checkpoint: %s tensor '%s' has no data to save",
                         fsq_ckpt_group_name((fsq_ckpt_group)g), rec[i]->name);
#pragma omp parallel for schedule(dynamic, 1)
    for (long i = 0; i < n; i++) out[i] = fsq_ckpt_crc32(0, rec[i]->data, rec[i]->nbytes);
  }
  return FSQ_OK;
}

static json_object *index_entry(const fsq_ckpt_tensor *t, uint64_t offset, uint32_t crc) {
  json_object *e = json_object_new_object(), *shape = json_object_new_array();
  json_object_object_add(e, "name", json_object_new_string(t->name));
  json_object_object_add(e, "dtype", json_object_new_string(fsq_ckpt_dtype_name(t->dtype)));
  for (int d = 0; d < t->ndim; d++) json_object_array_add(shape, json_object_new_int64(t->shape[d]));
  json_object_object_add(e, "shape", shape);
  json_object_object_add(e, "offset", json_object_new_int64((int64_t)offset));
  json_object_object_add(e, "nbytes", json_object_new_int64((int64_t)t->nbytes));
  json_object_object_add(e, "crc32", json_object_new_int64(crc));
  return e;
}

/* Builds the document for meta.json occupying meta_padded bytes. */
static fsq_status build_meta(const fsq_state *st, uint32_t *const crcs[], uint64_t meta_padded,
                             meta_text *out) {
  json_object *doc = json_object_new_object(), *tensors = json_object_new_object();
  if (doc == NULL || tensors == NULL) return fsq_error(FSQ_ERR_NOMEM, "checkpoint: out of memory");
  json_object_object_foreach(st->meta, key, val) {
    if (strcmp(key, "tensors") != 0) json_object_object_add(doc, key, json_object_get(val));
  }
  /* Layout: [hdr][meta][hdr][crc member][hdr][tensor 0]... */
  uint64_t pos = FSQ_CKPT_BLOCK + meta_padded + 2 * FSQ_CKPT_BLOCK;
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) {
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < st->count[g]; i++) {
      const fsq_ckpt_tensor *t = st->rec[g][i];
      json_object_array_add(list, index_entry(t, pos + FSQ_CKPT_BLOCK, crcs[g][i]));
      pos += FSQ_CKPT_BLOCK + fsq_ckpt_padded(t->nbytes);
    }
    json_object_object_add(tensors, fsq_ckpt_group_name((fsq_ckpt_group)g), list);
  }
  json_object_object_add(doc, "tensors", tensors);
  out->doc = doc;
  out->text = json_object_to_json_string_length(
      doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &out->len);
  if (out->text == NULL) {
    json_object_put(doc);
    return fsq_error(FSQ_ERR_NOMEM, "checkpoint: cannot serialize meta.json");
  }
  return FSQ_OK;
}

static fsq_status make_meta(const fsq_state *st, uint32_t *const crcs[], meta_text *out) {
  uint64_t padded = 0;
  for (int round = 0; round < 16; round++) {
    fsq_status s = build_meta(st, crcs, padded, out);
    if (s != FSQ_OK) return s;
    if (fsq_ckpt_padded(out->len) == padded) return FSQ_OK;
    padded = fsq_ckpt_padded(out->len);
    json_object_put(out->doc);
  }
  return fsq_error(FSQ_ERR_INTERNAL, "checkpoint: meta.json layout does not settle");
}

static fsq_status put_member(struct archive *a, struct archive_entry *e, const char *tmp,
                             const char *name, const void *data, size_t size) {
  archive_entry_clear(e);
  archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)size);
  archive_entry_set_mtime(e, 0, 0); /* same content, same bytes */
  if (archive_write_header(a, e) != ARCHIVE_OK)
    return fsq_error(FSQ_ERR_IO, "%s: member '%s': %s", tmp, name, archive_error_string(a));
  const char *p = data;
  while (size > 0) {
    size_t piece = size < (64u << 20) ? size : (64u << 20);
    la_ssize_t w = archive_write_data(a, p, piece);
    if (w <= 0)
      return fsq_error(FSQ_ERR_IO, "%s: member '%s': %s", tmp, name,
                       archive_error_string(a) ? archive_error_string(a) : "write failed");
    p += w;
    size -= (size_t)w;
  }
  return FSQ_OK;
}

static fsq_status write_archive(const fsq_state *st, const meta_text *meta, int fd,
                                const char *tmp) {
  struct archive *a = archive_write_new();
  struct archive_entry *e = archive_entry_new();
  if (a == NULL || e == NULL) {
    archive_write_free(a);
    archive_entry_free(e);
    return fsq_error(FSQ_ERR_NOMEM, "checkpoint: out of memory");
  }
  fsq_status s = FSQ_OK;
  /* Unblocked output: large buffers go to write(2) straight from the
   * caller's memory, and the file ends right after the end-of-archive. */
  if (archive_write_set_format_ustar(a) != ARCHIVE_OK || archive_write_add_filter_none(a) != ARCHIVE_OK ||
      archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK || archive_write_open_fd(a, fd) != ARCHIVE_OK)
    s = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, archive_error_string(a));
  char crc_text[16];
  snprintf(crc_text, sizeof crc_text, "%08x\n", fsq_ckpt_crc32(0, meta->text, meta->len));
  if (s == FSQ_OK) s = put_member(a, e, tmp, FSQ_CKPT_META, meta->text, meta->len);
  if (s == FSQ_OK) s = put_member(a, e, tmp, FSQ_CKPT_META_CRC, crc_text, 9);
  char name[256];
  for (int g = 0; s == FSQ_OK && g < FSQ_CKPT_GROUP_COUNT; g++)
    for (size_t i = 0; s == FSQ_OK && i < st->count[g]; i++) {
      const fsq_ckpt_tensor *t = st->rec[g][i];
      snprintf(name, sizeof name, "%s/%s", fsq_ckpt_group_name((fsq_ckpt_group)g), t->name);
      s = put_member(a, e, tmp, name, t->data, t->nbytes);
    }
  if (archive_write_close(a) != ARCHIVE_OK && s == FSQ_OK)
    s = fsq_error(FSQ_ERR_IO, "%s: %s", tmp, archive_error_string(a));
  archive_write_free(a);
  archive_entry_free(e);
  return s;
}

static fsq_status sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fsq_error(FSQ_ERR_IO, "%s: %s", dir, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  /* Some file systems cannot fsync a directory (EINVAL): nothing to do. */
  if (rc != 0 && err != EINVAL) return fsq_error(FSQ_ERR_IO, "%s: fsync: %s", dir, strerror(err));
  return FSQ_OK;
}

/* Creates ".<base>.tmp-XXXXXX" next to path; *tmp is malloc'ed. */
static fsq_status open_temp(const char *path, char **tmp, char **dir, int *fd) {
  char *a = strdup(path), *b = strdup(path);
  *tmp = NULL;
  *dir = NULL;
  if (a == NULL || b == NULL || asprintf(tmp, "%s/.%s.tmp-XXXXXX", dirname(a), basename(b)) < 0) {
    free(a);
    free(b);
    *tmp = NULL;
    return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", path);
  }
  free(b);
  *dir = a; /* dirname wrote into a */
  *fd = mkostemp(*tmp, O_CLOEXEC);
  if (*fd < 0)
    return fsq_error(FSQ_ERR_IO, "%s: cannot create a temporary file in '%s': %s", path, *dir,
                     strerror(errno));
  fchmod(*fd, 0644);
  return FSQ_OK;
}

fsq_status fsq_checkpoint_save(const fsq_state *st, const char *path) {
  uint32_t *crcs[FSQ_CKPT_GROUP_COUNT] = {0};
  meta_text meta = {0};
  char *tmp = NULL, *dir = NULL;
  int fd = -1;
  fsq_status s = compute_crcs(st, crcs);
  if (s == FSQ_OK) s = make_meta(st, crcs, &meta);
  if (s == FSQ_OK) s = open_temp(path, &tmp, &dir, &fd);
  if (s == FSQ_OK) s = write_archive(st, &meta, fd, tmp);
  if (s == FSQ_OK && fsync(fd) != 0)
    s = fsq_error(FSQ_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
  if (fd >= 0 && close(fd) != 0 && s == FSQ_OK)
    s = fsq_error(FSQ_ERR_IO, "%s: close: %s", tmp, strerror(errno));
  if (s == FSQ_OK && rename(tmp, path) != 0)
    s = fsq_error(FSQ_ERR_IO, "%s: cannot rename '%s' over it: %s", path, tmp, strerror(errno));
  if (s != FSQ_OK && fd >= 0) unlink(tmp);
  if (s == FSQ_OK) s = sync_dir(dir);
  json_object_put(meta.doc);
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) free(crcs[g]);
  free(tmp);
  free(dir);
  return s;
}
