/* fsq_component.h: the component ABI. A component is a shared object that
 * exports one symbol, fsq_component_entry, returning a descriptor that lives
 * as long as the object is loaded. This header is all a component needs from
 * the registry; it knows nothing of dlopen. */
#ifndef FSQ_COMPONENT_H
#define FSQ_COMPONENT_H

#include <stdint.h>

#include "core/fsq_core.h"
#include "registry/fsq_options.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bump MAJOR for any incompatible change to this descriptor or to a kind's
 * ops table; bump MINOR when fields are only added (older components keep
 * loading: the registry reads `size` to know which fields they have). */
#define FSQ_ABI_MAJOR 1
#define FSQ_ABI_MINOR 0

typedef enum fsq_component_kind {
  FSQ_KIND_MODEL = 0,
  FSQ_KIND_TASK,
  FSQ_KIND_CRITERION,
  FSQ_KIND_OPTIMIZER,
  FSQ_KIND_LR_SCHEDULER,
  FSQ_KIND_COUNT
} fsq_component_kind;

/* A named architecture (fairseq's register_model_architecture): presets
 * applied in order where the user gave no value. A value "@other-option"
 * takes the resolved value of another option (decoder-embed-dim defaults to
 * encoder-embed-dim). `base` names an architecture of the same model whose
 * presets apply afterwards, again only where nothing is set yet. */
typedef struct fsq_arch_preset {
  const char *option;
  const char *value;
} fsq_arch_preset;

typedef struct fsq_arch {
  const char *name;
  const char *base; /* or NULL */
  const fsq_arch_preset *presets; /* ends with {NULL, NULL} */
} fsq_arch;

#define FSQ_ARCH_END {NULL, NULL, NULL}

/* One step of a component's state upgrade chain: moves a checkpoint's state
 * written by version `from` to version `to` (renames, reshapes). The state
 * type belongs to framework/checkpoint. */
struct fsq_state;
typedef struct fsq_upgrade_step {
  const char *from_version;
  const char *to_version;
  const char *description;
  fsq_status (*apply)(struct fsq_state *state);
} fsq_upgrade_step;

#define FSQ_UPGRADE_END {NULL, NULL, NULL, NULL}

typedef struct fsq_component {
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t size; /* sizeof(fsq_component) as the component was built */
  fsq_component_kind kind;
  const char *name;    /* matches its directory and file name */
  const char *version; /* semver MAJOR.MINOR.PATCH, matches its directory */
  const char *description;
  const fsq_option *options;         /* ends with FSQ_OPTION_END; may be NULL */
  const fsq_arch *archs;             /* models only; ends with FSQ_ARCH_END */
  const fsq_upgrade_step *upgrades;  /* ends with FSQ_UPGRADE_END; may be NULL */
  uint32_t ops_version;              /* version of the kind's ops table layout */
  const void *ops;                   /* the kind's ops table (framework headers) */
  const void *reserved[8];           /* room to grow within ABI 1 */
} fsq_component;

/* Fills the ABI fields; use first in a designated initializer. */
#define FSQ_COMPONENT_ABI .abi_major = FSQ_ABI_MAJOR, .abi_minor = FSQ_ABI_MINOR, \
                          .size = sizeof(fsq_component)

typedef const fsq_component *(*fsq_component_entry_fn)(void);
#define FSQ_COMPONENT_ENTRY_SYMBOL "fsq_component_entry"

/* "models", "tasks", ...: the directory name of a kind. */
const char *fsq_kind_dir(fsq_component_kind kind);
/* "model", "task", ...: the singular used in messages. */
const char *fsq_kind_name(fsq_component_kind kind);
/* -1 when the text names no kind (either form is accepted). */
int fsq_kind_parse(const char *text);

#ifdef __cplusplus
}
#endif
#endif /* FSQ_COMPONENT_H */
