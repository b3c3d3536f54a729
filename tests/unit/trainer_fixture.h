/* trainer_fixture.h: what the trainer tests share: a tiny translation data
 * directory, fairseq-train's options as the trainer reads them, trainers
 * built from a flag string, fixed batches, one update. */
#ifndef FSQ_TEST_TRAINER_FIXTURE_H
#define FSQ_TEST_TRAINER_FIXTURE_H

#include "registry/fsq_registry.h"
#include "train/trainer_internal.h"

/* The corpus' sentence pairs (see trainer_fixture.c). */
#define FIXTURE_N 16

typedef struct run {
  fsq_config config;
  fsq_trainer *trainer;
} run;

/* A fresh temporary data directory (de-en, the given split); removed and
 * freed by fixture_data_dir_free. */
char *fixture_data_dir(const char *tag, const char *split);
void fixture_data_dir_free(char *dir);
/* Resolves "--flag value ..." as fairseq-train would, with data dir data,
 * and builds the trainer on backend (NULL: the CPU). */
void fixture_start_on(const char *data, const char *args, const fsq_kernels *backend, run *r);
void fixture_start(const char *data, const char *args, run *r);
void fixture_finish(run *r);
/* The training split's sentences in order, cut into `parts` (1 or 2)
 * equal batches, of which the first `taken` make the epoch. */
fsq_epoch_iter *fixture_in_order(run *r, size_t parts, size_t taken);
/* One update of r from it (the batches of update number `update`); it must
 * be applied. */
void fixture_update_once(run *r, fsq_epoch_iter *it, int64_t update, fsq_criterion_log *log,
                         double *gnorm);
/* How many parameters of the device run dev differ in any bit from the CPU
 * run's (read back through the backend). */
size_t fixture_params_differing(const run *cpu, const run *dev);

#endif
