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

FSQ_REGISTRY_TESTS = tests/unit/test_options tests/unit/test_registry
if HAVE_CUNIT
check_PROGRAMS += $(FSQ_REGISTRY_TESTS)
TESTS += $(FSQ_REGISTRY_TESTS)
endif
