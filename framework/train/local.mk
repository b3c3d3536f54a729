# framework/train: the trainer and the ops tables of optimizers and schedulers.
libfsq_la_SOURCES += \
	framework/train/format.c \
	framework/train/grads.c \
	framework/train/loss_scaler.c \
	framework/train/lr_best.c \
	framework/train/meters.c \
	framework/train/progress.c \
	framework/train/trainer.c \
	framework/train/trainer_checkpoint.c \
	framework/train/trainer_dist.c \
	framework/train/trainer_loop.c \
	framework/train/trainer_mixed.c
noinst_HEADERS += framework/train/trainer_internal.h
fsq_traindir = $(pkgincludedir)/train
fsq_train_HEADERS = framework/train/fsq_lr_scheduler.h framework/train/fsq_meters.h \
	framework/train/fsq_optimizer.h framework/train/fsq_grads.h framework/train/fsq_model.h \
	framework/train/fsq_trainer.h framework/train/fsq_loss_scaler.h

FSQ_TRAIN_TESTS = tests/unit/test_grads tests/unit/test_loss_scaler tests/unit/test_lr_schedulers \
	tests/unit/test_meters tests/unit/test_optim_adam tests/unit/test_trainer_update \
	tests/unit/test_trainer_mixed
if HAVE_CUNIT
check_PROGRAMS += $(FSQ_TRAIN_TESTS)
TESTS += $(FSQ_TRAIN_TESTS)
# both train on the test memory fence too (a device the host cannot touch)
FSQ_TRAINER_FIXTURE = tests/unit/trainer_fixture.c tests/unit/trainer_fixture.h \
	tests/unit/fenced_backend.c tests/unit/fenced_backend.h
tests_unit_test_trainer_update_SOURCES = tests/unit/test_trainer_update.c $(FSQ_TRAINER_FIXTURE)
tests_unit_test_trainer_mixed_SOURCES = tests/unit/test_trainer_mixed.c $(FSQ_TRAINER_FIXTURE)
endif
EXTRA_DIST += tests/fixtures/optim/adam_steps.txt scripts/fixtures/make_optim_fixtures.py

# Data-parallel communication (fsq_dist, fsq_reducer): MPI when configured,
# a world of size 1 otherwise.
libfsq_la_SOURCES += \
	framework/train/distributed.c \
	framework/train/distributed_mpi.c \
	framework/train/distributed_nccl.c \
	framework/train/reducer.c
noinst_HEADERS += framework/train/distributed_internal.h
fsq_train_HEADERS += framework/train/fsq_distributed.h
if HAVE_MPI
libfsq_la_CFLAGS += $(MPI_CFLAGS)
libfsq_la_LIBADD += $(MPI_LIBS)
endif
if HAVE_CUDA
libfsq_la_CFLAGS += $(CUDA_CFLAGS)
endif

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_distributed
TESTS += tests/unit/test_distributed
endif

# Two ranks under mpirun (the script skips without MPI).
check_PROGRAMS += tests/mpi/dist_check
tests_mpi_dist_check_SOURCES = tests/mpi/dist_check.c
tests_mpi_dist_check_LDADD = libfsq.la $(JSONC_LIBS) -lm
TESTS += tests/e2e/test_distributed.sh
EXTRA_DIST += tests/e2e/test_distributed.sh

# fairseq-train under mpirun: 2 ranks against 1, resume, a lost rank.
check_PROGRAMS += tests/e2e/f32_close
tests_e2e_f32_close_SOURCES = tests/e2e/f32_close.c
tests_e2e_f32_close_LDADD = -lm
TESTS += tests/e2e/test_train_distributed.sh
EXTRA_DIST += tests/e2e/test_train_distributed.sh

# scripts/bench-allreduce and its program.
noinst_PROGRAMS += tests/mpi/bench_allreduce
tests_mpi_bench_allreduce_SOURCES = tests/mpi/bench_allreduce.c
tests_mpi_bench_allreduce_LDADD = libfsq.la $(JSONC_LIBS) -lm
dist_noinst_SCRIPTS += scripts/bench-allreduce scripts/bench-distributed
EXTRA_DIST += docs/distributed.md

# NCCL's one-rank path where a GPU is present (skips elsewhere).
if HAVE_CUNIT
if HAVE_CUDA
check_PROGRAMS += tests/unit/test_distributed_nccl
tests_unit_test_distributed_nccl_SOURCES = tests/unit/test_distributed_nccl.c
tests_unit_test_distributed_nccl_CFLAGS = $(FSQ_TEST_CFLAGS) $(CUDA_CFLAGS)
tests_unit_test_distributed_nccl_LDADD = $(FSQ_TEST_LIBS) $(CUDA_LIBS)
TESTS += tests/unit/test_distributed_nccl
endif
endif
