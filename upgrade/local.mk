# upgrade: the checkpoint upgrade chain (framework format steps, component
# state steps) and the fixtures and tests that show it working.
libfsq_la_SOURCES += \
	upgrade/chain.c \
	upgrade/format_steps.c
fsq_upgradedir = $(pkgincludedir)/upgrade
fsq_upgrade_HEADERS = upgrade/fsq_upgrade.h

# The old checkpoint of the test component renamer 1.0.0, and its generator.
check_PROGRAMS += tests/fixtures/checkpoint/make_old_renamer
tests_fixtures_checkpoint_make_old_renamer_SOURCES = tests/fixtures/checkpoint/make_old_renamer.c
tests_fixtures_checkpoint_make_old_renamer_LDADD = libfsq.la $(JSONC_LIBS)
EXTRA_DIST += tests/fixtures/checkpoint/old_renamer.fsq

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_checkpoint_upgrade
tests_unit_test_checkpoint_upgrade_SOURCES = tests/unit/test_checkpoint_upgrade.c
tests_unit_test_checkpoint_upgrade_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_checkpoint_upgrade_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_checkpoint_upgrade
endif

TESTS += tests/e2e/test_upgrade.sh
EXTRA_DIST += tests/e2e/test_upgrade.sh
