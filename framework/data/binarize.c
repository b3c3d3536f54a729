/* binarize.c: counting words into a dictionary and encoding a text file
 * into an indexed dataset, with the file cut into line-aligned chunks that
 * threads process in parallel. Results are merged in chunk order, so the
 * output does not depend on the number of workers. */
#include "data/binarize.h"
#include "data/dict_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

fsq_status fsq_text_open(const char *path, fsq_text *t) {
  memset(t, 0, sizeof *t);
  t->path = path;
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return fsq_error(errno == ENOENT ? FSQ_ERR_NOT_FOUND : FSQ_ERR_IO, "%s: %s", path,
                     strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return fsq_error(FSQ_ERR_IO, "%s: not a readable regular file", path);
  }
  t->size = (size_t)sb.st_size;
  if (t->size == 0) {
    close(fd);
    return fsq_error(FSQ_ERR_FORMAT, "%s: empty input file", path);
  }
  void *p = mmap(NULL, t->size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return fsq_error(FSQ_ERR_IO, "%s: mmap: %s", path, strerror(errno));
  madvise(p, t->size, MADV_SEQUENTIAL);
  t->data = p;
  return FSQ_OK;
}

void fsq_text_close(fsq_text *t) {
  if (t->data) munmap((void *)t->data, t->size);
  t->data = NULL;
}

/* End of the line starting at p (first '\n' or '\r'), and the start of the next. */
static const char *line_end(const char *p, const char *end, const char **next) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *stop = nl ? nl : end;
  const char *cr = memchr(p, '\r', (size_t)(stop - p));
  if (cr) {
    *next = (cr + 1 < end && cr[1] == '\n') ? cr + 2 : cr + 1;
    return cr;
  }
  *next = nl ? nl + 1 : end;
  return stop;
}

/* The first line start at or after pos (universal newlines). */
static size_t align_to_line(const fsq_text *t, size_t pos) {
  if (pos == 0 || pos >= t->size) return pos >= t->size ? t->size : 0;
  char prev = t->data[pos - 1];
  if (prev == '\n' || (prev == '\r' && t->data[pos] != '\n')) return pos;
  const char *next;
  line_end(t->data + pos, t->data + t->size, &next);
  return (size_t)(next - t->data);
}

typedef struct chunk {
  const fsq_text *text;
  size_t begin, end;
  const fsq_dictionary *dict; /* encode mode */
  fsq_dictionary *counts;     /* count mode */
  fsq_binarized out;
  size_t lines;
  size_t bad_line; /* 1-based within the chunk; 0 = none */
  fsq_status status;
  char message[512];
} chunk;

static int push_item(fsq_binarized *b, const int32_t *ids, size_t n) {
  if (b->nitems == b->items_cap) {
    size_t cap = b->items_cap ? b->items_cap * 2 : 4096;
    int32_t *s = realloc(b->sizes, cap * sizeof *s);
    if (s == NULL) return -1;
    b->sizes = s;
    b->items_cap = cap;
  }
  if (b->ntok + n > b->tok_cap) {
    size_t cap = b->tok_cap ? b->tok_cap * 2 : 65536;
    while (cap < b->ntok + n) cap *= 2;
    int32_t *t = realloc(b->tokens, cap * sizeof *t);
    if (t == NULL) return -1;
    b->tokens = t;
    b->tok_cap = cap;
  }
  memcpy(b->tokens + b->ntok, ids, n * sizeof *ids);
  b->ntok += n;
  b->sizes[b->nitems++] = (int32_t)n;
  return 0;
}

static fsq_status count_line(chunk *c, const char *line, size_t len) {
  fsq_token tok[64];
  size_t n = fsq_tokenize_line(line, len, tok, 64);
  fsq_token *all = tok;
  if (n > 64) {
    all = malloc(n * sizeof *all);
    if (all == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", c->text->path);
    fsq_tokenize_line(line, len, all, n);
  }
  fsq_status st = FSQ_OK;
  for (size_t i = 0; i < n && st == FSQ_OK; i++)
    if (fsq_dictionary_add(c->counts, all[i].ptr, all[i].len, 1, 0) < 0) st = fsq_error_code();
  c->counts->counts[FSQ_DICT_EOS]++;
  if (all != tok) free(all);
  return st;
}

static void *run_chunk(void *arg) {
  chunk *c = arg;
  const char *p = c->text->data + c->begin, *end = c->text->data + c->end;
  int32_t *ids = NULL;
  size_t cap = 0, n = 0;
  fsq_status st = FSQ_OK;
  while (p < end && st == FSQ_OK) {
    const char *next, *le = line_end(p, end, &next);
    size_t len = (size_t)(le - p);
    c->lines++;
    if (!fsq_utf8_valid(p, len, NULL)) {
      c->bad_line = c->lines;
      st = fsq_error(FSQ_ERR_FORMAT, "not valid UTF-8");
    } else if (c->counts) {
      st = count_line(c, p, len);
    } else {
      st = fsq_dictionary_encode_line(c->dict, p, len, &ids, &cap, &n, &c->out.nunk);
      if (st == FSQ_OK && push_item(&c->out, ids, n) != 0)
        st = fsq_error(FSQ_ERR_NOMEM, "out of memory");
    }
    p = next;
  }
  free(ids);
  c->status = st;
  if (st != FSQ_OK) snprintf(c->message, sizeof c->message, "%s", fsq_error_message());
  return NULL;
}

/* Cuts text[begin, end) into `workers` line-aligned chunks, runs them, and
 * reports the first failing chunk's error with its line number in the whole
 * file (lines_before = lines ahead of begin). */
static fsq_status run_chunks(const fsq_text *t, size_t begin, size_t end, int workers, chunk *cs,
                             size_t *lines_before) {
  size_t step = (end - begin) / (size_t)workers;
  for (int i = 0; i < workers; i++) {
    cs[i].text = t;
    cs[i].begin = i == 0 ? begin : align_to_line(t, begin + step * (size_t)i);
    if (cs[i].begin > end) cs[i].begin = end;
    cs[i].end = end;
    if (i > 0) cs[i - 1].end = cs[i].begin;
    cs[i].lines = 0;
  }
  pthread_t tid[workers > 1 ? workers : 1];
  int started[workers > 1 ? workers : 1];
  for (int i = 1; i < workers; i++)
    started[i] = pthread_create(&tid[i], NULL, run_chunk, &cs[i]) == 0;
  run_chunk(&cs[0]);
  for (int i = 1; i < workers; i++)
    if (started[i]) pthread_join(tid[i], NULL);
    else run_chunk(&cs[i]);
  for (int i = 0; i < workers; i++) {
    if (cs[i].status != FSQ_OK) {
      if (cs[i].bad_line)
        return fsq_error(cs[i].status, "%s:%zu: %s", t->path, *lines_before + cs[i].bad_line,
                         cs[i].message);
      return fsq_error(cs[i].status, "%s: %s", t->path, cs[i].message);
    }
    *lines_before += cs[i].lines;
  }
  return FSQ_OK;
}

fsq_status fsq_binarize_count(const fsq_text *t, int workers, fsq_dictionary *d) {
  if (workers < 1) workers = 1;
  chunk *cs = calloc((size_t)workers, sizeof *cs);
  if (cs == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", t->path);
  fsq_status st = FSQ_OK;
  size_t lines = 0;
  for (int i = 0; i < workers && st == FSQ_OK; i++)
    if ((cs[i].counts = fsq_dictionary_new()) == NULL) st = fsq_error_code();
  if (st == FSQ_OK) st = run_chunks(t, 0, t->size, workers, cs, &lines);
  for (int i = 0; i < workers; i++) {
    if (st == FSQ_OK) st = fsq_dictionary_merge(d, cs[i].counts);
    fsq_dictionary_free(cs[i].counts);
  }
  free(cs);
  return st;
}

/* Appends every encoded line of the chunks, in order, to w. */
static fsq_status write_chunks(chunk *cs, int workers, fsq_indexed_writer *w,
                               fsq_binarize_stats *stats) {
  fsq_status st = FSQ_OK;
  for (int i = 0; i < workers && st == FSQ_OK; i++) {
    fsq_binarized *b = &cs[i].out;
    const int32_t *tok = b->tokens;
    for (size_t k = 0; k < b->nitems && st == FSQ_OK; k++) {
      st = fsq_indexed_writer_add(w, tok, (size_t)b->sizes[k]);
      tok += b->sizes[k];
    }
    stats->nseq += (int64_t)b->nitems;
    stats->ntok += (int64_t)b->ntok;
    stats->nunk += b->nunk;
    b->nitems = b->ntok = 0; /* keep the buffers for the next segment */
    b->nunk = 0;
  }
  return st;
}

fsq_status fsq_binarize_encode(const fsq_text *t, int workers, size_t segment_bytes,
                               const fsq_dictionary *d, fsq_indexed_writer *w,
                               fsq_binarize_stats *stats) {
  if (workers < 1) workers = 1;
  memset(stats, 0, sizeof *stats);
  chunk *cs = calloc((size_t)workers, sizeof *cs);
  if (cs == NULL) return fsq_error(FSQ_ERR_NOMEM, "%s: out of memory", t->path);
  for (int i = 0; i < workers; i++) cs[i].dict = d;
  /* Segments of about segment_bytes per worker bound the memory that
   * encoded lines wait in before they are written. */
  if (segment_bytes == 0) segment_bytes = FSQ_SEGMENT_BYTES;
  size_t seg = segment_bytes * (size_t)workers, lines = 0, begin = 0;
  fsq_status st = FSQ_OK;
  while (begin < t->size && st == FSQ_OK) {
    size_t end = t->size - begin > seg ? align_to_line(t, begin + seg) : t->size;
    st = run_chunks(t, begin, end, workers, cs, &lines);
    if (st == FSQ_OK) st = write_chunks(cs, workers, w, stats);
    begin = end;
  }
  for (int i = 0; i < workers; i++) {
    free(cs[i].out.tokens);
    free(cs[i].out.sizes);
  }
  free(cs);
  return st;
}
