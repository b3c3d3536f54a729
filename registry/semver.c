/* semver.c: MAJOR.MINOR.PATCH versions of components, and version pins. */
#include "registry/fsq_registry.h"

#include <stdlib.h>
#include <string.h>

/* Reads one decimal part; returns the character after it, or NULL. */
static const char *read_part(const char *p, unsigned *out) {
  if (*p < '0' || *p > '9') return NULL;
  unsigned long v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > 1000000) return NULL;
    p++;
  }
  *out = (unsigned)v;
  return p;
}

fsq_status fsq_semver_parse(const char *text, fsq_semver *out) {
  fsq_semver v = {0, 0, 0};
  const char *p = text != NULL ? read_part(text, &v.major) : NULL;
  if (p != NULL && *p == '.') p = read_part(p + 1, &v.minor);
  else p = NULL;
  if (p != NULL && *p == '.') p = read_part(p + 1, &v.patch);
  else p = NULL;
  if (p == NULL || *p != '\0')
    return fsq_error(FSQ_ERR_FORMAT, "'%s' is not a version (MAJOR.MINOR.PATCH)",
                     text != NULL ? text : "(null)");
  *out = v;
  return FSQ_OK;
}

int fsq_semver_compare(fsq_semver a, fsq_semver b) {
  if (a.major != b.major) return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
  return 0;
}

int fsq_semver_matches_pin(fsq_semver v, const char *pin) {
  unsigned parts[3];
  int n = 0;
  const char *p = pin;
  while (n < 3) {
    p = read_part(p, &parts[n]);
    if (p == NULL) return 0;
    n++;
    if (*p == '\0') break;
    if (*p != '.') return 0;
    p++;
  }
  if (*p != '\0') return 0;
  unsigned have[3] = {v.major, v.minor, v.patch};
  for (int i = 0; i < n; i++)
    if (have[i] != parts[i]) return 0;
  return 1;
}
