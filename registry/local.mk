# registry: component descriptor/ABI, discovery and loading, option tables.
libfsq_la_SOURCES += \
	registry/options.c
fsq_registrydir = $(pkgincludedir)/registry
fsq_registry_HEADERS = registry/fsq_options.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_options
tests_unit_test_options_SOURCES = tests/unit/test_options.c
tests_unit_test_options_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_options_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_options
endif
