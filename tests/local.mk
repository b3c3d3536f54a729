# tests: the shared CUnit harness; suites are added by each module's local.mk
# with FSQ_UNIT_TESTS style lines:
#   check_PROGRAMS += tests/unit/test_x
#   tests_unit_test_x_SOURCES = tests/unit/test_x.c
#   tests_unit_test_x_LDADD = $(FSQ_TEST_LIBS)
#   TESTS += tests/unit/test_x
if HAVE_CUNIT
check_LTLIBRARIES += tests/unit/libfsqtest.la
tests_unit_libfsqtest_la_SOURCES = tests/unit/fsq_test.c tests/unit/fsq_test.h
tests_unit_libfsqtest_la_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
FSQ_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/tests/unit
FSQ_TEST_LIBS = tests/unit/libfsqtest.la libfsq.la $(CUNIT_LIBS) $(JSONC_LIBS) -lm

check_PROGRAMS += tests/unit/test_core
tests_unit_test_core_SOURCES = tests/unit/test_core.c
tests_unit_test_core_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_core_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_core
endif

# End-to-end tests: shell scripts run with the environment of TESTS_ENVIRONMENT.
TESTS += tests/e2e/test_out_of_tree_component.sh tests/e2e/test_components_cli.sh
EXTRA_DIST += tests/e2e/test_out_of_tree_component.sh tests/e2e/test_components_cli.sh \
	tests/example-component/Makefile tests/example-component/example_model.c
