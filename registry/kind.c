/* kind.c: names of component kinds, as directories and in messages. */
#include "registry/fsq_component.h"

#include <string.h>

static const char *const kind_dirs[FSQ_KIND_COUNT] = {
    "models", "tasks", "criterions", "optimizers", "lr_schedulers"};
static const char *const kind_names[FSQ_KIND_COUNT] = {
    "model", "task", "criterion", "optimizer", "lr_scheduler"};

const char *fsq_kind_dir(fsq_component_kind kind) {
  return (unsigned)kind < FSQ_KIND_COUNT ? kind_dirs[kind] : "unknown";
}

const char *fsq_kind_name(fsq_component_kind kind) {
  return (unsigned)kind < FSQ_KIND_COUNT ? kind_names[kind] : "unknown";
}

int fsq_kind_parse(const char *text) {
  for (int k = 0; k < FSQ_KIND_COUNT; k++)
    if (strcmp(text, kind_dirs[k]) == 0 || strcmp(text, kind_names[k]) == 0) return k;
  return -1;
}
