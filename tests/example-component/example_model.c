/* example_model.c: the smallest third-party component, built out of tree
 * against an installed fairseq-c (see the Makefile beside it). It declares
 * its options and one named architecture; a real model also fills .ops. */
#include <registry/fsq_component.h>

static const fsq_option example_options[] = {
    {"example-dim", FSQ_OPT_INT, "32", "hidden size of the example model", NULL, NULL},
    FSQ_OPTION_END};

static const fsq_arch_preset example_tiny_presets[] = {{"example-dim", "8"}, {NULL, NULL}};

static const fsq_arch example_archs[] = {
    {"example_tiny", NULL, example_tiny_presets},
    FSQ_ARCH_END};

static const fsq_component example = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_MODEL,
    .name = "example",
    .version = "0.1.0",
    .description = "an out-of-tree example component",
    .options = example_options,
    .archs = example_archs,
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &example; }
