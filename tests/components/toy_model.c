/* toy_model.c: a model component used by the registry tests. One source,
 * built several times with different -D settings, gives the good and the
 * broken shared objects the tests lay out in component trees:
 *   TOY_VERSION   the version it declares ("1.0.0")
 *   TOY_NAME      the name it declares ("toy")
 *   TOY_ABI_MAJOR the ABI major it claims (FSQ_ABI_MAJOR)
 *   TOY_NO_ENTRY  defined: export no entry symbol at all */
#include "registry/fsq_component.h"

#ifndef TOY_NAME
#define TOY_NAME "toy"
#endif
#ifndef TOY_ABI_MAJOR
#define TOY_ABI_MAJOR FSQ_ABI_MAJOR
#endif

static const fsq_option toy_options[] = {
    {"encoder-embed-dim", FSQ_OPT_INT, "512", "encoder embedding dimension", NULL, NULL},
    {"decoder-embed-dim", FSQ_OPT_INT, NULL, "decoder embedding dimension", NULL, NULL},
    {"encoder-layers", FSQ_OPT_INT, "6", "num encoder layers", NULL, NULL},
    {"dropout", FSQ_OPT_FLOAT, "0.1", "dropout probability", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_arch_preset toy_base_presets[] = {
    {"encoder-embed-dim", "512"},
    {"decoder-embed-dim", "@encoder-embed-dim"},
    {"encoder-layers", "6"},
    {NULL, NULL}};
static const fsq_arch_preset toy_small_presets[] = {
    {"encoder-embed-dim", "64"},
    {"encoder-layers", "2"},
    {"dropout", "0.3"},
    {NULL, NULL}};
static const fsq_arch toy_archs[] = {
    {"toy_base", NULL, toy_base_presets},
    {"toy_small", "toy_base", toy_small_presets},
    FSQ_ARCH_END};

static const fsq_component toy = {
    .abi_major = TOY_ABI_MAJOR,
    .abi_minor = FSQ_ABI_MINOR,
    .size = sizeof(fsq_component),
    .kind = FSQ_KIND_MODEL,
    .name = TOY_NAME,
    .version = TOY_VERSION,
    .description = "a model that exists only for the registry tests",
    .options = toy_options,
    .archs = toy_archs,
};

#ifndef TOY_NO_ENTRY
const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &toy; }
#else
const fsq_component *toy_descriptor(void);
const fsq_component *toy_descriptor(void) { return &toy; }
#endif
