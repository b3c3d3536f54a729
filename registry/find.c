/* find.c: choosing a component version and finding named architectures. */
#include "registry/fsq_registry.h"

#include <stdio.h>
#include <string.h>

/* "a, b, c" of the names (or versions) on offer, for error messages. */
static void list_available(const fsq_registry *reg, fsq_component_kind kind, const char *name,
                           char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < fsq_registry_count(reg) && len + 1 < size; i++) {
    const fsq_registry_entry *e = fsq_registry_at(reg, i);
    if (e->component->kind != kind) continue;
    if (name != NULL && strcmp(e->component->name, name) != 0) continue;
    const char *item = name != NULL ? e->component->version : e->component->name;
    if (name == NULL && strstr(buf, item) != NULL) continue;
    len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", item);
  }
  if (buf[0] == '\0') snprintf(buf, size, "none");
}

const fsq_registry_entry *fsq_registry_find(const fsq_registry *reg, fsq_component_kind kind,
                                            const char *name, const char *pin) {
  const fsq_registry_entry *best = NULL;
  int any = 0;
  for (size_t i = 0; i < fsq_registry_count(reg); i++) {
    const fsq_registry_entry *e = fsq_registry_at(reg, i);
    if (e->component->kind != kind || strcmp(e->component->name, name) != 0) continue;
    any = 1;
    if (pin != NULL && !fsq_semver_matches_pin(e->version, pin)) continue;
    if (best == NULL || fsq_semver_compare(e->version, best->version) > 0) best = e;
  }
  if (best != NULL) return best;
  char avail[1024];
  list_available(reg, kind, any ? name : NULL, avail, sizeof avail);
  if (any)
    fsq_error(FSQ_ERR_NOT_FOUND, "%s '%s' has no version matching %s (found %s)",
              fsq_kind_name(kind), name, pin, avail);
  else
    fsq_error(FSQ_ERR_NOT_FOUND, "unknown %s '%s' (available: %s)", fsq_kind_name(kind), name,
              avail);
  return NULL;
}

/* Splits "name@pin" into buf (name) and returns the pin or NULL. */
static const char *split_spec(const char *spec, char *buf, size_t size) {
  const char *at = strchr(spec, '@');
  size_t len = at != NULL ? (size_t)(at - spec) : strlen(spec);
  if (len >= size) len = size - 1;
  memcpy(buf, spec, len);
  buf[len] = '\0';
  return at != NULL ? at + 1 : NULL;
}

const fsq_registry_entry *fsq_registry_find_spec(const fsq_registry *reg,
                                                 fsq_component_kind kind, const char *spec) {
  char name[256];
  const char *pin = split_spec(spec, name, sizeof name);
  return fsq_registry_find(reg, kind, name, pin);
}

static const fsq_arch *arch_named(const fsq_component *c, const char *name) {
  for (const fsq_arch *a = c->archs; a != NULL && a->name != NULL; a++)
    if (strcmp(a->name, name) == 0) return a;
  return NULL;
}

fsq_status fsq_registry_find_arch(const fsq_registry *reg, const char *spec,
                                  const fsq_registry_entry **model, const fsq_arch **arch) {
  char name[256];
  const char *pin = split_spec(spec, name, sizeof name);
  const fsq_registry_entry *best = NULL;
  const fsq_arch *best_arch = NULL;
  int any = 0;
  for (size_t i = 0; i < fsq_registry_count(reg); i++) {
    const fsq_registry_entry *e = fsq_registry_at(reg, i);
    if (e->component->kind != FSQ_KIND_MODEL) continue;
    const fsq_arch *a = arch_named(e->component, name);
    if (a == NULL) continue;
    any = 1;
    if (pin != NULL && !fsq_semver_matches_pin(e->version, pin)) continue;
    if (best == NULL || fsq_semver_compare(e->version, best->version) > 0) {
      best = e;
      best_arch = a;
    }
  }
  if (best == NULL) {
    if (any)
      return fsq_error(FSQ_ERR_NOT_FOUND, "architecture '%s': no model version matches %s",
                       name, pin);
    return fsq_error(FSQ_ERR_NOT_FOUND,
                     "unknown architecture '%s' (fairseq-components --archs lists them)", name);
  }
  *model = best;
  *arch = best_arch;
  return FSQ_OK;
}
