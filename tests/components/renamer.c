/* renamer.c: a model component whose parameter names changed between its
 * versions, to exercise the checkpoint upgrade chain. Built twice:
 *   RENAMER_MAJOR 1 (1.0.0): calls its weight "enc.w"
 *   RENAMER_MAJOR 2 (2.0.0): calls it "encoder.weight" and carries the step
 *                            1.0.0 -> 2.0.0 that renames it (with its
 *                            optimizer state "enc.w.<state>"). */
#include "checkpoint/fsq_checkpoint.h"
#include "registry/fsq_component.h"

#if RENAMER_MAJOR == 1
#define RENAMER_VERSION "1.0.0"
#elif RENAMER_MAJOR == 2
#define RENAMER_VERSION "2.0.0"
#else
#error "RENAMER_MAJOR must be 1 or 2"
#endif

#if RENAMER_MAJOR >= 2
/* 1.0.0 -> 2.0.0: "enc.w" became "encoder.weight". */
static fsq_status rename_encoder_weight(struct fsq_state *state) {
  if (fsq_state_find(state, FSQ_CKPT_MODEL, "enc.w") == NULL)
    return fsq_error(FSQ_ERR_FORMAT, "renamer 1.0.0 state has no tensor 'enc.w'");
  return fsq_state_rename_param(state, "enc.w", "encoder.weight");
}

static const fsq_upgrade_step renamer_upgrades[] = {
    {"1.0.0", "2.0.0", "rename enc.w to encoder.weight", rename_encoder_weight},
    FSQ_UPGRADE_END};
#endif

static const fsq_component renamer = {
    FSQ_COMPONENT_ABI,
    .kind = FSQ_KIND_MODEL,
    .name = "renamer",
    .version = RENAMER_VERSION,
    .description = "a model whose parameter names changed (upgrade chain tests)",
#if RENAMER_MAJOR >= 2
    .upgrades = renamer_upgrades,
#endif
};

const fsq_component *fsq_component_entry(void);
const fsq_component *fsq_component_entry(void) { return &renamer; }
