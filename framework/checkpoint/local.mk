# framework/checkpoint: the .fsq archive (libarchive + zlib's crc32).
libfsq_la_SOURCES += \
	framework/checkpoint/ckpt_internal.h \
	framework/checkpoint/dtype.c \
	framework/checkpoint/names.c \
	framework/checkpoint/read.c \
	framework/checkpoint/state.c \
	framework/checkpoint/write.c
libfsq_la_CFLAGS += $(ZLIB_CFLAGS)
libfsq_la_LIBADD += $(ZLIB_LIBS)
fsq_checkpointdir = $(pkgincludedir)/checkpoint
fsq_checkpoint_HEADERS = framework/checkpoint/fsq_checkpoint.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_checkpoint
tests_unit_test_checkpoint_SOURCES = tests/unit/test_checkpoint.c
tests_unit_test_checkpoint_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_checkpoint_LDADD = $(FSQ_TEST_LIBS) $(LIBARCHIVE_LIBS)
TESTS += tests/unit/test_checkpoint
endif

# The crash test: a saver killed at random moments never leaves a broken file.
check_PROGRAMS += tests/e2e/test_checkpoint_fault
tests_e2e_test_checkpoint_fault_SOURCES = tests/e2e/test_checkpoint_fault.c
tests_e2e_test_checkpoint_fault_LDADD = libfsq.la $(JSONC_LIBS)
TESTS += tests/e2e/test_checkpoint_fault.sh
EXTRA_DIST += tests/e2e/test_checkpoint_fault.sh

# The save/load benchmark (scripts/bench-checkpoint builds and runs it).
EXTRA_PROGRAMS = framework/checkpoint/bench-checkpoint
framework_checkpoint_bench_checkpoint_SOURCES = framework/checkpoint/bench_checkpoint.c
framework_checkpoint_bench_checkpoint_LDADD = libfsq.la $(JSONC_LIBS)
CLEANFILES += framework/checkpoint/bench-checkpoint
dist_noinst_SCRIPTS += scripts/bench-checkpoint
