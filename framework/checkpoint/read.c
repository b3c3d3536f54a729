/* read.c: fsq_checkpoint_load: reads a .fsq file and checks every part of
 * it, stopping at the first problem with a message that names the file and
 * the member. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint/ckpt_internal.h"

/* One indexed tensor: its record in the state and where it must be. */
typedef struct slot {
  fsq_ckpt_group group;
  fsq_ckpt_tensor *t;
  char member[128];
  uint64_t offset;
  uint32_t crc;
  int seen;
} slot;

typedef struct loader {
  const char *path;
  const fsq_ckpt_load_options *opt;
  struct archive *a;
  fsq_state *st;
  slot *slots;
  size_t nslots;
  unsigned char *scratch; /* for skipped groups: 1 MiB */
  uint64_t meta_end;      /* where the first tensor's header starts */
} loader;

#define SCRATCH_BYTES (1u << 20)

static fsq_status bad(const loader *L, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static fsq_status bad(const loader *L, const char *member, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (member != NULL) return fsq_error(FSQ_ERR_FORMAT, "%s: member '%s': %s", L->path, member, why);
  return fsq_error(FSQ_ERR_FORMAT, "%s: %s", L->path, why);
}

/* libarchive's reason, or a default. */
static const char *why(struct archive *a, const char *otherwise) {
  const char *s = archive_error_string(a);
  return s != NULL ? s : otherwise;
}

/* Reads exactly size bytes of the current member into dst (NULL: scratch),
 * returning their crc32. */
static fsq_status read_body(loader *L, const char *member, void *dst, size_t size, uint32_t *crc) {
  uint32_t c = 0;
  unsigned char *p = dst;
  size_t done = 0;
  while (done < size) {
    size_t want = size - done;
    unsigned char *into = p != NULL ? p + done : L->scratch;
    if (p == NULL && want > SCRATCH_BYTES) want = SCRATCH_BYTES;
    la_ssize_t got = archive_read_data(L->a, into, want);
    if (got < 0) return bad(L, member, "%s", why(L->a, "read error"));
    if (got == 0)
      return bad(L, member, "truncated: %zu of %zu bytes present", done, size);
    c = fsq_ckpt_crc32(c, into, (size_t)got);
    done += (size_t)got;
  }
  *crc = c;
  return FSQ_OK;
}

/* The next header, which must be `name` (meta.json and its checksum). */
static fsq_status expect_member(loader *L, const char *name, struct archive_entry **e) {
  int r = archive_read_next_header(L->a, e);
  if (r == ARCHIVE_EOF) return bad(L, name, "missing (the archive is empty or cut short)");
  if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
    return bad(L, NULL, "not a readable checkpoint archive (%s)", why(L->a, "bad header"));
  if (strcmp(archive_entry_pathname(*e), name) != 0)
    return bad(L, name, "missing: found '%s' where it must be", archive_entry_pathname(*e));
  return FSQ_OK;
}

/* meta.json and meta.json.crc32: returns the parsed document. */
static fsq_status read_meta(loader *L, json_object **out) {
  struct archive_entry *e = NULL;
  fsq_status s = expect_member(L, FSQ_CKPT_META, &e);
  if (s != FSQ_OK) return s;
  la_int64_t size = archive_entry_size(e);
  if (size <= 0 || (uint64_t)size > FSQ_CKPT_META_MAX)
    return bad(L, FSQ_CKPT_META, "implausible size %lld", (long long)size);
  char *text = malloc((size_t)size + 1);
  if (text == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: meta.json: out of memory", L->path);
  uint32_t crc = 0;
  s = read_body(L, FSQ_CKPT_META, text, (size_t)size, &crc);
  char stored[16] = {0};
  uint32_t want = 0;
  if (s == FSQ_OK) s = expect_member(L, FSQ_CKPT_META_CRC, &e);
  if (s == FSQ_OK && archive_entry_size(e) != 9)
    s = bad(L, FSQ_CKPT_META_CRC, "size %lld, expected 9", (long long)archive_entry_size(e));
  uint32_t ignored;
  if (s == FSQ_OK) s = read_body(L, FSQ_CKPT_META_CRC, stored, 9, &ignored);
  if (s == FSQ_OK && (stored[8] != '\n' || sscanf(stored, "%8x", &want) != 1 ||
                      strspn(stored, "0123456789abcdef") != 8))
    s = bad(L, FSQ_CKPT_META_CRC, "not 8 hex digits");
  if (s == FSQ_OK && want != crc)
    s = bad(L, FSQ_CKPT_META, "crc32 mismatch (stored %08x, computed %08x)", want, crc);
  if (s == FSQ_OK) {
    json_tokener *tok = json_tokener_new();
    *out = tok ? json_tokener_parse_ex(tok, text, (int)size) : NULL;
    if (*out == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(*out, json_type_object)) {
      s = bad(L, FSQ_CKPT_META, "not a JSON object (%s)",
              tok ? json_tokener_error_desc(json_tokener_get_error(tok)) : "out of memory");
      json_object_put(*out);
      *out = NULL;
    }
    json_tokener_free(tok);
  }
  free(text);
  /* [hdr][meta.json][hdr][crc member] */
  L->meta_end = 3 * (uint64_t)FSQ_CKPT_BLOCK + fsq_ckpt_padded((uint64_t)size);
  return s;
}

static fsq_status check_format(loader *L, json_object *meta) {
  const char *format = NULL, *written_by = "an unknown version";
  int64_t version = 0;
  if (fsq_json_get_string(meta, "format", &format) != FSQ_OK ||
      strcmp(format, FSQ_CHECKPOINT_FORMAT_NAME) != 0)
    return bad(L, FSQ_CKPT_META, "\"format\" is not \"%s\"", FSQ_CHECKPOINT_FORMAT_NAME);
  if (fsq_json_get_int64(meta, "format_version", &version) != FSQ_OK)
    return bad(L, FSQ_CKPT_META, "no integer \"format_version\"");
  fsq_json_get_string(meta, "framework_version", &written_by);
  if (version > FSQ_CHECKPOINT_FORMAT)
    return fsq_error(FSQ_ERR_VERSION,
                     "%s: checkpoint format %lld (written by fairseq-c %s) needs a newer "
                     "fairseq-c: this one reads formats up to %d",
                     L->path, (long long)version, written_by, FSQ_CHECKPOINT_FORMAT);
  if (version < 1)
    return fsq_error(FSQ_ERR_VERSION, "%s: checkpoint format %lld is not supported (formats 1..%d)",
                     L->path, (long long)version, FSQ_CHECKPOINT_FORMAT);
  return FSQ_OK;
}

/* One index entry -> a record (data not read yet) and its slot. */
static fsq_status parse_entry(loader *L, fsq_ckpt_group g, json_object *e, slot *sl) {
  const char *gname = fsq_ckpt_group_name(g), *name = NULL, *dtype = NULL;
  json_object *shape = NULL;
  int64_t offset = 0, nbytes = 0, crc = 0;
  if (!json_object_is_type(e, json_type_object) || fsq_json_get_string(e, "name", &name) != FSQ_OK ||
      fsq_json_get_string(e, "dtype", &dtype) != FSQ_OK ||
      !json_object_object_get_ex(e, "shape", &shape) || !json_object_is_type(shape, json_type_array) ||
      fsq_json_get_int64(e, "offset", &offset) != FSQ_OK ||
      fsq_json_get_int64(e, "nbytes", &nbytes) != FSQ_OK || fsq_json_get_int64(e, "crc32", &crc) != FSQ_OK)
    return bad(L, FSQ_CKPT_META, "tensors.%s: an entry lacks name/dtype/shape/offset/nbytes/crc32",
               gname);
  snprintf(sl->member, sizeof sl->member, "%s/%s", gname, name);
  if (fsq_ckpt_check_name(g, name) != FSQ_OK) return bad(L, FSQ_CKPT_META, "%s", fsq_error_message());
  int dt = fsq_ckpt_dtype_parse(dtype);
  size_t ndim = json_object_array_length(shape);
  if (dt < 0) return bad(L, sl->member, "unknown dtype '%s' in meta.json", dtype);
  if (ndim > FSQ_CKPT_MAX_DIMS) return bad(L, sl->member, "%zu dimensions in meta.json", ndim);
  if (offset < 0 || nbytes < 0 || crc < 0 || crc > (int64_t)UINT32_MAX)
    return bad(L, sl->member, "negative offset/nbytes or bad crc32 in meta.json");
  if (fsq_state_find(L->st, g, name) != NULL) return bad(L, sl->member, "indexed twice");
  fsq_ckpt_tensor *t = fsq_ckpt_append(L->st, g, name);
  if (t == NULL) return fsq_error_code();
  t->dtype = (fsq_ckpt_dtype)dt;
  t->ndim = (int)ndim;
  for (size_t d = 0; d < ndim; d++)
    t->shape[d] = json_object_get_int64(json_object_array_get_idx(shape, d));
  size_t want = 0;
  if (fsq_ckpt_shape_bytes(sl->member, t->dtype, t->ndim, t->shape, &want) != FSQ_OK)
    return bad(L, sl->member, "%s", fsq_error_message());
  if ((uint64_t)want != (uint64_t)nbytes)
    return bad(L, sl->member, "dtype %s and shape need %zu bytes, the index says %lld", dtype, want,
               (long long)nbytes);
  t->nbytes = want;
  t->crc32 = (uint32_t)crc;
  sl->group = g;
  sl->t = t;
  sl->offset = (uint64_t)offset;
  sl->crc = (uint32_t)crc;
  return FSQ_OK;
}

static fsq_status parse_index(loader *L, json_object *meta) {
  json_object *tensors = NULL, *lists[FSQ_CKPT_GROUP_COUNT] = {0};
  if (!json_object_object_get_ex(meta, "tensors", &tensors) ||
      !json_object_is_type(tensors, json_type_object))
    return bad(L, FSQ_CKPT_META, "no \"tensors\" index");
  size_t total = 0;
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++) {
    const char *gname = fsq_ckpt_group_name((fsq_ckpt_group)g);
    if (!json_object_object_get_ex(tensors, gname, &lists[g]) ||
        !json_object_is_type(lists[g], json_type_array))
      return bad(L, FSQ_CKPT_META, "tensors.%s is not a list", gname);
    total += json_object_array_length(lists[g]);
  }
  L->slots = calloc(total ? total : 1, sizeof *L->slots);
  if (L->slots == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", L->path);
  for (int g = 0; g < FSQ_CKPT_GROUP_COUNT; g++)
    for (size_t i = 0; i < json_object_array_length(lists[g]); i++) {
      fsq_status s = parse_entry(L, (fsq_ckpt_group)g, json_object_array_get_idx(lists[g], i),
                                 &L->slots[L->nslots]);
      if (s != FSQ_OK) return s;
      L->nslots++;
    }
  return FSQ_OK;
}

static slot *find_slot(loader *L, const char *member, size_t hint) {
  if (hint < L->nslots && strcmp(L->slots[hint].member, member) == 0) return &L->slots[hint];
  for (size_t i = 0; i < L->nslots; i++)
    if (strcmp(L->slots[i].member, member) == 0) return &L->slots[i];
  return NULL;
}

/* The buffer a tensor is read into: the caller's, or one the state owns. */
static fsq_status destination(loader *L, slot *sl, void **dst) {
  *dst = NULL;
  if (sl->group == FSQ_CKPT_OPTIMIZER && L->opt->skip_optimizer) return FSQ_OK;
  if (L->opt->dest != NULL) *dst = L->opt->dest(L->opt->ctx, sl->group, sl->t);
  if (*dst == NULL) {
    *dst = malloc(sl->t->nbytes ? sl->t->nbytes : 1);
    if (*dst == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: %s: out of memory", L->path, sl->member);
    sl->t->owned = 1;
  }
  sl->t->data = *dst;
  return FSQ_OK;
}

static fsq_status read_tensors(loader *L) {
  struct archive_entry *e = NULL;
  const char *previous = FSQ_CKPT_META_CRC;
  for (size_t next = 0;; next++) {
    int r = archive_read_next_header(L->a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      return bad(L, NULL, "damaged or cut short after member '%s' (%s)", previous, why(L->a, "bad header"));
    const char *member = archive_entry_pathname(e);
    slot *sl = find_slot(L, member, next);
    if (sl == NULL) return bad(L, member, "not in the tensor index");
    if (sl->seen) return bad(L, member, "appears twice");
    sl->seen = 1;
    if (archive_entry_size(e) != (la_int64_t)sl->t->nbytes)
      return bad(L, member, "%lld bytes, the index says %zu", (long long)archive_entry_size(e),
                 sl->t->nbytes);
    uint64_t at = (uint64_t)archive_read_header_position(L->a) + FSQ_CKPT_BLOCK;
    if (at != sl->offset)
      return bad(L, member, "data at offset %llu, the index says %llu", (unsigned long long)at,
                 (unsigned long long)sl->offset);
    void *dst = NULL;
    uint32_t crc = 0;
    fsq_status s = destination(L, sl, &dst);
    if (s == FSQ_OK) s = read_body(L, member, dst, sl->t->nbytes, &crc);
    if (s != FSQ_OK) return s;
    if (crc != sl->crc)
      return bad(L, member, "crc32 mismatch (index %08x, data %08x)", sl->crc, crc);
    previous = sl->member;
  }
  for (size_t i = 0; i < L->nslots; i++)
    if (!L->slots[i].seen) return bad(L, L->slots[i].member, "missing (indexed in meta.json)");
  return FSQ_OK;
}

/* The end-of-archive blocks follow the last member; a file cut inside them
 * has all its data, but it is still not the file that was written. */
static fsq_status check_length(loader *L, uint64_t file_size) {
  uint64_t end = L->meta_end;
  for (size_t i = 0; i < L->nslots; i++) {
    uint64_t e = L->slots[i].offset + fsq_ckpt_padded(L->slots[i].t->nbytes);
    if (e > end) end = e;
  }
  end += 2 * FSQ_CKPT_BLOCK;
  if (file_size < end)
    return bad(L, NULL, "truncated: %llu bytes, the archive needs %llu",
               (unsigned long long)file_size, (unsigned long long)end);
  return FSQ_OK;
}

static fsq_status load(loader *L) {
  struct stat sb;
  if (stat(L->path, &sb) != 0)
    return fsq_error(errno == ENOENT ? FSQ_ERR_NOT_FOUND : FSQ_ERR_IO, "%s: %s", L->path,
                     strerror(errno));
  if (archive_read_support_format_tar(L->a) != ARCHIVE_OK ||
      archive_read_open_filename(L->a, L->path, 1u << 20) != ARCHIVE_OK)
    return bad(L, NULL, "not a readable checkpoint archive (%s)", why(L->a, "cannot open"));
  json_object *meta = NULL;
  fsq_status s = read_meta(L, &meta);
  if (s != FSQ_OK) return s;
  L->st->meta = meta;
  if ((s = check_format(L, meta)) != FSQ_OK || (s = parse_index(L, meta)) != FSQ_OK) return s;
  json_object_object_del(meta, "tensors");
  if ((s = read_tensors(L)) != FSQ_OK) return s;
  return check_length(L, (uint64_t)sb.st_size);
}

fsq_status fsq_checkpoint_load(const char *path, const fsq_ckpt_load_options *opt,
                               fsq_state **out) {
  static const fsq_ckpt_load_options defaults = {0};
  loader L = {.path = path, .opt = opt != NULL ? opt : &defaults};
  *out = NULL;
  L.st = fsq_ckpt_state_bare();
  L.a = archive_read_new();
  L.scratch = malloc(SCRATCH_BYTES);
  fsq_status s = (L.st && L.a && L.scratch) ? load(&L)
                                            : fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", path);
  archive_read_free(L.a);
  free(L.scratch);
  free(L.slots);
  if (s != FSQ_OK) {
    /* Records read into caller buffers are not the state's to free. */
    fsq_state_free(L.st);
    return s;
  }
  *out = L.st;
  return FSQ_OK;
}
