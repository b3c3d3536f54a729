# tests: the shared CUnit harness. A suite tests/unit/test_x.c is added by
# its module's local.mk with two lines (inside `if HAVE_CUNIT`):
#   check_PROGRAMS += tests/unit/test_x
#   TESTS += tests/unit/test_x
# Programs without their own LDADD link the harness and libfsq.
if HAVE_CUNIT
check_LTLIBRARIES += tests/unit/libfsqtest.la
tests_unit_libfsqtest_la_SOURCES = tests/unit/fsq_test.c tests/unit/fsq_test.h
tests_unit_libfsqtest_la_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS)
FSQ_TEST_CFLAGS = $(AM_CFLAGS) $(CUNIT_CFLAGS) -I$(top_srcdir)/tests/unit
FSQ_TEST_LIBS = tests/unit/libfsqtest.la libfsq.la $(CUNIT_LIBS) $(JSONC_LIBS) -lm
AM_CPPFLAGS += $(CUNIT_CFLAGS) -I$(top_srcdir)/tests/unit
LDADD = $(FSQ_TEST_LIBS)

check_PROGRAMS += tests/unit/test_core
TESTS += tests/unit/test_core
endif

# End-to-end tests: shell scripts run with the environment of TESTS_ENVIRONMENT.
TESTS += tests/e2e/test_out_of_tree_component.sh tests/e2e/test_components_cli.sh
EXTRA_DIST += tests/e2e/test_out_of_tree_component.sh tests/e2e/test_components_cli.sh \
	tests/example-component/Makefile tests/example-component/example_model.c

# Installing relinks every component in the build tree (libtool relinks
# modules that depend on an uninstalled libfsq), so a test loading components
# at that moment could find a half-written file: the install test runs last.
# Its log is test_out_of_tree_component.sh.log (.sh is not in TEST_EXTENSIONS),
# named through a variable so that automake keeps its own rule for it.
fsq_install_test_log = tests/e2e/test_out_of_tree_component.sh.log
$(fsq_install_test_log): $(filter-out $(fsq_install_test_log),$(TEST_LOGS))
