# framework/train: the trainer and the ops tables of optimizers and schedulers.
libfsq_la_SOURCES += framework/train/lr_best.c
fsq_traindir = $(pkgincludedir)/train
fsq_train_HEADERS = framework/train/fsq_lr_scheduler.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_lr_schedulers
tests_unit_test_lr_schedulers_SOURCES = tests/unit/test_lr_schedulers.c
tests_unit_test_lr_schedulers_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_lr_schedulers_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_lr_schedulers
endif
