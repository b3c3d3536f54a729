# registry: component descriptor/ABI, discovery and loading, option tables.
libfsq_la_SOURCES += \
	registry/arch.c \
	registry/config.c \
	registry/find.c \
	registry/kind.c \
	registry/options.c \
	registry/registry.c \
	registry/semver.c
fsq_registrydir = $(pkgincludedir)/registry
fsq_registry_HEADERS = registry/fsq_component.h registry/fsq_options.h registry/fsq_registry.h

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_options
tests_unit_test_options_SOURCES = tests/unit/test_options.c
tests_unit_test_options_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_options_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_options
endif

if HAVE_CUNIT
check_PROGRAMS += tests/unit/test_registry
tests_unit_test_registry_SOURCES = tests/unit/test_registry.c
tests_unit_test_registry_CFLAGS = $(FSQ_TEST_CFLAGS)
tests_unit_test_registry_LDADD = $(FSQ_TEST_LIBS)
TESTS += tests/unit/test_registry
endif
