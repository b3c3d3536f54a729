/* test_checkpoint_fault.c: the helper of test_checkpoint_fault.sh.
 *   save DIR [--once]  saves DIR/checkpoint_last.fsq in a loop (until
 *                      killed), each time with the next version number
 *   verify DIR         loads it, checks that every tensor holds the bytes
 *                      of the version its meta.json names, prints the
 *                      version, and fails if any *.fsq other than it exists
 * Exit status 0 when fine; 1 with one line on stderr otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/fsq_checkpoint.h"

#define NTENSORS 4
#define ELEMS (256 * 1024) /* 1 MiB of f32 each */

static void fill(uint32_t *x, size_t n, int64_t version, int t) {
  for (size_t i = 0; i < n; i++) x[i] = (uint32_t)(version * 2654435761u) ^ (uint32_t)(i * 40503u + (size_t)t);
}

static int fail(const char *what) {
  fprintf(stderr, "test_checkpoint_fault: %s: %s\n", what, fsq_error_message());
  return 1;
}

static int save_loop(const char *path, int once) {
  int64_t version = 1;
  fsq_state *old = NULL;
  if (fsq_checkpoint_load(path, NULL, &old) == FSQ_OK) {
    int64_t e, it;
    fsq_state_get_progress(old, &e, &it, &version);
    version++;
    fsq_state_free(old);
  }
  uint32_t *bufs[NTENSORS];
  for (int t = 0; t < NTENSORS; t++) bufs[t] = malloc(ELEMS * sizeof(uint32_t));
  for (;; version++) {
    fsq_state *st = fsq_state_new();
    fsq_state_set_progress(st, 1, 0, version);
    for (int t = 0; t < NTENSORS; t++) {
      char name[32];
      int64_t shape[2] = {256, 1024};
      snprintf(name, sizeof name, "layer%d.weight", t);
      fill(bufs[t], ELEMS, version, t);
      if (fsq_state_add(st, t % 2 ? FSQ_CKPT_OPTIMIZER : FSQ_CKPT_MODEL, name, FSQ_CKPT_F32, 2,
                        shape, bufs[t], ELEMS * sizeof(uint32_t), FSQ_CKPT_BORROW) != FSQ_OK)
        return fail("add");
    }
    if (fsq_checkpoint_save(st, path) != FSQ_OK) return fail("save");
    fsq_state_free(st);
    if (once) break;
  }
  for (int t = 0; t < NTENSORS; t++) free(bufs[t]);
  return 0;
}

static int verify(const char *dir, const char *path) {
  fsq_state *st = NULL;
  if (fsq_checkpoint_load(path, NULL, &st) != FSQ_OK) return fail("verify");
  int64_t e, it, version;
  if (fsq_state_get_progress(st, &e, &it, &version) != FSQ_OK) return fail("verify");
  uint32_t *want = malloc(ELEMS * sizeof(uint32_t));
  for (int t = 0; t < NTENSORS; t++) {
    char name[32];
    snprintf(name, sizeof name, "layer%d.weight", t);
    fsq_ckpt_tensor *x = fsq_state_find(st, t % 2 ? FSQ_CKPT_OPTIMIZER : FSQ_CKPT_MODEL, name);
    fill(want, ELEMS, version, t);
    if (x == NULL || x->nbytes != ELEMS * sizeof(uint32_t) || memcmp(x->data, want, x->nbytes)) {
      fprintf(stderr, "test_checkpoint_fault: %s: %s does not hold version %lld\n", path, name,
              (long long)version);
      return 1;
    }
  }
  free(want);
  fsq_state_free(st);
  DIR *d = opendir(dir);
  for (struct dirent *ent; d && (ent = readdir(d));) {
    size_t n = strlen(ent->d_name);
    if (n >= 4 && strcmp(ent->d_name + n - 4, ".fsq") == 0 &&
        strcmp(ent->d_name, "checkpoint_last.fsq") != 0) {
      fprintf(stderr, "test_checkpoint_fault: %s/%s looks like a checkpoint\n", dir, ent->d_name);
      return 1;
    }
  }
  if (d) closedir(d);
  printf("%lld\n", (long long)version);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_checkpoint_fault save|verify DIR [--once]\n");
    return 2;
  }
  char *path = NULL;
  if (asprintf(&path, "%s/checkpoint_last.fsq", argv[2]) < 0) return 2;
  int rc = 2;
  if (strcmp(argv[1], "save") == 0) rc = save_loop(path, argc > 3 && !strcmp(argv[3], "--once"));
  else if (strcmp(argv[1], "verify") == 0) rc = verify(argv[2], path);
  free(path);
  return rc;
}
