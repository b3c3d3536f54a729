/* registry.c: discovery and checked loading of components (see
 * fsq_registry.h). The registry is one of the two pieces of state the
 * framework keeps for a whole run; it owns the dlopen handles, so every
 * descriptor stays valid until fsq_registry_close. */
#define _GNU_SOURCE
#include "registry/fsq_registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FSQ_COMPONENT_DIR
#define FSQ_COMPONENT_DIR "/usr/local/lib/fairseq-c/components"
#endif

typedef struct loaded {
  fsq_registry_entry entry;
  void *handle;
  char *path;
} loaded;

struct fsq_registry {
  loaded *items;
  size_t count, capacity;
  char **problems;
  size_t problem_count, problem_capacity;
};

static int grow(void **array, size_t *capacity, size_t count, size_t item) {
  if (count < *capacity) return 0;
  size_t cap = *capacity ? *capacity * 2 : 16;
  void *p = realloc(*array, cap * item);
  if (p == NULL) return -1;
  *array = p;
  *capacity = cap;
  return 0;
}

static void add_problem(fsq_registry *reg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_problem(fsq_registry *reg, const char *fmt, ...) {
  if (grow((void **)&reg->problems, &reg->problem_capacity, reg->problem_count,
           sizeof(char *)) != 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *text = NULL;
  if (vasprintf(&text, fmt, ap) >= 0) reg->problems[reg->problem_count++] = text;
  va_end(ap);
}

static int is_elf(const char *path, fsq_registry *reg) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    add_problem(reg, "%s: cannot read: %s", path, strerror(errno));
    return 0;
  }
  unsigned char magic[4] = {0};
  size_t n = fread(magic, 1, 4, f);
  fclose(f);
  if (n != 4 || memcmp(magic, "\177ELF", 4) != 0) {
    add_problem(reg, "%s: not an ELF shared object", path);
    return 0;
  }
  return 1;
}

static const loaded *find_exact(const fsq_registry *reg, fsq_component_kind kind,
                                const char *name, fsq_semver v) {
  for (size_t i = 0; i < reg->count; i++) {
    const fsq_component *c = reg->items[i].entry.component;
    if (c->kind == kind && strcmp(c->name, name) == 0 &&
        fsq_semver_compare(reg->items[i].entry.version, v) == 0)
      return &reg->items[i];
  }
  return NULL;
}

/* Checks the descriptor against the place the file was found in. Returns a
 * problem text (static or in buf) or NULL when all agrees. */
static const char *check_descriptor(const fsq_component *c, fsq_component_kind kind,
                                    const char *name, const char *version, fsq_semver *v,
                                    char *buf, size_t size) {
  if (c->abi_major != FSQ_ABI_MAJOR || c->abi_minor > FSQ_ABI_MINOR) {
    snprintf(buf, size, "built for component ABI %u.%u, this fairseq-c provides %d.%d",
             c->abi_major, c->abi_minor, FSQ_ABI_MAJOR, FSQ_ABI_MINOR);
    return buf;
  }
  if (c->size < offsetof(fsq_component, reserved)) return "descriptor is truncated";
  if ((unsigned)c->kind >= FSQ_KIND_COUNT) return "descriptor has an unknown kind";
  if (c->kind != kind) {
    snprintf(buf, size, "is a %s but sits in the %s directory", fsq_kind_name(c->kind),
             fsq_kind_dir(kind));
    return buf;
  }
  if (c->name == NULL || strcmp(c->name, name) != 0) {
    snprintf(buf, size, "declares name '%s' but its directory is '%s'",
             c->name ? c->name : "(null)", name);
    return buf;
  }
  if (c->version == NULL || fsq_semver_parse(c->version, v) != FSQ_OK) {
    snprintf(buf, size, "declares version '%s', not MAJOR.MINOR.PATCH",
             c->version ? c->version : "(null)");
    return buf;
  }
  if (strcmp(c->version, version) != 0) {
    snprintf(buf, size, "declares version %s but its directory is %s", c->version, version);
    return buf;
  }
  return NULL;
}

static void load_candidate(fsq_registry *reg, fsq_component_kind kind, const char *name,
                           const char *version, const char *file, const char *path) {
  size_t flen = strlen(file);
  if (strncmp(file, name, flen - 3) != 0 || strlen(name) != flen - 3) {
    add_problem(reg, "%s: file name disagrees with its directory '%s' (expected %s.so)", path,
                name, name);
    return;
  }
  fsq_semver dir_version;
  if (fsq_semver_parse(version, &dir_version) != FSQ_OK) {
    add_problem(reg, "%s: directory '%s' is not a version (MAJOR.MINOR.PATCH)", path, version);
    return;
  }
  if (!is_elf(path, reg)) return;
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    add_problem(reg, "%s: cannot load: %s", path, dlerror());
    return;
  }
  fsq_component_entry_fn entry;
  *(void **)&entry = dlsym(handle, FSQ_COMPONENT_ENTRY_SYMBOL);
  const fsq_component *c = entry != NULL ? entry() : NULL;
  char buf[512];
  fsq_semver v;
  const char *why = entry == NULL ? "no " FSQ_COMPONENT_ENTRY_SYMBOL " symbol"
                    : c == NULL   ? FSQ_COMPONENT_ENTRY_SYMBOL " returned no descriptor"
                                  : check_descriptor(c, kind, name, version, &v, buf, sizeof buf);
  const loaded *dup = why == NULL ? find_exact(reg, kind, name, v) : NULL;
  if (dup != NULL) {
    snprintf(buf, sizeof buf, "duplicate of %s %s %s already loaded from %s",
             fsq_kind_name(kind), name, version, dup->path);
    why = buf;
  }
  if (why != NULL ||
      grow((void **)&reg->items, &reg->capacity, reg->count, sizeof(loaded)) != 0) {
    if (why != NULL) add_problem(reg, "%s: %s", path, why);
    dlclose(handle);
    return;
  }
  loaded *l = &reg->items[reg->count];
  l->handle = handle;
  l->path = strdup(path);
  l->entry.component = c;
  l->entry.path = l->path;
  l->entry.version = v;
  reg->count++;
}

/* dir/name into buf; 0 when it does not fit (such a path is skipped). */
static int join_path(char *buf, size_t size, const char *dir, const char *name) {
  int n = snprintf(buf, size, "%s/%s", dir, name);
  return n > 0 && (size_t)n < size;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Calls fn for every directory entry of dir except dot-files, sorted so that
 * discovery (and so duplicate reports) is the same on every file system. */
static void each_entry(const char *dir, void (*fn)(const char *dir, const char *name, void *arg),
                       void *arg) {
  struct dirent **list = NULL;
  int n = scandir(dir, &list, NULL, alphasort);
  for (int i = 0; i < n; i++) {
    if (list[i]->d_name[0] != '.') fn(dir, list[i]->d_name, arg);
    free(list[i]);
  }
  free(list);
}

typedef struct scan_ctx {
  fsq_registry *reg;
  fsq_component_kind kind;
  const char *name;
  const char *version;
} scan_ctx;

static void scan_file(const char *dir, const char *file, void *arg) {
  scan_ctx *s = arg;
  size_t len = strlen(file);
  if (len < 4 || strcmp(file + len - 3, ".so") != 0) return; /* .la and friends */
  char path[4096];
  if (!join_path(path, sizeof path, dir, file)) return;
  load_candidate(s->reg, s->kind, s->name, s->version, file, path);
}

static void scan_version(const char *dir, const char *version, void *arg) {
  scan_ctx *s = arg;
  char path[4096];
  if (!join_path(path, sizeof path, dir, version) || !is_dir(path)) return;
  s->version = version;
  each_entry(path, scan_file, s);
}

static void scan_name(const char *dir, const char *name, void *arg) {
  scan_ctx *s = arg;
  char path[4096];
  if (!join_path(path, sizeof path, dir, name) || !is_dir(path)) return;
  s->name = name;
  each_entry(path, scan_version, s);
}

static void scan_root(fsq_registry *reg, const char *root) {
  for (int k = 0; k < FSQ_KIND_COUNT; k++) {
    char path[4096];
    if (!join_path(path, sizeof path, root, fsq_kind_dir((fsq_component_kind)k)) || !is_dir(path))
      continue;
    scan_ctx s = {reg, (fsq_component_kind)k, NULL, NULL};
    each_entry(path, scan_name, &s);
  }
}

fsq_registry *fsq_registry_open_dirs(const char *const *roots) {
  fsq_registry *reg = calloc(1, sizeof *reg);
  if (reg == NULL) {
    fsq_error(FSQ_ERR_NOMEM, "registry: out of memory");
    return NULL;
  }
  for (size_t i = 0; roots != NULL && roots[i] != NULL; i++) scan_root(reg, roots[i]);
  return reg;
}

fsq_registry *fsq_registry_open(const char *const *extra_dirs) {
  const char *env = getenv("FSQ_COMPONENT_PATH");
  char *env_copy = env != NULL ? strdup(env) : NULL;
  size_t n = 0;
  for (size_t i = 0; extra_dirs != NULL && extra_dirs[i] != NULL; i++) n++;
  for (const char *p = env_copy; p != NULL && *p; p++) n += *p == ':';
  const char **roots = calloc(n + 3, sizeof *roots);
  if (roots == NULL) {
    free(env_copy);
    fsq_error(FSQ_ERR_NOMEM, "registry: out of memory");
    return NULL;
  }
  size_t r = 0;
  for (size_t i = 0; extra_dirs != NULL && extra_dirs[i] != NULL; i++) roots[r++] = extra_dirs[i];
  char *save = NULL;
  for (char *tok = env_copy ? strtok_r(env_copy, ":", &save) : NULL; tok != NULL;
       tok = strtok_r(NULL, ":", &save))
    roots[r++] = tok;
  roots[r++] = FSQ_COMPONENT_DIR;
  roots[r] = NULL;
  fsq_registry *reg = fsq_registry_open_dirs(roots);
  free(roots);
  free(env_copy);
  return reg;
}

void fsq_registry_close(fsq_registry *reg) {
  if (reg == NULL) return;
  for (size_t i = 0; i < reg->count; i++) {
    dlclose(reg->items[i].handle);
    free(reg->items[i].path);
  }
  for (size_t i = 0; i < reg->problem_count; i++) free(reg->problems[i]);
  free(reg->items);
  free(reg->problems);
  free(reg);
}

size_t fsq_registry_count(const fsq_registry *reg) { return reg->count; }

const fsq_registry_entry *fsq_registry_at(const fsq_registry *reg, size_t i) {
  return i < reg->count ? &reg->items[i].entry : NULL;
}

size_t fsq_registry_problem_count(const fsq_registry *reg) { return reg->problem_count; }

const char *fsq_registry_problem(const fsq_registry *reg, size_t i) {
  return i < reg->problem_count ? reg->problems[i] : NULL;
}
