# framework/train: the trainer and the ops tables of optimizers and schedulers.
libfsq_la_SOURCES += \
	framework/train/format.c \
	framework/train/grads.c \
	framework/train/loss_scaler.c \
	framework/train/lr_best.c \
	framework/train/meters.c \
	framework/train/progress.c
fsq_traindir = $(pkgincludedir)/train
fsq_train_HEADERS = framework/train/fsq_lr_scheduler.h framework/train/fsq_meters.h \
	framework/train/fsq_optimizer.h framework/train/fsq_grads.h

FSQ_TRAIN_TESTS = tests/unit/test_grads tests/unit/test_lr_schedulers \
	tests/unit/test_meters tests/unit/test_optim_adam
if HAVE_CUNIT
check_PROGRAMS += $(FSQ_TRAIN_TESTS)
TESTS += $(FSQ_TRAIN_TESTS)
endif
EXTRA_DIST += tests/fixtures/optim/adam_steps.txt scripts/fixtures/make_optim_fixtures.py
